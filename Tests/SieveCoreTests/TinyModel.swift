import SieveTestSupport
import SieveCore

/// A hand-built model small enough to reason about, exercising every container feature:
/// input 1x6x6x2 -> CONV 3x3 pad 1 (4 ch, ReLU) -> MAX_POOL 2x2 -> 3x3x4 -> FC 36->3 (final)
/// with one exclusion head on the conv output: GLOBAL_AVERAGE_POOL -> FC 4->3.
struct TinyModel {
    var info = ModelRecord()
    var tensors: [TensorRecord] = []
    var ops: [OpRecord] = []
    var heads: [HeadRecord] = []
    var labels: [String] = ["cat", "dog", "bird"]
    var data = ByteWriter()
    var provenance = "tool: test\n"

    init() {
        tensors = [
            TensorRecord(h: 6, w: 6, c: 2, scale: 0.02, zeroPoint: -3),    // 0 input
            TensorRecord(h: 6, w: 6, c: 4, scale: 0.05, zeroPoint: -128),  // 1 conv
            TensorRecord(h: 1, w: 1, c: 4, scale: 0.05, zeroPoint: -128),  // 2 head gap
            TensorRecord(h: 1, w: 1, c: 3, scale: 0.1, zeroPoint: 5),      // 3 head logits
            TensorRecord(h: 3, w: 3, c: 4, scale: 0.05, zeroPoint: -128),  // 4 pool
            TensorRecord(h: 1, w: 1, c: 3, scale: 0.08, zeroPoint: -2),    // 5 final logits
        ]
        var conv = OpRecord(kind: .conv)
        conv.input0 = 0; conv.output = 1
        conv.kernelH = 3; conv.kernelW = 3; conv.strideH = 1; conv.strideW = 1
        conv.padTop = 1; conv.padLeft = 1; conv.padBottom = 1; conv.padRight = 1; conv.groups = 1
        conv.actMin = -128
        conv.weights = addArray(int8: (0..<(4 * 9 * 2)).map { Int8(truncatingIfNeeded: ($0 * 37) % 255 - 127) })
        conv.bias = addArray(int32: [100, -200, 300, 0])
        conv.multipliers = addArray(int32: [1 << 30, 1_500_000_000, 1_200_000_000, 2_000_000_000])
        conv.shifts = addArray(int32: [43, 44, 42, 45])

        var gap = OpRecord(kind: .globalAveragePool)
        gap.input0 = 1; gap.output = 2
        var headFC = OpRecord(kind: .fullyConnected)
        headFC.input0 = 2; headFC.output = 3
        headFC.weights = addArray(int8: [1, -2, 3, -4, 5, -6, 7, -8, 9, -10, 11, -12])
        headFC.bias = addArray(int32: [10, 20, -30])
        headFC.multipliers = addArray(int32: [1 << 30, 1 << 30, 1 << 30])
        headFC.shifts = addArray(int32: [38, 38, 38])

        var pool = OpRecord(kind: .maxPool)
        pool.input0 = 1; pool.output = 4
        pool.kernelH = 2; pool.kernelW = 2; pool.strideH = 2; pool.strideW = 2
        var fc = OpRecord(kind: .fullyConnected)
        fc.input0 = 4; fc.output = 5
        fc.weights = addArray(int8: (0..<(3 * 36)).map { Int8(truncatingIfNeeded: ($0 * 53) % 255 - 127) })
        fc.bias = addArray(int32: [1000, -1000, 0])
        fc.multipliers = addArray(int32: [1_400_000_000, 1_300_000_000, 1_100_000_000])
        fc.shifts = addArray(int32: [45, 45, 45])
        ops = [conv, gap, headFC, pool, fc]
        heads = [HeadRecord(kind: .exclusion, tapTensor: 1, logitsTensor: 3, firstOp: 1, opCount: 2)]

        info.tensorCount = UInt32(tensors.count); info.opCount = UInt32(ops.count); info.headCount = 1
        info.classCount = 3; info.inputTensor = 0; info.outputTensor = 5; info.inputChannels = 2
        info.mean = (0.5, 0.4, 0, 0); info.std = (0.25, 0.3, 1, 1)
    }

    mutating func addArray(int8 values: [Int8]) -> DataRef {
        data.align(64)
        let ref = DataRef(offset: UInt32(data.bytes.count), size: UInt32(values.count))
        for v in values { data.bytes.append(UInt8(bitPattern: v)) }
        return ref
    }

    mutating func addArray(int32 values: [Int32]) -> DataRef {
        data.align(64)
        let ref = DataRef(offset: UInt32(data.bytes.count), size: UInt32(4 * values.count))
        for v in values { data.i32(v) }
        return ref
    }

    /// The sections in spec order, as bytes; tests may corrupt one before writing.
    func sections() -> [(SectionKind, [UInt8])] {
        var model = ByteWriter(); info.encode(into: &model)
        var t = ByteWriter(); for r in tensors { r.encode(into: &t) }
        var o = ByteWriter(); for r in ops { r.encode(into: &o) }
        var h = ByteWriter(); for r in heads { r.encode(into: &h) }
        var l = ByteWriter()
        l.u32(UInt32(labels.count))
        var offset = 4 + 8 * labels.count
        for label in labels { l.u32(UInt32(offset)); l.u32(UInt32(label.utf8.count)); offset += label.utf8.count }
        for label in labels { l.bytes.append(contentsOf: Array(label.utf8)) }
        return [(.model, model.bytes), (.tensors, t.bytes), (.ops, o.bytes), (.heads, h.bytes),
                (.labels, l.bytes), (.data, data.bytes), (.provenance, Array(provenance.utf8))]
    }

    func blob() -> [UInt8] {
        var writer = BlobWriter()
        for (kind, bytes) in sections() { writer.add(kind, bytes) }
        return writer.write()
    }
}

/// Loads a blob from bytes, returning the error instead of throwing.
func load(_ bytes: [UInt8]) -> Result<Model, SieveError> {
    bytes.withUnsafeBytes { raw in
        // Copy into 64-aligned memory as a mapped file would be.
        let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: raw.count, alignment: 64)
        copy.copyMemory(from: raw)
        do throws(SieveError) {
            let model = try Model(bytes: UnsafeRawBufferPointer(copy))
            return .success(model)  // leaks `copy` on purpose: the model borrows it
        } catch {
            copy.deallocate()
            return .failure(error)
        }
    }
}
