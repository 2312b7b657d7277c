import CSieveKernels

/// Channel groups: per-channel-group scales on a conv output where the op that reads it can take
/// a scale per channel at no cost.
///
/// A per-tensor scale is set by the widest channels. When a few channels span several times the
/// range of the rest, the narrow ones are rounded to a few steps, and the op after can weigh
/// exactly those channels most. The conv requantises each output channel with its own multiplier
/// anyway, so giving each group of channels its own scale costs the producer nothing. Two readers
/// take it back:
///
/// - **a table** (LUT): the op holds one table per group (docs/FORMAT.md, LUT with table groups).
///   MobileNetV3-small's stem before its hard-swish: three channels 4.6-5.4 wide, thirteen 0.8-1.7.
///   Each group has its own zero point (the conv moves it into its bias). A grouped table costs
///   time, so only where it gains 10 dB.
/// - **a depthwise conv** (channel multiplier 1): each of its output channels reads one input
///   channel, so that channel's scale goes into its own requantisation multiplier; the blob and
///   the runtime see nothing new. The groups share the tensor's zero point, which the depthwise
///   conv pads with, so padding stays exact. A conv -> ReLU -> depthwise conv pair (MobileNetV2,
///   MnasNet, ShuffleNetV2): free, so wherever it gains 3 dB.

/// Channel c of the tensor is quantised with `params[map[c]]`.
struct ChannelGroups: Equatable {
    var map: [UInt8]
    var params: [QParams]
}

/// Who reads a grouped value, which decides how its groups are made and quantised.
enum GroupedReader {
    case table, depthwise

    /// A new group starts at this many times the group's narrowest channel.
    var groupRatio: Double { self == .table ? 1.5 : 1.25 }
    /// Kept when the rounding noise the readers see falls by this factor or more.
    var minimumGain: Double { self == .table ? 10 : 2 }
}

/// How channels are grouped: at most `tableGroups` groups on a table's input, `depthwiseGroups`
/// on a depthwise conv's (1: one scale per tensor).
struct ChannelGrouping {
    var tableGroups = 4
    var depthwiseGroups = 16

    /// The most tables a LUT op holds, and the most channels its map covers (docs/FORMAT.md).
    static let maxTableGroups = Int(SIEVE_LUT_MAX_GROUPS)
    static let maxTableChannels = Int(SIEVE_LUT_GROUPED_MAX_CHANNELS)
    /// Depthwise inputs' groups cost nothing at run time; more only slow calibration (a
    /// histogram each).
    static let maxDepthwiseGroups = 64

    func maxGroups(_ reader: GroupedReader) -> Int { reader == .table ? tableGroups : depthwiseGroups }

    /// Values whose channels may be grouped, and their reader: a conv or fully connected output read by
    /// one table or one depthwise conv and nothing else (not the classifier, a head or a head's tap). A table's
    /// input must have no clamp (the groups' zero points differ); a depthwise conv's may have a
    /// ReLU-like one (lower bound 0 or none), which every group then quantises the same way.
    func candidates(_ graph: Graph) -> [Int: GroupedReader] {
        var readers = [Int: [Int]]()
        for (l, layer) in graph.layers.enumerated() { for v in layer.inputs { readers[v, default: []].append(l) } }
        var reserved = Set([graph.final, graph.input])
        for head in graph.heads { reserved.insert(head.output); reserved.insert(head.tap) }
        var result: [Int: GroupedReader] = [:]
        for layer in graph.layers {
            let v = layer.output
            guard let only = readers[v], only.count == 1, !reserved.contains(v), layer.hasBias, layer.quantisedAs == nil else { continue }
            let reader = graph.layers[only[0]]
            switch reader.kind {
            case .lut where tableGroups > 1 && !layer.hasClamp && graph.values[v].shape.c <= Self.maxTableChannels:
                result[v] = .table
            case .conv(let p) where depthwiseGroups > 1 && p.isDepthwise(inputChannels: graph.values[v].shape.c):
                if layer.hasClamp && layer.clampMin != 0 && layer.clampMin > -.infinity { continue }
                result[v] = .depthwise
            default:
                continue
            }
        }
        return result
    }

    /// How much each channel of value `v` matters downstream: the energy of the weights that read
    /// it (a depthwise conv's taps) or, for a table's input, that read the table's output (a
    /// depthwise conv's taps, a conv's or fully connected layer's input column); 1 each when
    /// something else reads it.
    static func consumerWeight(_ graph: Graph, value v: Int) -> [Double] {
        let c = graph.values[v].shape.c
        guard let reader = graph.layers.first(where: { $0.inputs.first == v }) else { return [Double](repeating: 1, count: c) }
        let read: Int
        if case .lut = reader.kind { read = reader.output } else { read = v }
        var energy = [Double](repeating: 0, count: c)
        for layer in graph.layers where layer.inputs.contains(read) {
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
    /// channels sorted by width, a new group at the reader's `groupRatio` times the group's
    /// narrowest; kept when the rounding noise the readers see (each channel's step squared,
    /// weighted by `consumerWeight`) falls by the reader's `minimumGain` or more.
    func groups(lo: [Float], hi: [Float], weight: [Double], reader: GroupedReader) -> [UInt8]? {
        let maxGroups = maxGroups(reader)
        guard maxGroups >= 2, lo.count >= 2 else { return nil }
        let width = lo.indices.map { Double(max(hi[$0], 0) - min(lo[$0], 0)) }
        let whole = Double((hi.max() ?? 0) - (lo.min() ?? 0))
        guard whole > 0 else { return nil }
        var map = [UInt8](repeating: 0, count: width.count)
        var group = 0, first = -1.0
        for c in width.indices.sorted(by: { width[$0] < width[$1] }) {
            if first < 0 { first = width[c] }
            if width[c] > reader.groupRatio * first && group + 1 < maxGroups { group += 1; first = width[c] }
            map[c] = UInt8(group)
        }
        guard group > 0 else { return nil }
        var groupWidth = [Double](repeating: 0, count: group + 1)
        for c in width.indices { groupWidth[Int(map[c])] = max(groupWidth[Int(map[c])], width[c]) }
        var oneScale = 0.0, grouped = 0.0
        for c in width.indices { oneScale += weight[c] * whole * whole; grouped += weight[c] * groupWidth[Int(map[c])] * groupWidth[Int(map[c])] }
        return oneScale >= reader.minimumGain * grouped ? map : nil
    }
}

extension ConvParams {
    /// One output channel per input channel (channel multiplier 1): a per-channel input scale is
    /// then a per-output-channel factor.
    func isDepthwise(inputChannels c: Int) -> Bool { groups > 1 && groups == c && cinPerGroup == 1 && cout == c }
}

extension QParams {
    /// The narrowest scale that holds `[lo, hi]` (0 included) around the given zero point: a
    /// channel group of a depthwise conv's input, which pads with the tensor's zero point.
    init(min lo: Double, max hi: Double, zeroPoint zp: Int32) {
        let lo = Swift.min(lo, 0), hi = Swift.max(hi, 0)
        var scale = 0.0
        if zp < 127 { scale = Swift.max(scale, hi / Double(127 - zp)) }
        if zp > -128 { scale = Swift.max(scale, lo / Double(-128 - zp)) }
        if !(scale > 1e-12) || !scale.isFinite { scale = 1.0 / 255 }  // an all-zero group: any scale holds 0 exactly
        self.init(scale: Float(scale), zeroPoint: zp)
    }
}
