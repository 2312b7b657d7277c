/// Folds the small integer subgraphs exporters emit to compute shapes and pads (the legacy
/// exporter's ZeroPad2d: ConstantOfShape, Concat, Reshape, Slice, Transpose, Cast; `view(N, -1)`:
/// Shape, Gather, Unsqueeze, Concat) into constants, so the Pad or Reshape reading them sees one;
/// and arithmetic on float constants (the legacy exporter's TF "same" padding in timm's tf_* networks:
/// Ceil, Sub, Mul, Add, Clip, Div, Cast of scalars).
extension ONNXImporter {
    static let foldableOps: Set<String> = ["Shape", "ConstantOfShape", "Concat", "Reshape", "Slice", "Transpose", "Cast", "Gather",
                                           "Unsqueeze", "Squeeze", "Mul", "Add", "Sub", "Div", "Ceil", "Floor", "Neg", "Clip", "Max", "Min"]

    /// An int64 tensor, row-major.
    struct IntTensor { var dims: [Int]; var data: [Int64] }

    /// True when `n` computes a constant from constants (or the static shape of an activation) and was folded.
    mutating func foldConstant(_ n: NodeView) throws(QuantizeError) -> Bool {
        guard Self.foldableOps.contains(n.node.opType) else { return false }
        let inputs = n.node.input.filter { !$0.isEmpty }
        if n.node.opType == "Shape" {
            let s: Shape
            if let v = valueOf[n.input(0)] {
                s = graph.values[v].shape
            } else if let g = pendingGathers[n.input(0)] {
                let from = graph.values[g.value].shape
                s = Shape(c: g.index.count, h: from.h, w: from.w)
            } else if let t = constants[n.input(0)] {  // a constant's own dims
                store(n, IntTensor(dims: [t.dims.count], data: t.dims))
                return true
            } else {
                return false
            }
            var dims: [Int64] = rank2.contains(n.input(0)) ? [1, Int64(s.count)] : [1, Int64(s.c), Int64(s.h), Int64(s.w)]
            let start = try n.int("start", 0), end = try n.int("end", dims.count)
            let lo = max(0, min(dims.count, start < 0 ? start + dims.count : start)), hi = max(lo, min(dims.count, end < 0 ? end + dims.count : end))
            dims = Array(dims[lo..<hi])
            store(n, IntTensor(dims: [dims.count], data: dims))
            return true
        }
        guard !inputs.isEmpty, inputs.allSatisfy({ constants[$0] != nil }) else { return false }
        if try foldFloatArithmetic(n) { return true }
        var ints: [IntTensor] = []
        for i in n.node.input.indices where !n.input(i).isEmpty {
            guard let t = try intTensor(n.input(i)) else { return false }
            ints.append(t)
        }
        let result: IntTensor
        switch n.node.opType {
        case "ConstantOfShape":
            let dims = ints[0].data.map { Int($0) }
            guard dims.allSatisfy({ $0 >= 0 }), let count = checkedProduct(dims), count <= 1 << 16 else { throw n.unsupported("shape \(dims) is too large") }
            var fill: Int64 = 0
            if let a = n.attribute("value") {
                guard let t = try intTensor(a.t, name: "value"), t.data.count == 1 else { return false }
                fill = t.data[0]
            }
            result = IntTensor(dims: dims, data: [Int64](repeating: fill, count: count))
        case "Concat":
            guard ints.allSatisfy({ $0.dims.count == 1 }) else { return false }
            result = IntTensor(dims: [ints.reduce(0) { $0 + $1.data.count }], data: ints.flatMap { $0.data })
        case "Reshape":
            guard ints.count == 2 else { throw n.unsupported("Reshape needs a data and a shape input") }
            var dims = ints[1].data.map { Int($0) }
            let count = ints[0].data.count
            for i in dims.indices where dims[i] == 0 && i < ints[0].dims.count { dims[i] = ints[0].dims[i] }
            if let m = dims.firstIndex(of: -1) {
                guard let known = checkedProduct(dims.enumerated().filter { $0.offset != m }.map { $0.element }), known > 0 else { return false }
                dims[m] = count / known
            }
            guard checkedProduct(dims) == count else { throw n.unsupported("reshaping \(ints[0].dims) to \(ints[1].data)") }
            result = IntTensor(dims: dims, data: ints[0].data)
        case "Cast", "Squeeze", "Unsqueeze":
            // Integer to integer casts keep the values; (un)squeezing a small constant only matters to its dims.
            if n.node.opType == "Cast" {
                let to = try n.int("to", 7)
                guard [6, 7, 2, 3, 4, 5, 12, 13].contains(to) else { return false }
                result = ints[0]
            } else {
                let data = ints[0].data
                result = IntTensor(dims: n.node.opType == "Squeeze" && data.count == 1 ? [] : [data.count], data: data)
            }
        case "Gather":
            guard ints.count == 2 else { throw n.unsupported("Gather needs a data and an indices input") }
            let data = ints[0], index = ints[1]
            guard data.dims.count == 1, try n.int("axis", 0) == 0 else { return false }
            var out: [Int64] = []
            for i in index.data {
                let j = i < 0 ? Int(i) + data.data.count : Int(i)
                guard data.data.indices.contains(j) else { throw n.unsupported("index \(i) is outside \(data.data.count) values") }
                out.append(data.data[j])
            }
            result = IntTensor(dims: index.dims, data: out)
        case "Transpose":
            let t = ints[0]
            let perm = try n.ints("perm") ?? Array(t.dims.indices.reversed())
            guard perm.sorted() == Array(t.dims.indices) else { throw n.badAttribute("perm", "\(perm) is not a permutation of \(t.dims.count) axes") }
            let outDims = perm.map { t.dims[$0] }
            let inStrides = strides(t.dims)
            var out = [Int64](repeating: 0, count: t.data.count)
            for flat in out.indices {
                var rem = flat, src = 0
                for (axis, stride) in strides(outDims).enumerated() {
                    let idx = rem / stride; rem %= stride
                    src += idx * inStrides[perm[axis]]
                }
                out[flat] = t.data[src]
            }
            result = IntTensor(dims: outDims, data: out)
        case "Slice":
            result = try slice(n, ints)
        case "Mul", "Add", "Sub", "Div":
            guard ints.count == 2 else { return false }
            let a = ints[0], b = ints[1]
            guard !a.data.isEmpty, !b.data.isEmpty, a.data.count == b.data.count || a.data.count == 1 || b.data.count == 1 else { return false }
            let count = max(a.data.count, b.data.count)
            var out: [Int64] = []
            for i in 0..<count {
                let x = a.data[a.data.count == 1 ? 0 : i], y = b.data[b.data.count == 1 ? 0 : i]
                switch n.node.opType {
                case "Mul": out.append(x &* y)
                case "Add": out.append(x &+ y)
                case "Sub": out.append(x &- y)
                default:
                    let (quotient, overflow) = x.dividedReportingOverflow(by: y)
                    guard !overflow else { throw n.unsupported("integer division by zero or of -2^63 by -1") }
                    out.append(quotient)
                }
            }
            result = IntTensor(dims: a.data.count >= b.data.count ? a.dims : b.dims, data: out)
        default:
            return false
        }
        store(n, result)
        return true
    }

