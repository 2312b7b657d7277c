/// Per-channel affine ops, `y = scale[c] * x + shift[c]`: BatchNormalization anywhere, and
/// Mul/Add/Sub/Div by a per-channel constant. Each folds where that is exact: into the input
/// normalisation, back into the Conv/Gemm that writes x, or forward into the Conv (no padding) or
/// Gemm that reads y. Otherwise it becomes a 1x1 DEPTHWISE_CONV with the scale as its weights and
/// the shift as its bias, which the runtime computes exactly as it would any other conv.
extension ONNXImporter {
    mutating func batchNorm(_ n: NodeView) throws(QuantizeError) {
        if try n.int("training_mode", 0) != 0 { throw n.badAttribute("training_mode", "1: export the model in eval mode") }
        let x = try activation(n, 0)
        let shape = graph.values[x].shape
        let channels = shape.c
        if rank2.contains(n.input(0)) && shape.h * shape.w != 1 {
            throw n.unsupported("BatchNormalization over a flattened \(shape) tensor is not supported; apply it before the Flatten")
        }
        let epsilon = Double(try n.float("epsilon", 1e-5))
        let (_, gamma) = try floats(n, 1, role: "scale")
        let (_, beta) = try floats(n, 2, role: "bias")
        let (_, mean) = try floats(n, 3, role: "mean")
        let (_, variance) = try floats(n, 4, role: "variance")
        guard [gamma, beta, mean, variance].allSatisfy({ $0.count == channels }) else {
            throw n.unsupported("its parameters do not have \(channels) channels")
        }
        var scale = [Double](repeating: 0, count: channels), shift = scale
        for c in 0..<channels {
            guard Double(variance[c]) + epsilon > 0 else { throw n.unsupported("channel \(c) has variance + epsilon <= 0") }
            scale[c] = Double(gamma[c]) / (Double(variance[c]) + epsilon).squareRoot()
            shift[c] = Double(beta[c]) - Double(mean[c]) * scale[c]
        }
        if try foldBatchNormIntoInput(n, scale: scale, shift: shift) { return }
        try applyAffine(n, x: x, scale: scale, shift: shift)
    }

    /// Mul/Add/Sub/Div of an activation by a per-channel (or scalar) constant. False when `n` is not that.
    mutating func constantArithmetic(_ n: NodeView) throws(QuantizeError) -> Bool {
        guard n.node.input.count == 2 else { return false }
        let a = n.input(0), b = n.input(1)
        let activationIndex: Int
        if valueOf[a] != nil && constants[b] != nil { activationIndex = 0 } else if constants[a] != nil && valueOf[b] != nil { activationIndex = 1 } else { return false }
        let x = valueOf[n.input(activationIndex)]!
        let shape = graph.values[x].shape
        let flat = rank2.contains(n.input(activationIndex))
        guard !flat || shape.h * shape.w == 1 else {
            throw n.unsupported("\(n.node.opType) by a constant on a flattened \(shape) tensor is not supported; apply it before the Flatten")
        }
        let c = try constantPerChannel(n, 1 - activationIndex, channels: shape.c, flat: flat)
        let op = n.node.opType
        if activationIndex == 1 && op == "Div" { throw n.unsupported("dividing a constant by an activation is not supported") }
        var scale = [Double](repeating: 1, count: shape.c), shift = [Double](repeating: 0, count: shape.c)
        for ch in 0..<shape.c {
            let v = Double(c[ch])
            switch op {
            case "Add": shift[ch] = v
            case "Sub": if activationIndex == 0 { shift[ch] = -v } else { scale[ch] = -1; shift[ch] = v }
            case "Mul": scale[ch] = v
            case "Div":
                guard v != 0 else { throw n.unsupported("dividing by zero (channel \(ch))") }
                scale[ch] = 1 / v
            default: return false
            }
        }
        try applyAffine(NodeView(node: n.node, index: n.index, inputOverride: n.input(activationIndex)), x: x, scale: scale, shift: shift)
        return true
    }

    private func constantPerChannel(_ n: NodeView, _ i: Int, channels: Int, flat: Bool) throws(QuantizeError) -> [Float] {
        if let c = try perChannelConstant(n, i, channels: channels) { return c }
        let (dims, data) = try floats(n, i, role: "constant")
        // On a [1, C] tensor a [C] or [1, C] constant is per channel too.
        if flat && data.count == channels && dims.filter({ $0 != 1 }).count <= 1 { return data }
        throw n.unsupported("its constant of dims \(dims) does not broadcast per channel over \(channels) channels (a scalar, [1,\(channels),1,1] or [\(channels),1,1] is supported)")
    }

