/// Where an exit head can sit in a network without heads: the candidate taps `sieve retrofit`
/// finds, and what an exit at each would save.

/// A backbone tensor an exit head can read.
public struct Tap: Equatable {
    /// The value id in the imported graph.
    let value: Int
    /// The ONNX tensor name (what `--taps` takes and the head's first node reads).
    public let name: String
    /// Channels, height, width.
    public let c: Int, h: Int, w: Int
    /// Backbone MACs up to and including the op that writes the tap, and in the whole backbone.
    public let macsBefore: Int, macsTotal: Int

    /// The fraction of the backbone's MACs an exit here skips.
    public var savedFraction: Double { macsTotal > 0 ? Double(macsTotal - macsBefore) / Double(macsTotal) : 0 }
}

/// How a head pools its tap before the fully connected layer: an n x n grid of per-channel means.
public enum HeadPooling: String, CaseIterable, Sendable {
    /// The paper's head: the global average of each channel, C features.
    case gap
    /// A 2x2 grid of averages per channel, 4C features: where in the frame survives.
    case grid2
    /// A 4x4 grid of averages per channel, 16C features: finer placement, four times grid2's head.
    case grid4

    /// Grid cells per side (gap is a 1x1 grid).
    var cells: Int {
        switch self {
        case .gap: return 1
        case .grid2: return 2
        case .grid4: return 4
        }
    }

    /// The AveragePool window and stride of a grid of `cells` over `size` (at least `cells`):
    /// stride `floor(size/cells)`, and a window long enough that the last one ends at the edge, so
    /// every row and column counts (adjacent windows overlap when `cells` does not divide `size`).
    /// For 2 cells: `ceil(size/2)`, `floor(size/2)`.
    static func gridWindow(_ size: Int, cells: Int) -> (kernel: Int, stride: Int) {
        let stride = size / cells
        return (size - (cells - 1) * stride, stride)
    }

    func featureCount(channels: Int) -> Int { cells * cells * channels }
}

extension Graph {
    /// Multiply-accumulates of layer `l`, counted as the runtime counts them (Model.macs).
    func macs(layer l: Int) -> Int {
        let out = values[layers[l].output].shape
        switch layers[l].kind {
        case .conv(let p): return out.count * p.cinPerGroup * p.kh * p.kw
        case .fullyConnected(let p): return p.cout * p.k
        default: return 0
        }
    }

    /// Candidate taps, in execution order: tensors every path from the input to the logits passes
    /// through (so no skip connection crosses them: a block's output, not the inside of a residual
    /// block), at the start or end of a run of same-shaped tensors (a stage's first or last block,
    /// a block that changes the channel count or size), written by a layer that is not a pool
    /// (the tensor before a downsample is the tap), spatial (not the classifier's vectors), and with
    /// at least one convolution after it (an exit before the classifier alone saves next to nothing).
    func tapCandidates() -> [Tap] {
        let n = layers.count
        var lastUse = [Int](repeating: -1, count: values.count)
        for (i, layer) in layers.enumerated() { for v in layer.inputs { lastUse[v] = max(lastUse[v], i) } }
        lastUse[final] = n
        var total = 0
        var before = [Int](repeating: 0, count: n)
        for i in 0..<n { total += macs(layer: i); before[i] = total }
        var lastConv = -1
        for (i, layer) in layers.enumerated() { if case .conv = layer.kind { lastConv = i } }

        // Cut points: after layer i, nothing written earlier is read again.
        var cuts: [Int] = [] // layer indices
        var reach = lastUse[input]
        for i in 0..<n {
            if reach <= i { cuts.append(i) }
            reach = max(reach, lastUse[layers[i].output])
        }
        var taps: [Tap] = []
        for (j, i) in cuts.enumerated() {
            let v = layers[i].output, s = values[v].shape
            let previous = j > 0 ? values[layers[cuts[j - 1]].output].shape : inputShape
            let next = j + 1 < cuts.count ? values[layers[cuts[j + 1]].output].shape : nil
            guard !layers[i].kind.isPool, s.h > 1 || s.w > 1, i < lastConv else { continue }
            guard s != previous || (next != nil && next! != s) else { continue }
            taps.append(Tap(value: v, name: values[v].name, c: s.c, h: s.h, w: s.w, macsBefore: before[i], macsTotal: total))
        }
        return taps
    }

    /// The tap at the tensor named `name`: any backbone tensor written by a layer, spatial, that the
    /// logits depend on.
    func tap(named name: String) throws(QuantizeError) -> Tap {
        guard let v = values.firstIndex(where: { $0.name == name }) else {
            let known = tapCandidates().map { $0.name }
            throw .invalidModel(reason: "no tensor named '\(sanitized(name))' in the imported graph (tensors folded into their neighbours have no name of their own); candidate taps: \(known.joined(separator: ", "))")
        }
        guard let producer = values[v].producer else { throw .invalidModel(reason: "'\(sanitized(name))' is the graph input; a head must tap a tensor the network computes") }
        let s = values[v].shape
        guard s.h > 1 || s.w > 1 else { throw .invalidModel(reason: "'\(sanitized(name))' is \(s) (CxHxW): a head taps a spatial tensor, not the classifier's vectors") }
        guard ancestors(of: final).contains(producer) else { throw .invalidModel(reason: "'\(sanitized(name))' is not on the path to the final logits") }
        var total = 0, before = 0
        for i in layers.indices { total += macs(layer: i); if i == producer { before = total } }
        return Tap(value: v, name: name, c: s.c, h: s.h, w: s.w, macsBefore: before, macsTotal: total)
    }
}
