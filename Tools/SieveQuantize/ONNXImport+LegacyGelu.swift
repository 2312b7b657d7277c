import Foundation

/// GELU as torch's legacy exporter writes it below opset 20, `Mul(Mul(x, Add(Erf(Div(x, sqrt 2)), 1)), 0.5)`,
/// or with `approximate='tanh'` the same around Tanh(sqrt(2 / pi) (x + 0.044715 x x x)), rewritten before
/// the import into the one Gelu node the default exporter writes, which becomes one table. Operands of Add
/// and Mul may come in either order; every intermediate must have the next node as its one reader.
extension ONNXImporter {
    static func legacyGeluFused(_ g: Onnx_GraphProto) -> [Onnx_NodeProto] {
        var producer: [String: Int] = [:], readers: [String: [Int]] = [:]
        for (i, node) in g.node.enumerated() {
            for output in node.output { producer[output] = i }
            for input in node.input where !input.isEmpty { readers[input, default: []].append(i) }
        }
        for output in g.output { readers[output.name, default: []].append(-1) }
        let scalars = scalarConstants(g)

        /// The node that alone reads `name`, if it is of this type.
        func soleReader(_ name: String, _ opType: String) -> Int? {
            guard let r = readers[name], r.count == 1, r[0] >= 0, g.node[r[0]].opType == opType else { return nil }
            return r[0]
        }
        /// For a two-input node reading `name`, the other input.
        func other(_ i: Int, than name: String) -> String? {
            let inputs = g.node[i].input
            guard inputs.count == 2 else { return nil }
            return inputs[0] == name ? inputs[1] : (inputs[1] == name ? inputs[0] : nil)
        }
        func isScalar(_ name: String?, _ value: Float) -> Bool {
            guard let name, let v = scalars[name] else { return false }
            return abs(v - value) <= 1e-6 * max(1, abs(value))
        }

        /// The node writing `name` if it is of this type and `reader` alone reads `name`.
        func soleProducer(_ name: String, _ opType: String, readBy reader: Int) -> Int? {
            guard let i = producer[name], g.node[i].opType == opType, readers[name] == [reader] else { return nil }
            return i
        }
        /// The other input of a two-input node when one is the scalar `value`.
        func scaled(_ i: Int, by value: Float) -> String? {
            let inputs = g.node[i].input
            guard inputs.count == 2 else { return nil }
            return isScalar(inputs[0], value) ? inputs[1] : (isScalar(inputs[1], value) ? inputs[0] : nil)
        }
        /// erf(x / sqrt 2) (or x * (1 / sqrt 2)): x and the node computing the argument.
        func erfArgument(_ e: Int) -> (x: String, nodes: [Int])? {
            let argument = g.node[e].input[0]
            if let d = soleProducer(argument, "Div", readBy: e), g.node[d].input.count == 2, isScalar(g.node[d].input[1], Float(2).squareRoot()) {
                return (g.node[d].input[0], [d])
            }
            if let d = soleProducer(argument, "Mul", readBy: e), let x = scaled(d, by: 1 / Float(2).squareRoot()) { return (x, [d]) }
            return nil
        }
        /// tanh(sqrt(2 / pi) (x + 0.044715 x^3)), x^3 as x * (x * x): x and the nodes computing the argument.
        func tanhArgument(_ t: Int) -> (x: String, nodes: [Int])? {
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

        var removed = Set<Int>(), replacement: [Int: Onnx_NodeProto] = [:]
        for (e, inner) in g.node.enumerated() where ["Erf", "Tanh"].contains(inner.opType) && inner.input.count == 1 && inner.output.count == 1 {
            let tanh = inner.opType == "Tanh"
            guard let (x, argument) = tanh ? tanhArgument(e) : erfArgument(e),
                  let a = soleReader(inner.output[0], "Add"), isScalar(other(a, than: inner.output[0]), 1),
                  let m = soleReader(g.node[a].output[0], "Mul"), other(m, than: g.node[a].output[0]) == x,
                  let h = soleReader(g.node[m].output[0], "Mul"), isScalar(other(h, than: g.node[m].output[0]), 0.5) else { continue }
            var gelu = Onnx_NodeProto()
            gelu.opType = "Gelu"
            gelu.name = g.node[h].name.isEmpty ? "Gelu#\(h)" : g.node[h].name
            gelu.input = [x]
            gelu.output = [g.node[h].output[0]]
            if tanh {
                var approximate = Onnx_AttributeProto()
                approximate.name = "approximate"
                approximate.type = .string
                approximate.s = Data("tanh".utf8)
                gelu.attribute = [approximate]
            }
            removed.formUnion(argument + [e, a, m])
            replacement[h] = gelu
        }
        guard !replacement.isEmpty else { return g.node }
        return g.node.indices.compactMap { i in removed.contains(i) ? nil : (replacement[i] ?? g.node[i]) }
    }

    /// Float scalars among the initializers and Constant nodes, by name.
    private static func scalarConstants(_ g: Onnx_GraphProto) -> [String: Float] {
        var tensors: [(String, Onnx_TensorProto)] = g.initializer.map { ($0.name, $0) }
        for node in g.node where node.opType == "Constant" && node.output.count == 1 {
            if let a = node.attribute.first(where: { $0.name == "value" }) { tensors.append((node.output[0], a.t)) }
            if let a = node.attribute.first(where: { $0.name == "value_float" }) {
                var t = Onnx_TensorProto()
                t.dataType = Int32(Onnx_TensorProto.DataType.float.rawValue)
                t.floatData = [a.f]
                tensors.append((node.output[0], t))
            }
        }
        var scalars: [String: Float] = [:]
        for (name, t) in tensors where t.dataType == Int32(Onnx_TensorProto.DataType.float.rawValue) && t.dims.allSatisfy({ $0 == 1 }) {
            if t.floatData.count == 1 {
                scalars[name] = t.floatData[0]
            } else if t.floatData.isEmpty && t.rawData.count == 4 {
                scalars[name] = Float(bitPattern: t.rawData.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(as: UInt32.self)) })
            }
        }
        return scalars
    }
}
