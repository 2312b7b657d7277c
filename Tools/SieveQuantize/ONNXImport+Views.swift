/// Ops that change no values Sieve keeps, or that fold into their neighbour: explicit Pad (into
/// the next Conv/MaxPool's padding), ReduceMean over H,W (the global average pool), Squeeze and
/// Unsqueeze (views), and a Softmax/LogSoftmax on the class logits at the output (dropped: argmax
/// and the exits read logits, and neither changes the order of the classes).
extension ONNXImporter {
    struct PendingPad {
        var value: Int
        /// top, left, bottom, right
        var pads: [Int]
    }

    /// The axes of a ReduceMean/Squeeze/Unsqueeze: input 1 (opsets 13/18 on), else the attribute (before).
    func axes(_ n: NodeView) throws(QuantizeError) -> [Int]? {
        if n.node.input.count > 1 && !n.input(1).isEmpty { return try int64s(n, 1, role: "axes").map { Int($0) } }
        return try n.ints("axes")
    }

    // MARK: Pad

    mutating func pad(_ n: NodeView) throws(QuantizeError) {
        let mode = try n.string("mode") ?? "constant"
        guard mode == "constant" else { throw n.badAttribute("mode", "'\(mode)': only constant (zero) padding is supported") }
        let x: Int
        var carried = [0, 0, 0, 0]
        if let inner = pendingPads[n.input(0)] { x = inner.value; carried = inner.pads } else { x = try activation(n, 0) }
        guard !rank2.contains(n.input(0)) else { throw n.unsupported("padding a flattened tensor is not supported") }
        var raw: [Int]
        if n.node.input.count > 1 && !n.input(1).isEmpty {
            raw = try int64s(n, 1, role: "pads").map { Int($0) }
        } else {
            guard let p = try n.ints("pads") else { throw n.unsupported("it has no pads") }
            raw = p
        }
        if n.node.input.count > 2 && !n.input(2).isEmpty {
            let (_, v) = try floats(n, 2, role: "constant_value")
            guard v.allSatisfy({ $0 == 0 }) else { throw n.unsupported("padding with \(v) is not supported: only zero padding folds into a Conv") }
        }
        if try n.float("value", 0) != 0 { throw n.badAttribute("value", "only zero padding folds into a Conv") }
        // Opset 18: pads for the listed axes only.
        var full = [Int](repeating: 0, count: 8)
        if n.node.input.count > 3 && !n.input(3).isEmpty {
            let axes = try int64s(n, 3, role: "axes").map { Int($0) < 0 ? Int($0) + 4 : Int($0) }
            guard raw.count == 2 * axes.count, axes.allSatisfy({ (0..<4).contains($0) }) else { throw n.unsupported("pads \(raw) do not match axes \(axes)") }
            for (i, a) in axes.enumerated() { full[a] = raw[i]; full[a + 4] = raw[i + axes.count] }
        } else {
            guard raw.count == 8 else { throw n.unsupported("pads \(raw) are not 8 values for a [1,C,H,W] tensor") }
            full = raw
        }
        guard full[0] == 0, full[1] == 0, full[4] == 0, full[5] == 0 else {
            throw n.unsupported("pads \(raw) pad the batch or channel axis; only spatial padding is supported")
        }
        guard full.allSatisfy({ $0 >= 0 }) else { throw n.unsupported("pads \(raw) crop (negative pads are not supported)") }
        let pads = [full[2] + carried[0], full[3] + carried[1], full[6] + carried[2], full[7] + carried[3]]
        try requireUnused(n, outputsFrom: 1)
        pendingPads[n.node.output[0]] = PendingPad(value: x, pads: pads)
    }

    /// Input 0 of a Conv or pool, with the padding of an explicit Pad before it (top, left, bottom, right).
    func paddedInput(_ n: NodeView) throws(QuantizeError) -> (x: Int, pads: [Int], padNode: Bool) {
        if let p = pendingPads[n.input(0)] { return (p.value, p.pads, true) }
        return (try activation(n, 0), [0, 0, 0, 0], false)
    }

    /// True when every value of `v` is >= 0 (a ReLU/clamped output, or a pool of one), so zero
    /// padding before a max pool changes nothing.
    func isNonNegative(_ v: Int) -> Bool {
        guard let l = graph.values[v].producer else { return false }
        let layer = graph.layers[l]
        if layer.clampMin >= 0 { return true }
        switch layer.kind {
        case .maxPool, .averagePool, .globalAveragePool, .gather: return isNonNegative(layer.inputs[0])
        default: return false
        }
    }

    // MARK: ReduceMean, ReduceMax, Squeeze, Unsqueeze