    /// Elementwise arithmetic on constants of which one is float (or a rounding op): computed in double,
    /// stored as float32, or as int64 for a Cast to an integer type (truncated toward zero, as ONNX Runtime
    /// does) and for rounding ops on integers. Broadcasts a scalar against a tensor only.
    private mutating func foldFloatArithmetic(_ n: NodeView) throws(QuantizeError) -> Bool {
        let op = n.node.opType
        let structural = ["Unsqueeze", "Squeeze", "Concat"].contains(op)
        guard structural || ["Add", "Sub", "Mul", "Div", "Ceil", "Floor", "Neg", "Clip", "Max", "Min", "Cast"].contains(op) else { return false }
        var operands: [(dims: [Int], data: [Double], isFloat: Bool)?] = []
        for i in n.node.input.indices {
            let name = n.input(i)
            guard !name.isEmpty, let t = constants[name] else { operands.append(nil); continue }
            switch Onnx_TensorProto.DataType(rawValue: Int(t.dataType)) {
            case .float?, .double?:
                let (dims, data) = try ONNXImporter.decodeFloats(t, name: name)
                operands.append((dims, data.map { Double($0) }, true))
            default:
                guard let ints = try intTensor(t, name: name) else { return false }
                operands.append((ints.dims, ints.data.map { Double($0) }, false))
            }
        }
        guard let first = operands.first ?? nil else { return false }
        let anyFloat = operands.contains { $0?.isFloat == true }
        if structural {  // float scalars and vectors (un)squeezed and joined, as the integer path does
            guard anyFloat else { return false }
            var proto = Onnx_TensorProto()
            proto.name = n.node.output[0]
            proto.dataType = Int32(Onnx_TensorProto.DataType.float.rawValue)
            if op == "Concat" {
                let parts = operands.compactMap { $0 }
                guard parts.allSatisfy({ $0.dims.count <= 1 }) else { return false }
                proto.floatData = parts.flatMap { $0.data.map { Float($0) } }
                proto.dims = [Int64(proto.floatData.count)]
            } else {
                guard first.isFloat else { return false }
                proto.floatData = first.data.map { Float($0) }
                proto.dims = op == "Squeeze" && first.data.count == 1 ? [] : [Int64(first.data.count)]
            }
            constants[n.node.output[0]] = proto
            return true
        }
        // Integer arithmetic keeps its own (integer division) path.
        guard anyFloat || ["Ceil", "Floor", "Neg", "Clip", "Max", "Min", "Cast"].contains(op) else { return false }
        if ["Add", "Sub", "Mul", "Div"].contains(op) { guard operands.count == 2, operands[1] != nil else { return false } }
        let present = operands.compactMap { $0 }
        let count = present.map { $0.data.count }.max() ?? 0
        guard present.allSatisfy({ $0.data.count == count || $0.data.count == 1 }) else { return false }
        let dims = present.first { $0.data.count == count }!.dims
        func at(_ k: Int, _ i: Int) -> Double? { operands.indices.contains(k) ? operands[k].map { $0.data[$0.data.count == 1 ? 0 : i] } : nil }
        var out: [Double] = []
        var integer = !anyFloat
        for i in 0..<count {
            let x = first.data[first.data.count == 1 ? 0 : i]
            switch op {
            case "Add": out.append(x + at(1, i)!)
            case "Sub": out.append(x - at(1, i)!)
            case "Mul": out.append(x * at(1, i)!)
            case "Div": out.append(x / at(1, i)!)
            case "Ceil": out.append(x.rounded(.up))
            case "Floor": out.append(x.rounded(.down))
            case "Neg": out.append(-x)
            case "Max": out.append(present.map { $0.data[$0.data.count == 1 ? 0 : i] }.max()!)
            case "Min": out.append(present.map { $0.data[$0.data.count == 1 ? 0 : i] }.min()!)
            case "Clip":
                let lo = at(1, i) ?? -.infinity, hi = at(2, i) ?? .infinity
                out.append(Swift.min(Swift.max(x, lo), hi))
            default:  // Cast
                let to = try n.int("to", 1)
                if [6, 7, 2, 3, 4, 5, 12, 13].contains(to) {
                    integer = true
                    out.append(x.rounded(.towardZero))
                } else if [1, 11].contains(to) {
                    integer = false
                    out.append(x)
                } else {
                    return false
                }
            }
        }
        guard out.allSatisfy({ $0.isFinite }) else { throw n.unsupported("folding its constant inputs gives a value that is not finite") }
        var proto = Onnx_TensorProto()
        proto.name = n.node.output[0]
        proto.dims = dims.map { Int64($0) }
        if integer {
            guard out.allSatisfy({ abs($0) < 9.0e18 }) else { throw n.unsupported("folding its constant inputs gives an integer out of range") }
            proto.dataType = Int32(Onnx_TensorProto.DataType.int64.rawValue)
            proto.int64Data = out.map { Int64($0) }
        } else {
            proto.dataType = Int32(Onnx_TensorProto.DataType.float.rawValue)
            proto.floatData = out.map { Float($0) }
        }
        constants[n.node.output[0]] = proto
        return true
    }

