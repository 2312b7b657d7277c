import Foundation

/// Activations that exporters write as several nodes, rewritten before the import into the one node
/// each stands for, which becomes one table:
/// - GELU as torch's legacy exporter writes it below opset 20, `Mul(Mul(x, Add(Erf(Div(x, sqrt 2)), 1)), 0.5)`,
///   or with `approximate='tanh'` the same around `Tanh(sqrt(2 / pi) (x + 0.044715 x x x))`: a Gelu node;
/// - `nn.Softplus(beta, threshold)` as the default exporter writes it, `Where(Greater(s, t), x, Div(Softplus(s), beta))`
///   with `s = Mul(x, beta)` (for beta 1: `Where(Greater(x, t), x, Softplus(x))`): a Softplus node with the
///   attributes `beta` and `threshold`, which ONNX's Softplus does not have (Sieve's own, read by the import).
/// Operands of Add and Mul may come in either order; every intermediate must be read only inside the pattern.
struct ActivationPatterns {
    private let g: Onnx_GraphProto
    private var producer: [String: Int] = [:], readers: [String: [Int]] = [:]
    private var scalars: [String: Float] = [:]
    private var removed = Set<Int>(), replacement: [Int: Onnx_NodeProto] = [:]

    static func fused(_ g: Onnx_GraphProto) -> [Onnx_NodeProto] {
        var patterns = ActivationPatterns(g)
        for (i, node) in g.node.enumerated() where node.output.count == 1 {
            switch node.opType {
            case "Erf", "Tanh": patterns.fuseGelu(around: i)
            case "Where": patterns.fuseSoftplusThreshold(at: i)
            default: break
            }
        }
        guard !patterns.replacement.isEmpty else { return g.node }
        return g.node.indices.compactMap { i in patterns.removed.contains(i) ? nil : (patterns.replacement[i] ?? g.node[i]) }
    }

    private init(_ g: Onnx_GraphProto) {
        self.g = g
        for (i, node) in g.node.enumerated() {
            for output in node.output { producer[output] = i }
            for input in node.input where !input.isEmpty { readers[input, default: []].append(i) }
        }
        for output in g.output { readers[output.name, default: []].append(-1) }
        scalars = ActivationPatterns.scalarConstants(g)
    }

    // MARK: GELU

    private mutating func fuseGelu(around e: Int) {
        let inner = g.node[e]
        let tanh = inner.opType == "Tanh"
        guard inner.input.count == 1, let (x, argument) = tanh ? tanhArgument(e) : erfArgument(e),
              let a = soleReader(inner.output[0], "Add"), isScalar(other(a, than: inner.output[0]), 1),
              let m = soleReader(g.node[a].output[0], "Mul"), other(m, than: g.node[a].output[0]) == x,
              let h = soleReader(g.node[m].output[0], "Mul"), isScalar(other(h, than: g.node[m].output[0]), 0.5) else { return }
        var gelu = node("Gelu", input: x, replacing: h)
        if tanh { gelu.attribute = [stringAttribute("approximate", "tanh")] }
        removed.formUnion(argument + [e, a, m])
        replacement[h] = gelu
    }

    /// erf(x / sqrt 2) (or x * (1 / sqrt 2)): x and the node computing the argument.
    private func erfArgument(_ e: Int) -> (x: String, nodes: [Int])? {
        let argument = g.node[e].input[0]
        if let d = soleProducer(argument, "Div", readBy: e), g.node[d].input.count == 2, isScalar(g.node[d].input[1], Float(2).squareRoot()) {
            return (g.node[d].input[0], [d])
        }
        if let d = soleProducer(argument, "Mul", readBy: e), let x = scaled(d, by: 1 / Float(2).squareRoot()) { return (x, [d]) }
        return nil
    }

    /// tanh(sqrt(2 / pi) (x + 0.044715 x^3)), x^3 as x * (x * x): x and the nodes computing the argument.
    private func tanhArgument(_ t: Int) -> (x: String, nodes: [Int])? {
        guard let u = soleProducer(g.node[t].input[0], "Mul", readBy: t), let sum = scaled(u, by: 0.7978845608),
              let v = soleProducer(sum, "Add", readBy: u), g.node[v].input.count == 2 else { return nil }
        for (cubicTerm, x) in [(g.node[v].input[1], g.node[v].input[0]), (g.node[v].input[0], g.node[v].input[1])] {
            guard let w = soleProducer(cubicTerm, "Mul", readBy: v), let cube = scaled(w, by: 0.044715),
                  let p = soleProducer(cube, "Mul", readBy: w), let square = other(p, than: x),
                  let q = soleProducer(square, "Mul", readBy: p), g.node[q].input == [x, x] else { continue }
            return (x, [q, p, w, v, u])
        }
        return nil
    }

