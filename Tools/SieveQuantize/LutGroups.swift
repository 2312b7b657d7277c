/// Table groups: per-channel-group scales on a conv output that only a table (LUT) reads.
///
/// A per-tensor scale is set by the widest channels. When a few channels span several times the
/// range of the rest (MobileNetV3-small's stem before its hard-swish: three channels 4.6-5.4 wide,
/// thirteen 0.8-1.7), the narrow ones are rounded to a few steps, and a depthwise conv after the
/// table can weigh exactly those channels most. The conv requantises each output channel with its
/// own multiplier anyway, so giving each group of channels its own scale costs it nothing; the
/// table op then holds one table per group (docs/FORMAT.md, LUT with table groups).

/// Channel c of the tensor is quantised with `params[map[c]]`.
struct ChannelGroups: Equatable {
    var map: [UInt8]
    var params: [QParams]
}

/// How channels are grouped (`groups`): at most `maxGroups` groups.
struct LutGrouping {
    var maxGroups = 4
    static let groupRatio = 1.5
    static let minimumGain = 10.0

    /// Values whose channels may be grouped: a conv or fully connected output without a clamp,
    /// read by one table and nothing else (not the classifier, a head or a head's tap).
    static func candidates(_ graph: Graph) -> [Int] {
        var readers = [Int: Int]()
        for layer in graph.layers { for v in layer.inputs { readers[v, default: 0] += 1 } }
        var reserved = Set([graph.final, graph.input])
        for head in graph.heads { reserved.insert(head.output); reserved.insert(head.tap) }
        return graph.layers.compactMap { layer -> Int? in
            guard case .lut = layer.kind, let v = layer.inputs.first, readers[v] == 1, !reserved.contains(v),
                  let producer = graph.values[v].producer else { return nil }
            let p = graph.layers[producer]
            guard p.hasBias, !p.hasClamp, p.quantisedAs == nil, graph.values[v].shape.c <= 4096 else { return nil }
            return v
        }
    }

    /// How much each channel of value `v` (a table's input) matters downstream: the energy of the
    /// weights that read the table's output channel (a depthwise conv's taps, a conv's or fully
    /// connected layer's input column); 1 each when something else reads it.
    static func consumerWeight(_ graph: Graph, value v: Int) -> [Double] {
        let c = graph.values[v].shape.c
        guard let table = graph.layers.first(where: { $0.inputs.first == v }) else { return [Double](repeating: 1, count: c) }
        var energy = [Double](repeating: 0, count: c)
        for layer in graph.layers where layer.inputs.contains(table.output) {
            switch layer.kind {
            case .conv(let p):
                // [cout][cin/groups][kh][kw]: input channel ci of group g feeds outputs g*(cout/groups) ...
                let taps = p.kh * p.kw, perGroup = p.cout / p.groups
                for o in 0..<p.cout {
                    let g = o / perGroup
                    for j in 0..<p.cinPerGroup {
                        let ci = g * p.cinPerGroup + j
                        for k in 0..<taps { let w = Double(p.weights[(o * p.cinPerGroup + j) * taps + k]); energy[ci] += w * w }
                    }
                }
            case .fullyConnected(let p):
                let plane = p.k / c
                for o in 0..<p.cout { for ci in 0..<c { for k in 0..<plane { let w = Double(p.weights[o * p.k + ci * plane + k]); energy[ci] += w * w } } }
            default:
                return [Double](repeating: 1, count: c)
            }
        }
        return energy
    }

    /// The group of each channel from its observed range (0 included), or nil to keep one scale:
    /// channels sorted by width, a new group at `groupRatio` times the group's narrowest; kept when
    /// the rounding noise the consumers see (each channel's step squared, weighted by
    /// `consumerWeight`) falls to a tenth or less of one scale's (10 dB).
    func groups(lo: [Float], hi: [Float], weight: [Double]) -> [UInt8]? {
        guard maxGroups >= 2, lo.count >= 2 else { return nil }
        let width = lo.indices.map { Double(max(hi[$0], 0) - min(lo[$0], 0)) }
        let whole = Double((hi.max() ?? 0) - (lo.min() ?? 0))
        guard whole > 0 else { return nil }
        var map = [UInt8](repeating: 0, count: width.count)
        var group = 0, first = -1.0
        for c in width.indices.sorted(by: { width[$0] < width[$1] }) {
            if first < 0 { first = width[c] }
            if width[c] > LutGrouping.groupRatio * first && group + 1 < maxGroups { group += 1; first = width[c] }
            map[c] = UInt8(group)
        }
        guard group > 0 else { return nil }
        var groupWidth = [Double](repeating: 0, count: group + 1)
        for c in width.indices { groupWidth[Int(map[c])] = max(groupWidth[Int(map[c])], width[c]) }
        var oneScale = 0.0, grouped = 0.0
        for c in width.indices { oneScale += weight[c] * whole * whole; grouped += weight[c] * groupWidth[Int(map[c])] * groupWidth[Int(map[c])] }
        return oneScale >= LutGrouping.minimumGain * grouped ? map : nil
    }
}