    /// y = scale * x + shift per channel: folded where exact, else a 1x1 depthwise conv.
    mutating func applyAffine(_ n: NodeView, x: Int, scale: [Double], shift: [Double]) throws(QuantizeError) {
        if let l = graph.values[x].producer, consumers[resolve(n.input(0))] == 1, !graph.layers[l].hasClamp {
            switch graph.layers[l].kind {
            case .conv(var p):
                let perChannel = p.weights.count / p.cout
                for oc in 0..<p.cout {
                    for i in 0..<perChannel { p.weights[oc * perChannel + i] = Float(Double(p.weights[oc * perChannel + i]) * scale[oc]) }
                    p.bias[oc] = Float(Double(p.bias[oc]) * scale[oc] + shift[oc])
                }
                guard p.weights.allSatisfy({ $0.isFinite }), p.bias.allSatisfy({ $0.isFinite }) else {
                    throw n.unsupported("folding it into the Conv before gives non-finite weights")
                }
                graph.layers[l].kind = .conv(p)
                renameOutput(of: l, to: n)
                return
            case .fullyConnected(var p):
                for o in 0..<p.cout {
                    for i in 0..<p.k { p.weights[o * p.k + i] = Float(Double(p.weights[o * p.k + i]) * scale[o]) }
                    p.bias[o] = Float(Double(p.bias[o]) * scale[o] + shift[o])
                }
                guard p.weights.allSatisfy({ $0.isFinite }), p.bias.allSatisfy({ $0.isFinite }) else {
                    throw n.unsupported("folding it into the Gemm before gives non-finite weights")
                }
                graph.layers[l].kind = .fullyConnected(p)
                renameOutput(of: l, to: n)
                return
            default:
                break
            }
        }
        let p = ConvParams.perChannel(scale: scale.map { Float($0) }, shift: shift.map { Float($0) })
        guard p.weights.allSatisfy({ $0.isFinite }), p.bias.allSatisfy({ $0.isFinite }) else { throw n.unsupported("its per-channel scale or shift is not finite") }
        let flat = rank2.contains(n.input(0))
        let l = try addLayer(n, .conv(p), inputs: [x], shape: graph.values[x].shape)
        affineLayers.insert(l)
        if flat { rank2.insert(n.node.output[0]) }
    }

    /// The affine layer writing `x` when a Conv (`padded`: with padding) or Gemm reading it may absorb it:
    /// it is the last layer so far, unclamped, and nothing else reads it.
    func absorbableAffine(_ x: Int, name: String) -> (layer: Int, scale: [Float], shift: [Float])? {
        guard let l = graph.values[x].producer, affineLayers.contains(l), l == graph.layers.count - 1, graph.layers[l].output == graph.values.count - 1,
              !graph.layers[l].hasClamp, consumers[resolve(name)] == 1, case .conv(let p) = graph.layers[l].kind else { return nil }
        return (l, p.weights, p.bias)
    }

    /// Removes the last layer (an absorbed affine) and its output value; returns its input value.
    mutating func dropAbsorbedAffine(_ l: Int) -> Int {
        let input = graph.layers[l].inputs[0]
        let output = graph.layers[l].output
        graph.layers.removeLast()
        graph.values.removeLast()
        affineLayers.remove(l)
        for (name, v) in valueOf where v == output { valueOf[name] = input }
        return input
    }

    /// Conv weights and bias with an affine on their input folded in (exact only without padding).
    func foldForward(_ p: inout ConvParams, scale: [Float], shift: [Float]) {
        let taps = p.kh * p.kw
        let coutPerGroup = p.cout / p.groups
        for oc in 0..<p.cout {
            let g = oc / coutPerGroup
            var extra = 0.0
            for ci in 0..<p.cinPerGroup {
                let c = g * p.cinPerGroup + ci
                for t in 0..<taps {
                    let i = (oc * p.cinPerGroup + ci) * taps + t
                    extra += Double(p.weights[i]) * Double(shift[c])
                    p.weights[i] = Float(Double(p.weights[i]) * Double(scale[c]))
                }
            }
            p.bias[oc] = Float(Double(p.bias[oc]) + extra)
        }
    }

    /// FC weights over a flattened C x H x W input with a per-channel affine folded in.
    func foldForward(_ p: inout FCParams, scale: [Float], shift: [Float], plane: Int) {
        for o in 0..<p.cout {
            var extra = 0.0
            for k in 0..<p.k {
                let c = k / plane
                extra += Double(p.weights[o * p.k + k]) * Double(shift[c])
                p.weights[o * p.k + k] = Float(Double(p.weights[o * p.k + k]) * Double(scale[c]))
            }
            p.bias[o] = Float(Double(p.bias[o]) + extra)
        }
    }
}
