import CSieveKernels

/// The kernel parameters of CONCAT, MUL, LUT and GATHER (docs/FORMAT.md), built once at load.
extension Interpreter {
    static func elementwiseStep(_ model: Model, _ op: OpRecord, tensor: (UInt32) -> UnsafePointer<Int8>,
                                output: UnsafeMutablePointer<Int8>) -> Step {
        let outT = model.tensors[Int(op.output)]
        switch op.opKind! {
        case .concat:
            let inputs = op.inputs
            var p = sieve_concat_params()
            p.input_count = Int32(inputs.count)
            p.output = output
            p.pixels = Int32(Int(outT.h) * Int(outT.w))
            let tables = model.pointer(op.weights, as: Int8.self)
            for (k, t) in inputs.enumerated() {
                let table = tables + 256 * k
                // The identity table (same quantisation) is a plain copy.
                var identity = true
                for q in 0..<256 where Int(table[q]) != q - 128 { identity = false; break }
                let pointer = identity ? nil : table
                let channels = Int32(model.tensors[Int(t)].c)
                switch k {
                case 0: p.inputs.0 = tensor(t); p.tables.0 = pointer; p.channels.0 = channels
                case 1: p.inputs.1 = tensor(t); p.tables.1 = pointer; p.channels.1 = channels
                case 2: p.inputs.2 = tensor(t); p.tables.2 = pointer; p.channels.2 = channels
                default: p.inputs.3 = tensor(t); p.tables.3 = pointer; p.channels.3 = channels
                }
            }
            return .concat(p)
        case .mul:
            let x0 = model.tensors[Int(op.input0)], x1 = model.tensors[Int(op.input1)]
            let m = model.pointer(op.multipliers, as: Int32.self), s = model.pointer(op.shifts, as: Int32.self)
            return .mul(sieve_mul_params(
                input0: tensor(op.input0), input1: tensor(op.input1), output: output,
                pixels: Int32(Int(outT.h) * Int(outT.w)), channels: Int32(outT.c),
                broadcast: x1.elementCount == x0.elementCount ? 0 : 1,
                zero_point0: x0.zeroPoint, zero_point1: x1.zeroPoint, output_zero_point: outT.zeroPoint,
                multiplier: m[0], shift: s[0], act_min: op.actMin, act_max: op.actMax))
        case .gather:
            let inT = model.tensors[Int(op.input0)]
            return .gather(sieve_gather_params(
                input: tensor(op.input0), output: output, index: model.pointer(op.weights, as: Int32.self),
                pixels: Int32(Int(outT.h) * Int(outT.w)), in_c: Int32(inT.c), out_c: Int32(outT.c)))
        default:
            // One table is groups 1 (docs/FORMAT.md: groups 0); table groups carry their channel map after the tables.
            let groups = max(1, Int(op.groups))
            return .lut(sieve_lut_grouped_params(
                input: tensor(op.input0), output: output, tables: model.pointer(op.weights, as: Int8.self),
                map: groups > 1 ? model.pointer(op.weights, as: UInt8.self) + 256 * groups : nil,
                pixels: Int32(Int(outT.h) * Int(outT.w)), channels: Int32(outT.c), groups: Int32(groups)))
        }
    }
}
