import CSieveKernels

/// Load-time checks of the elementwise ops CONCAT, MUL, LUT and GATHER (docs/FORMAT.md, OPS): shapes,
/// tables and requantisation, and that the fields they do not use are zero.
extension OpKind {
    /// Ops that read input1.
    public var takesTwoInputs: Bool { self == .add || self == .concat || self == .mul }
    /// CONCAT, MUL, LUT and GATHER: no window, no groups, no bias.
    public var isElementwise: Bool { self == .concat || self == .mul || self == .lut || self == .gather }
}

extension Model {
    func checkElementwise(_ op: OpRecord, index i: Int) throws(SieveError) {
        let kind = op.opKind!
        // A LUT's groups is its table count (checked below), zero on the others.
        let geometry = [op.kernelH, op.kernelW, op.strideH, op.strideW, op.padTop, op.padLeft, op.padBottom, op.padRight, kind == .lut ? 0 : op.groups]
        guard geometry.allSatisfy({ $0 == 0 }) else { throw .invalidOp(index: i, reason: "kernel, stride, padding or groups is set on an elementwise op") }
        guard op.bias == DataRef() else { throw .invalidOp(index: i, reason: "unused DataRef bias is not (0, 0)") }
        if kind != .mul {
            guard op.actMin == -128 && op.actMax == 127 else { throw .invalidOp(index: i, reason: "CONCAT, LUT and GATHER take no clamp: act_min/act_max must be -128/127") }
            guard op.multipliers == DataRef() && op.shifts == DataRef() else { throw .invalidOp(index: i, reason: "unused DataRef multipliers/shifts is not (0, 0)") }
        }
        let input = tensors[Int(op.input0)], output = tensors[Int(op.output)]
        switch kind {
        case .concat:
            let parts = op.inputs.map { tensors[Int($0)] }
            guard parts.allSatisfy({ $0.h == output.h && $0.w == output.w }) else {
                throw .invalidOp(index: i, reason: "concat inputs differ from the output in height or width")
            }
            guard parts.reduce(0, { $0 + Int($1.c) }) == Int(output.c) else {
                throw .invalidOp(index: i, reason: "concat output channels are not the sum of the inputs' channels")
            }
            try checkRef(op.weights, bytes: 256 * parts.count, op: i, field: "weights")
        case .mul:
            let other = tensors[Int(op.input1)]
            guard input.h == output.h, input.w == output.w, input.c == output.c else { throw .invalidOp(index: i, reason: "mul input0 and output differ in shape") }
            let broadcast = other.h == 1 && other.w == 1 && other.c == output.c
            let same = other.h == output.h && other.w == output.w && other.c == output.c
            guard broadcast || same else { throw .invalidOp(index: i, reason: "mul input1 is neither 1x1xC nor input0's shape") }
            guard op.weights == DataRef() else { throw .invalidOp(index: i, reason: "unused DataRef weights is not (0, 0)") }
            try checkRequantization(op, channels: 1, index: i)
        case .lut:
            guard input.h == output.h, input.w == output.w, input.c == output.c else { throw .invalidOp(index: i, reason: "lut input and output differ in shape") }
            let groups = Int(op.groups)
            guard groups == 0 || (groups >= 2 && groups <= Int(SIEVE_LUT_MAX_GROUPS) && input.c <= UInt32(SIEVE_LUT_GROUPED_MAX_CHANNELS)) else {
                throw .invalidOp(index: i, reason: "lut groups is neither 0 (one table) nor 2...16 tables over at most 4096 channels")
            }
            try checkRef(op.weights, bytes: groups == 0 ? 256 : 256 * groups + Int(input.c), op: i, field: "weights")
            guard groups == 0 || sieve_lut_map_valid(pointer(op.weights, as: UInt8.self) + 256 * groups, Int32(input.c), Int32(groups)) != 0 else {
                throw .invalidOp(index: i, reason: "a lut channel names a table past its table count")
            }
        case .gather:
            guard input.h == output.h, input.w == output.w else { throw .invalidOp(index: i, reason: "gather input and output differ in height or width") }
            guard input.scale == output.scale, input.zeroPoint == output.zeroPoint else {
                throw .invalidOp(index: i, reason: "gather changes the quantisation")
            }
            try checkRef(op.weights, bytes: 4 * Int(output.c), op: i, field: "weights")
            let index = pointer(op.weights, as: Int32.self)
            for c in 0..<Int(output.c) where index[c] < 0 || index[c] >= Int32(input.c) {
                throw .invalidOp(index: i, reason: "a gather index is outside the input's channels")
            }
        default:
            break
        }
    }
}
