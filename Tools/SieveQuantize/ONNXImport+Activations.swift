/// Importing the ops that became CONCAT, MUL and LUT (docs/FORMAT.md): Concat on channels, Mul of two
/// activations (squeeze-excitation's per-channel scale), the elementwise activations (Sigmoid,
/// HardSigmoid, HardSwish, LeakyRelu, PRelu with one slope, Elu, Selu, Celu, Tanh, Gelu, Softplus, Mish), the
/// x * Sigmoid(x) (SiLU) and x * HardSigmoid(x) (HardSwish) patterns fused into one table, and a
/// ReLU/Clip that no Conv, Gemm or Add before it can absorb.
extension ONNXImporter {
    mutating func concat(_ n: NodeView) throws(QuantizeError) {
        let count = n.node.input.count
        guard count >= 1 else { throw n.unsupported("Concat of no inputs") }
        guard let axis = n.attribute("axis") != nil ? try n.int("axis", 1) : nil else { throw n.badAttribute("axis", "the required axis is missing") }
        if count == 1 {  // torch.cat of a one-tensor list (DenseNet's first layer, legacy exporter): the tensor itself
            _ = try activation(n, 0)
            try alias(n, from: n.input(0), to: n.node.output[0])
            return
        }
        var inputs: [Int] = []
        for i in 0..<count { inputs.append(try activation(n, i)) }
        // [1, K] vectors of pooled features (a global average and max pool side by side) are Kx1x1 tensors:
        // joined along K they are joined along channels. Flattened images are not (their order is c, h, w).
        let flat = (0..<count).map { rank2.contains(n.input($0)) }
        if flat.contains(true) {
            guard !flat.contains(false), inputs.allSatisfy({ graph.values[$0].shape.h == 1 && graph.values[$0].shape.w == 1 }),
                  axis == 1 || axis == -1 else {
                throw n.unsupported("Concat of flattened [1, K] tensors is supported only for pooled vectors (Kx1x1) along K; concatenate before flattening")
            }
            rank2.insert(n.node.output[0])
        } else {
            guard axis == 1 || axis == -3 else { throw n.badAttribute("axis", "\(axis): Sieve concatenates along channels (axis 1 of NCHW) only") }
        }
        let shapes = inputs.map { graph.values[$0].shape }
        guard shapes.allSatisfy({ $0.h == shapes[0].h && $0.w == shapes[0].w }) else {
            throw n.unsupported("inputs of shapes \(shapes.map { $0.description }.joined(separator: ", ")) differ in height or width")
        }
        // CONCAT takes 2...4 inputs; more (DenseNet's blocks) become a chain of links, each
        // concatenating the previous link's output with up to three more inputs.
        func joined(_ parts: [Int]) -> Shape {
            Shape(c: parts.reduce(0) { $0 + graph.values[$1].shape.c }, h: shapes[0].h, w: shapes[0].w)
        }
        var links: [Int] = []
        while inputs.count > 4 {
            let part = Array(inputs[0..<4])
            let link = try addLayer(n, .concat, inputs: part, shape: joined(part), output: "\(n.node.output[0])#part\(links.count + 1)")
            links.append(link)
            inputs = [graph.layers[link].output] + inputs[4...]
        }
        let last = try addLayer(n, .concat, inputs: inputs, shape: joined(inputs))
        for l in links { graph.layers[l].quantisedAs = graph.layers[last].output }
    }

    mutating func mul(_ n: NodeView) throws(QuantizeError) {
        guard n.node.input.count == 2 else { throw n.unsupported("Mul needs two inputs") }
        guard let a = valueOf[n.input(0)], let b = valueOf[n.input(1)] else {
            throw n.unsupported("multiplying by a constant is only supported where it folds into the input normalisation; here both inputs must be activations")
        }
        // x * f(x), f a sigmoid or hard sigmoid table read only here: one table for the product.
        for (x, s, sName) in [(a, b, n.input(1)), (b, a, n.input(0))] {
            guard let l = graph.values[s].producer, graph.layers[l].inputs == [x], consumers[resolve(sName)] == 1,
                  case .lut(let f) = graph.layers[l].kind else { continue }
            let fused: Activation
            switch f {
            case .sigmoid: fused = .silu
            case let .hardSigmoid(alpha, beta): fused = .hardSwish(alpha: alpha, beta: beta)
            default: continue
            }
            graph.layers[l].kind = .lut(fused)
            graph.layers[l].opType = fused == .silu ? "SiLU" : "HardSwish"
            renameOutput(of: l, to: n)
            return
        }
        let sa = graph.values[a].shape, sb = graph.values[b].shape
        guard !rank2.contains(n.input(0)) && !rank2.contains(n.input(1)) else { throw n.unsupported("Mul of flattened [1, K] tensors is not supported") }
        let perChannel = { (s: Shape, of: Shape) in s.h == 1 && s.w == 1 && s.c == of.c }
        if sa == sb || perChannel(sb, sa) {
            try addLayer(n, .mul, inputs: [a, b], shape: sa)
        } else if perChannel(sa, sb) {
            try addLayer(n, .mul, inputs: [b, a], shape: sb)
        } else {
            throw n.unsupported("inputs of shapes \(sa) and \(sb): Sieve multiplies same-shaped tensors or a tensor by one value per channel (Cx1x1)")
        }
    }