    /// ReduceMean, ReduceMax or ReduceSum over H and W: the global average pool, a max pool whose one window
    /// is the whole image (the default exporter writes AdaptiveMaxPool2d(1) and amax((2, 3)) as ReduceMax),
    /// or the average pool times H W (a per-channel affine, which a Gemm after it absorbs).
    mutating func reduceOverPixels(_ n: NodeView) throws(QuantizeError) {
        let x = try activation(n, 0)
        let op = n.node.opType
        guard !rank2.contains(n.input(0)) else { throw n.unsupported("\(op) of a flattened tensor is not supported") }
        let keep = try n.int("keepdims", 1)
        let axes = try axes(n).map { $0.map { $0 < 0 ? $0 + 4 : $0 }.sorted() }
        guard axes == [2, 3] else {
            let what = op == "ReduceMax" ? "maximum" : op == "ReduceSum" ? "sum" : "mean"
            throw n.unsupported("\(op) over axes \(axes.map { "\($0)" } ?? "all"): only the \(what) over H and W (axes [2, 3], a global pool) is supported")
        }
        let s = graph.values[x].shape
        if op == "ReduceMax" {
            guard s.h <= 64, s.w <= 64 else {
                throw n.unsupported("ReduceMax over a \(s.h)x\(s.w) image: Sieve's max pool windows are at most 64x64; pool to 64x64 or less first")
            }
            let window = PoolParams(kh: s.h, kw: s.w, strideH: s.h, strideW: s.w, padTop: 0, padLeft: 0, padBottom: 0, padRight: 0)
            try addLayer(n, .maxPool(window), inputs: [x], shape: Shape(c: s.c, h: 1, w: 1))
        } else if op == "ReduceSum" {
            let mean = try addLayer(n, .globalAveragePool, inputs: [x], shape: Shape(c: s.c, h: 1, w: 1), output: "\(n.node.output[0])#mean")
            try applyAffine(n, x: graph.layers[mean].output, scale: [Double](repeating: Double(s.h * s.w), count: s.c),
                            shift: [Double](repeating: 0, count: s.c))
        } else {
            try addLayer(n, .globalAveragePool, inputs: [x], shape: Shape(c: s.c, h: 1, w: 1))
        }
        if keep == 0 { rank2.insert(n.node.output[0]) }
    }

    mutating func squeeze(_ n: NodeView) throws(QuantizeError) {
        let x = try activation(n, 0)
        let s = graph.values[x].shape
        let flat = rank2.contains(n.input(0))
        let dims = flat ? [1, s.count] : [1, s.c, s.h, s.w]
        let axes = try axes(n)?.map { $0 < 0 ? $0 + dims.count : $0 } ?? dims.indices.filter { dims[$0] == 1 }
        guard axes.allSatisfy({ dims.indices.contains($0) && dims[$0] == 1 }) else {
            throw n.unsupported("squeezing axes \(axes) of a \(dims) tensor: those axes must have size 1")
        }
        // What is left must be the classifier's vector: [1, K] or [K].
        let left = dims.indices.filter { !axes.contains($0) }.map { dims[$0] }
        guard left.filter({ $0 != 1 }).count <= 1, left.count <= 2 else {
            throw n.unsupported("squeezing \(dims) to \(left): only squeezing to the [1, K] vector before the classifier is supported")
        }
        try alias(n, from: n.input(0), to: n.node.output[0])
        rank2.insert(n.node.output[0])
    }

    mutating func unsqueeze(_ n: NodeView) throws(QuantizeError) {
        let x = try activation(n, 0)
        let s = graph.values[x].shape
        guard rank2.contains(n.input(0)), s.h == 1, s.w == 1 else {
            throw n.unsupported("Unsqueeze is only supported on a [1, K] vector (back to [1, K, 1, 1])")
        }
        let axes = try axes(n) ?? []
        try alias(n, from: n.input(0), to: n.node.output[0])
        let normalised = axes.map { $0 < 0 ? $0 + 4 : $0 }.sorted()
        if normalised == [2, 3] { rank2.remove(n.node.output[0]) }
    }

    // MARK: Softmax at the output

    mutating func softmax(_ n: NodeView) throws(QuantizeError) {
        let x = try activation(n, 0)
        let s = graph.values[x].shape
        let output = n.node.output[0]
        let isGraphOutput = model.graph.output.contains { $0.name == output }
        let axis = try n.int("axis", opset >= 13 ? -1 : 1)
        guard isGraphOutput, consumers[resolve(output)] == 1, rank2.contains(n.input(0)), s.h == 1, s.w == 1, axis == 1 || axis == -1 else {
            throw .unsupportedOp(opType: n.node.opType, node: n.name,
                                 advice: "only a \(n.node.opType) over the class logits at the output is supported (it is dropped there); remove it elsewhere")
        }
        try alias(n, from: n.input(0), to: output)
        notes.append("dropped \(n.node.opType) '\(n.name)' at the output: argmax and the exits read the logits before it")
    }
}
