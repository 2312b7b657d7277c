/// Channel shuffles and channel splits (ShuffleNet), each a GATHER of channels: the
/// Reshape-Transpose-Reshape that interleaves channel groups, and Split/Slice along channels.
/// A shuffle that only Splits/Slices read is never stored: each part gathers from its input.
/// (Shape of it folds to a constant, ONNXImport+ConstantFolding.)
extension ONNXImporter {
    /// A Reshape to `[1, g, C/g, H, W]` (`dims`) of `value`; `transposed` once its two channel axes swapped.
    struct PendingShuffle {
        var value: Int
        var dims: [Int]
        var transposed = false
    }

    /// Channels `index` of `value`, waiting for the Splits/Slices that read it.
    struct PendingGather {
        var value: Int
        var index: [Int]
    }

    // MARK: Channel shuffle

    /// The first Reshape of a shuffle: `dims` is `[1, g, C/g, H, W]` of input 0.
    mutating func startShuffle(_ n: NodeView, _ x: Int, dims: [Int]) throws(QuantizeError) {
        pendingShuffles[n.node.output[0]] = PendingShuffle(value: x, dims: dims)
    }

    mutating func transposeChannelGroups(_ n: NodeView) throws(QuantizeError) {
        guard var s = pendingShuffles[n.input(0)] else {
            // The default exporter's AdaptiveAvgPool2d to a size that does not divide its input: the image moved
            // to the front (H, W, N, C) for a GatherND of the windows.
            if try n.ints("perm") == [2, 3, 0, 1], model.graph.node.contains(where: { $0.opType == "GatherND" && $0.input.first == n.node.output[0] }) {
                throw n.unsupported("it gathers the windows of an AdaptiveAvgPool2d whose output size does not divide its input "
                                    + "(VGG and AlexNet at sizes other than 224x224): export at a size the pool divides, or pool with "
                                    + "AdaptiveAvgPool2d(1) before the classifier")
            }
            throw .unsupportedOp(opType: "Transpose", node: n.name, advice: unsupportedOpAdvice("Transpose"))
        }
        let perm = try n.ints("perm")
        guard !s.transposed, perm == [0, 2, 1, 3, 4] else {
            throw n.unsupported("Transpose \(perm.map { "\($0)" } ?? "(reversing every axis)") of a channel-group view: only swapping "
                                + "the two channel axes ([0, 2, 1, 3, 4], a channel shuffle) is supported")
        }
        s.dims.swapAt(1, 2)
        s.transposed = true
        pendingShuffles[n.node.output[0]] = s
    }

    /// The last Reshape of a shuffle, back to `[1, C, H, W]`: output channel `j` is input channel
    /// `(j % g) * (C / g) + j / g`.
    mutating func finishShuffle(_ n: NodeView) throws(QuantizeError) {
        let s = pendingShuffles[n.input(0)]!
        let shape = graph.values[s.value].shape
        guard s.transposed else {
            throw n.unsupported("reshaping a channel-group view that was not transposed: only a channel shuffle "
                                + "(Reshape to [1, g, C/g, H, W], Transpose [0, 2, 1, 3, 4], Reshape back) is supported")
        }
        let target = try int64s(n, 1, role: "shape").map { Int($0) }
        let allowZero = try n.int("allowzero", 0)
        var dims = target
        for i in dims.indices where dims[i] == 0 && allowZero == 0 && i < s.dims.count { dims[i] = s.dims[i] }
        if let minus = dims.firstIndex(of: -1), dims.filter({ $0 == -1 }).count == 1,
           let known = checkedProduct(dims.enumerated().filter { $0.offset != minus }.map { $0.element }),
           known > 0 && shape.count % known == 0 {
            dims[minus] = shape.count / known
        }
        guard dims == [1, shape.c, shape.h, shape.w] else {
            throw n.unsupported("reshaping the shuffled view \(s.dims) to \(target): only back to [1, \(shape.c), \(shape.h), \(shape.w)] is supported")
        }
        let groups = s.dims[2], perGroup = s.dims[1]
        let index = (0..<shape.c).map { j in (j % groups) * perGroup + j / groups }
        try gather(n, output: n.node.output[0], from: s.value, index: index)
    }

    // MARK: Split and Slice along channels