    mutating func activationTable(_ n: NodeView) throws(QuantizeError) {
        let x = try activation(n, 0)
        let f: Activation
        switch n.node.opType {
        case "Sigmoid": f = .sigmoid
        case "HardSigmoid":
            let alpha = try n.float("alpha", 0.2), beta = try n.float("beta", 0.5)
            guard alpha.isFinite && beta.isFinite else { throw n.badAttribute("alpha", "alpha and beta must be finite") }
            f = .hardSigmoid(alpha: alpha, beta: beta)
        case "HardSwish": f = .hardSwish(alpha: 1.0 / 6.0, beta: 0.5)
        case "LeakyRelu": f = .leakyRelu(alpha: try finite(n, "alpha", 0.01))
        case "PRelu":
            // One slope for every channel is a table; a slope per channel two ops (perChannelPRelu).
            let slope = try floats(n, 1, role: "slope").data
            guard slope.allSatisfy({ $0.isFinite }) else { throw n.unsupported("a slope is not finite") }
            guard slope.count == 1 else { return try perChannelPRelu(n, x) }
            f = .leakyRelu(alpha: slope[0])
        case "Elu": f = .elu(alpha: try finite(n, "alpha", 1))
        case "Selu": f = .selu(alpha: try finite(n, "alpha", 1.67326319217681884765625), gamma: try finite(n, "gamma", 1.05070102214813232421875))
        case "Celu":
            let alpha = try finite(n, "alpha", 1)
            guard alpha != 0 else { throw n.badAttribute("alpha", "alpha must not be 0") }
            f = .celu(alpha: alpha)
        case "Tanh": f = .tanh
        case "Gelu":
            switch try n.string("approximate") ?? "none" {
            case "none": f = .gelu(tanhApproximation: false)
            case "tanh": f = .gelu(tanhApproximation: true)
            case let other: throw n.badAttribute("approximate", "'\(other)': expected none or tanh")
            }
        case "Softplus":
            // beta and threshold: only on the node that ActivationPatterns makes of torch's thresholded form.
            let beta = try finite(n, "beta", 1), threshold = try n.float("threshold", .infinity)
            guard beta > 0, !threshold.isNaN else { throw n.badAttribute("beta", "beta must be above 0 and the threshold a number") }
            f = .softplus(beta: beta, threshold: threshold)
        case "Mish": f = .mish
        default: throw .unsupportedOp(opType: n.node.opType, node: n.name, advice: unsupportedOpAdvice(n.node.opType))
        }
        try addLayer(n, .lut(f), inputs: [x], shape: graph.values[x].shape)
        if rank2.contains(n.input(0)) { rank2.insert(n.node.output[0]) }
    }

    /// PRelu with slopes a_c <= 1 per channel: y = x + (a_c - 1) min(x, 0), and (a_c - 1) min(x, 0) is
    /// max((a_c - 1) x, 0), a 1x1 depthwise conv clamped at 0; then an ADD of x and it.
    private mutating func perChannelPRelu(_ n: NodeView, _ x: Int) throws(QuantizeError) {
        let shape = graph.values[x].shape
        guard !rank2.contains(n.input(0)), let slope = try perChannelConstant(n, 1, channels: shape.c) else {
            throw n.unsupported("its slopes do not broadcast per channel over a \(shape) tensor: one slope, or one per channel ([C, 1, 1]), is supported")
        }
        guard slope.allSatisfy({ $0 <= 1 }) else { throw n.unsupported("a slope above 1: per-channel slopes are supported up to 1") }
        let scale = ConvParams.perChannel(scale: slope.map { $0 - 1 }, shift: [Float](repeating: 0, count: shape.c))
        let negative = try addLayer(n, .conv(scale), inputs: [x], shape: shape, output: "\(n.node.output[0])#negative")
        graph.layers[negative].clampMin = 0
        try addLayer(n, .add, inputs: [x, graph.layers[negative].output], shape: shape)
    }

    /// A float attribute that must be finite.
    private func finite(_ n: NodeView, _ name: String, _ d: Float) throws(QuantizeError) -> Float {
        let v = try n.float(name, d)
        guard v.isFinite else { throw n.badAttribute(name, "\(v) is not finite") }
        return v
    }

    /// ReLU/Clip: fused into the Conv, Gemm, MatMul, Add or Mul that writes its input for this node alone;
    /// after an op that takes no clamp (Concat, table, gather, pool), or one whose output others read too, a
    /// table of its own; on the graph input refused, with the message that says where it may stand.
    mutating func clampOrLUT(_ n: NodeView, min lo: Float, max hi: Float) throws(QuantizeError) {
        let x = try activation(n, 0)
        let producer = graph.values[x].producer.map { graph.layers[$0].kind }
        let fusable: Bool
        switch producer {
        case .conv?, .fullyConnected?, .add?, .mul?: fusable = consumers[resolve(n.input(0))] == 1
        case nil: fusable = true
        default: fusable = false
        }
        if fusable { return try fuseClamp(n, min: lo, max: hi) }
        try addLayer(n, .lut(.clamp(min: lo, max: hi)), inputs: [x], shape: graph.values[x].shape)
        if rank2.contains(n.input(0)) { rank2.insert(n.node.output[0]) }
    }
}