    private func strides(_ dims: [Int]) -> [Int] {
        var s = [Int](repeating: 1, count: dims.count)
        var acc = 1
        for i in dims.indices.reversed() { s[i] = acc; acc *= dims[i] }
        return s
    }

    private func slice(_ n: NodeView, _ ints: [IntTensor]) throws(QuantizeError) -> IntTensor {
        let t = ints[0]
        guard ints.count >= 3 else { throw n.unsupported("Slice needs starts and ends inputs (opset 10+)") }
        let starts = ints[1].data, ends = ints[2].data
        let axes = ints.count > 3 ? ints[3].data.map { Int($0) } : Array(0..<starts.count)
        let steps = ints.count > 4 ? ints[4].data : [Int64](repeating: 1, count: starts.count)
        guard starts.count == ends.count, axes.count == starts.count, steps.count == starts.count else { throw n.unsupported("starts, ends, axes and steps differ in length") }
        var indices = t.dims.map { Array(0..<$0) }
        for (i, rawAxis) in axes.enumerated() {
            let axis = rawAxis < 0 ? rawAxis + t.dims.count : rawAxis
            guard t.dims.indices.contains(axis), steps[i] != 0 else { throw n.unsupported("axis \(rawAxis) or step 0") }
            let d = Int64(t.dims[axis]), step = steps[i]
            func clampIndex(_ v: Int64, _ lo: Int64, _ hi: Int64) -> Int64 { Swift.max(lo, Swift.min(hi, v < 0 ? v + d : v)) }
            var list: [Int] = []
            if step > 0 {
                var j = clampIndex(starts[i], 0, d)
                let e = clampIndex(ends[i], 0, d)
                while j < e { list.append(Int(j)); j = j.addingReportingOverflow(step).overflow ? e : j + step }
            } else {
                var j = clampIndex(starts[i], 0, d - 1)
                let e = clampIndex(ends[i], -1, d - 1)
                while j > e { list.append(Int(j)); j = j.addingReportingOverflow(step).overflow ? e : j + step }
            }
            indices[axis] = list
        }
        let outDims = indices.map { $0.count }
        let inStrides = strides(t.dims), outStrides = strides(outDims)
        let count = outDims.reduce(1, *)
        var out = [Int64](repeating: 0, count: count)
        for flat in 0..<count {
            var rem = flat, src = 0
            for axis in outDims.indices {
                let idx = rem / outStrides[axis]; rem %= outStrides[axis]
                src += indices[axis][idx] * inStrides[axis]
            }
            out[flat] = t.data[src]
        }
        return IntTensor(dims: outDims, data: out)
    }

    private func intTensor(_ name: String) throws(QuantizeError) -> IntTensor? {
        guard let t = constants[name] else { return nil }
        return try intTensor(t, name: name)
    }

    private func intTensor(_ t: Onnx_TensorProto, name: String) throws(QuantizeError) -> IntTensor? {
        switch Onnx_TensorProto.DataType(rawValue: Int(t.dataType)) {
        case .int64?, .int32?:
            return IntTensor(dims: t.dims.map { Int($0) }, data: try decodeInt64s(t, name: name))
        default:
            return nil
        }
    }

    private mutating func store(_ n: NodeView, _ t: IntTensor) {
        var proto = Onnx_TensorProto()
        proto.name = n.node.output[0]
        proto.dataType = Int32(Onnx_TensorProto.DataType.int64.rawValue)
        proto.dims = t.dims.map { Int64($0) }
        proto.int64Data = t.data
        constants[n.node.output[0]] = proto
    }
}