    // MARK: Softplus with a threshold

    private mutating func fuseSoftplusThreshold(at w: Int) {
        let inputs = g.node[w].input
        guard inputs.count == 3, let c = soleProducer(inputs[0], "Greater", readBy: w), g.node[c].input.count == 2,
              let threshold = scalars[g.node[c].input[1]], !threshold.isNaN else { return }
        let x = inputs[1], s = g.node[c].input[0]
        var beta: Float = 1, nodes = [c]
        if s == x {  // beta 1: Where(x > t, x, Softplus(x))
            guard let sp = soleProducer(inputs[2], "Softplus", readBy: w), g.node[sp].input == [x] else { return }
            nodes.append(sp)
        } else {  // Where(beta x > t, x, Softplus(beta x) / beta)
            guard let d = soleProducer(inputs[2], "Div", readBy: w), g.node[d].input.count == 2, let b = scalars[g.node[d].input[1]],
                  let sp = soleProducer(g.node[d].input[0], "Softplus", readBy: d), g.node[sp].input == [s],
                  let m = producer[s], g.node[m].opType == "Mul", Set(readers[s] ?? []) == [sp, c], readers[s]?.count == 2,
                  scaled(m, by: b) == x, b.isFinite, b > 0 else { return }
            beta = b
            nodes += [d, sp, m]
        }
        var softplus = node("Softplus", input: x, replacing: w)
        softplus.attribute = [floatAttribute("beta", beta), floatAttribute("threshold", threshold)]
        removed.formUnion(nodes)
        replacement[w] = softplus
    }

    // MARK: Helpers

    /// The node that alone reads `name`, if it is of this type.
    private func soleReader(_ name: String, _ opType: String) -> Int? {
        guard let r = readers[name], r.count == 1, r[0] >= 0, g.node[r[0]].opType == opType else { return nil }
        return r[0]
    }

    /// The node writing `name` if it is of this type and `reader` alone reads `name`.
    private func soleProducer(_ name: String, _ opType: String, readBy reader: Int) -> Int? {
        guard let i = producer[name], g.node[i].opType == opType, readers[name] == [reader] else { return nil }
        return i
    }

    /// For a two-input node reading `name`, the other input.
    private func other(_ i: Int, than name: String) -> String? {
        let inputs = g.node[i].input
        guard inputs.count == 2 else { return nil }
        return inputs[0] == name ? inputs[1] : (inputs[1] == name ? inputs[0] : nil)
    }

    /// The other input of a two-input node when one is the scalar `value`.
    private func scaled(_ i: Int, by value: Float) -> String? {
        let inputs = g.node[i].input
        guard inputs.count == 2 else { return nil }
        return isScalar(inputs[0], value) ? inputs[1] : (isScalar(inputs[1], value) ? inputs[0] : nil)
    }

    private func isScalar(_ name: String?, _ value: Float) -> Bool {
        guard let name, let v = scalars[name] else { return false }
        return abs(v - value) <= 1e-6 * max(1, abs(value))
    }

    /// A node of `opType` reading `input` that writes the output of node `last` under its name.
    private func node(_ opType: String, input: String, replacing last: Int) -> Onnx_NodeProto {
        var n = Onnx_NodeProto()
        n.opType = opType
        n.name = g.node[last].name.isEmpty ? "\(opType)#\(last)" : g.node[last].name
        n.input = [input]
        n.output = [g.node[last].output[0]]
        return n
    }

    private func floatAttribute(_ name: String, _ value: Float) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto()
        a.name = name
        a.type = .float
        a.f = value
        return a
    }

    private func stringAttribute(_ name: String, _ value: String) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto()
        a.name = name
        a.type = .string
        a.s = Data(value.utf8)
        return a
    }

    /// Float scalars among the initializers and Constant nodes, by name.
    private static func scalarConstants(_ g: Onnx_GraphProto) -> [String: Float] {
        var tensors: [(String, Onnx_TensorProto)] = g.initializer.map { ($0.name, $0) }
        for node in g.node where node.opType == "Constant" && node.output.count == 1 && node.attribute.count == 1 {
            if let t = ONNXImporter.constantTensor(node.attribute[0]) { tensors.append((node.output[0], t)) }
        }
        var scalars: [String: Float] = [:]
        for (name, t) in tensors where t.dims.allSatisfy({ $0 == 1 }) {
            if let value = try? ONNXImporter.decodeFloats(t, name: name), value.data.count == 1 { scalars[name] = value.data[0] }
        }
        return scalars
    }
}