    /// Split on the channel axis: one GATHER per used output (sizes from input 1, the `split`
    /// attribute before opset 13, or equal parts; opset 18's `num_outputs` rounds the parts up).
    mutating func splitChannels(_ n: NodeView) throws(QuantizeError) {
        let (x, index) = try channelSource(n)
        let axis = try n.int("axis", 0)
        guard axis == 1 || axis == -3 else { throw n.unsupported("Split along axis \(axis): only splitting the channels (axis 1) is supported") }
        let c = index.count, parts = n.node.output.count
        var sizes: [Int]
        if n.node.input.count > 1 && !n.input(1).isEmpty {
            sizes = try int64s(n, 1, role: "split").map { Int($0) }
        } else if let s = try n.ints("split") {
            sizes = s
        } else {
            let each = (c + parts - 1) / parts
            sizes = (0..<parts).map { max(0, min(each, c - $0 * each)) }
        }
        guard sizes.count == parts, sizes.allSatisfy({ (1...c).contains($0) }), sizes.reduce(0, +) == c else {
            throw n.unsupported("split sizes \(sizes) do not cut \(c) channels into \(parts) non-empty parts")
        }
        var first = 0
        for (output, size) in zip(n.node.output, sizes) {
            if !output.isEmpty && (consumers[output] ?? 0) > 0 {
                try gather(n, output: output, from: x, index: Array(index[first..<first + size]))
            }
            first += size
        }
    }

    /// Slice of a channel range (step 1): a GATHER. Slices of height or width (crops) are refused.
    mutating func sliceChannels(_ n: NodeView) throws(QuantizeError) {
        let (x, index) = try channelSource(n)
        let starts: [Int], ends: [Int], axes: [Int]?, steps: [Int]?
        if opset >= 10 {
            starts = try int64s(n, 1, role: "starts").map(Self.clampedInt)
            ends = try int64s(n, 2, role: "ends").map(Self.clampedInt)
            axes = n.node.input.count > 3 && !n.input(3).isEmpty ? try int64s(n, 3, role: "axes").map { Int($0) } : nil
            steps = n.node.input.count > 4 && !n.input(4).isEmpty ? try int64s(n, 4, role: "steps").map(Self.clampedInt) : nil
        } else {
            starts = try n.ints("starts") ?? []
            ends = try n.ints("ends") ?? []
            axes = try n.ints("axes")
            steps = nil
        }
        let axisList = axes ?? Array(0..<starts.count)
        guard starts.count == 1, ends.count == 1, axisList.count == 1, axisList[0] == 1 || axisList[0] == -3 else {
            throw n.unsupported("Slice over axes \(axisList): only a range of channels (axis 1) is supported; cropping height or width is not")
        }
        guard steps == nil || steps! == [1] else { throw n.unsupported("Slice with steps \(steps!): only step 1 is supported") }
        let c = index.count
        func bound(_ v: Int) -> Int { max(0, min(c, v < 0 ? v + c : v)) }
        let lo = bound(starts[0]), hi = bound(ends[0])
        guard lo < hi else { throw n.unsupported("Slice [\(starts[0]), \(ends[0])) of \(c) channels is empty") }
        try gather(n, output: n.node.output[0], from: x, index: Array(index[lo..<hi]))
    }

    /// Slice bounds are int64 (often INT64_MAX for "to the end"); anything beyond Int32 clamps.
    static func clampedInt(_ v: Int64) -> Int { Int(max(Int64(Int32.min), min(Int64(Int32.max), v))) }

    /// Input 0 of a Split/Slice as channels of a stored value: a pending shuffle's input and
    /// permutation, else the activation itself in order.
    func channelSource(_ n: NodeView) throws(QuantizeError) -> (value: Int, index: [Int]) {
        if let g = pendingGathers[n.input(0)] { return (g.value, g.index) }
        let x = try activation(n, 0)
        guard !rank2.contains(n.input(0)) else { throw n.unsupported("cutting a flattened [1, K] tensor is not supported") }
        return (x, Array(0..<graph.values[x].shape.c))
    }

    /// `output` = channels `index` of `x`: the value itself when that is every channel in order,
    /// pending when only Splits/Slices read it (they gather from `x` directly), else a GATHER layer.
    mutating func gather(_ n: NodeView, output: String, from x: Int, index: [Int]) throws(QuantizeError) {
        let shape = graph.values[x].shape
        if index == Array(0..<shape.c) {
            valueOf[output] = x
            return
        }
        let readers = model.graph.node.filter { $0.input.contains(output) }
        let isGraphOutput = model.graph.output.contains { $0.name == output }
        // The legacy exporter's Slices read the split point from a Shape of the shuffle (folded).
        if !readers.isEmpty && !isGraphOutput && readers.allSatisfy({ ["Split", "Slice", "Shape"].contains($0.opType) }) {
            pendingGathers[output] = PendingGather(value: x, index: index)
            return
        }
        _ = try addLayer(n, .gather(index), inputs: [x], shape: Shape(c: index.count, h: shape.h, w: shape.w), output: output)
    }
}
