/// A blob's graph, decoded and validated (docs/FORMAT.md). After `init` succeeds, every
/// tensor index, shape, data range and quantisation parameter is known to be in range,
/// so the executor runs without further checks. Borrows the blob's bytes; does not own them.
public struct Model {
    public let blob: Blob
    public let info: ModelRecord
    public let tensors: [TensorRecord]
    public let ops: [OpRecord]
    public let heads: [HeadRecord]
    /// (offset, length) of each label inside the LABELS section.
    let labelRanges: [(offset: Int, length: Int)]
    public let data: UnsafeRawBufferPointer

    public init(bytes: UnsafeRawBufferPointer) throws(SieveError) {
        let blob = try Blob(bytes: bytes)
        self.blob = blob
        let modelBytes = blob.section(.model)
        guard modelBytes.count >= BlobLayout.modelRecordSize else {
            throw .sectionTooSmall(name: "MODEL", needed: BlobLayout.modelRecordSize, actual: modelBytes.count)
        }
        let modelReader = ByteReader(modelBytes)
        guard modelReader.u32(28) == 0 && modelReader.allZero(68, 28) else { throw .reservedNotZero(field: "MODEL reserved bytes", index: -1) }
        let info = ModelRecord(modelReader)
        try Model.checkCounts(info)
        self.info = info
        self.tensors = try Model.decode(blob.section(.tensors), count: Int(info.tensorCount), size: BlobLayout.tensorRecordSize,
                                        name: "TENSORS", record: "tensor", reserved: { $0.allZero(24, 8) }) { TensorRecord($0) }
        self.ops = try Model.decode(blob.section(.ops), count: Int(info.opCount), size: BlobLayout.opRecordSize,
                                    name: "OPS", record: "op", reserved: Model.opReservedIsZero) { OpRecord($0) }
        self.heads = try Model.decode(blob.section(.heads), count: Int(info.headCount), size: BlobLayout.headRecordSize,
                                      name: "HEADS", record: "head", reserved: { $0.u32(28) == 0 }) { HeadRecord($0) }
        self.data = blob.section(.data)
        self.labelRanges = try Model.decodeLabels(blob.section(.labels), classCount: Int(info.classCount))
        for (i, t) in tensors.enumerated() { try Model.check(tensor: t, index: i) }
        try checkInput()
        try checkGraph()
        try checkHeads()
    }

    public var provenance: UnsafeRawBufferPointer { blob.section(.provenance) }
    public var classCount: Int { Int(info.classCount) }
    public var inputTensor: TensorRecord { tensors[Int(info.inputTensor)] }
    public var outputTensor: TensorRecord { tensors[Int(info.outputTensor)] }

    /// The bytes of label `index`, valid UTF-8 without control characters, quotes or backslashes.
    public func label(_ index: Int) -> UnsafeRawBufferPointer {
        let r = labelRanges[index]
        return ByteReader(blob.section(.labels)).slice(r.offset, r.length)
    }

    /// A typed pointer to a DATA range that load checked.
    public func pointer<T>(_ ref: DataRef, as type: T.Type) -> UnsafePointer<T> {
        (data.baseAddress! + Int(ref.offset)).assumingMemoryBound(to: T.self)
    }

    /// Multiply-accumulates op `index` performs: the figure `sieve inspect` and the exit statistics count.
    public func macs(op index: Int) -> Int {
        let op = ops[index]
        let input = tensors[Int(op.input0)], output = tensors[Int(op.output)]
        switch op.opKind! {
        case .conv: return output.elementCount * Int(op.kernelH) * Int(op.kernelW) * Int(input.c) / Int(op.groups)
        case .depthwiseConv: return output.elementCount * Int(op.kernelH) * Int(op.kernelW)
        case .fullyConnected: return Int(output.c) * input.elementCount
        default: return 0
        }
    }

    public var fullMACs: Int {
        var total = 0
        for i in ops.indices { total += macs(op: i) }
        return total
    }

    // MARK: - Decoding

    private static func checkCounts(_ info: ModelRecord) throws(SieveError) {
        guard info.tensorCount >= 1 && info.tensorCount <= 4096 else { throw .countOutOfRange(name: "tensor_count", value: info.tensorCount) }
        guard info.opCount >= 1 && info.opCount <= 4096 else { throw .countOutOfRange(name: "op_count", value: info.opCount) }
        guard info.headCount <= 64 else { throw .countOutOfRange(name: "head_count", value: info.headCount) }
        guard info.classCount >= 2 && info.classCount <= 1000 else { throw .countOutOfRange(name: "class_count", value: info.classCount) }
        guard info.inputTensor < info.tensorCount else { throw .countOutOfRange(name: "input_tensor", value: info.inputTensor) }
        guard info.outputTensor < info.tensorCount else { throw .countOutOfRange(name: "output_tensor", value: info.outputTensor) }
        guard info.inputChannels >= 1 && info.inputChannels <= 4 else { throw .countOutOfRange(name: "input_channels", value: info.inputChannels) }
    }

    /// `count` records of `size` bytes; `reserved` says whether a record's reserved fields are zero.
    private static func decode<T>(_ bytes: UnsafeRawBufferPointer, count: Int, size: Int, name: StaticText, record: StaticText,
                                  reserved: (ByteReader) -> Bool, _ make: (ByteReader) -> T) throws(SieveError) -> [T] {
        guard bytes.count >= count * size else { throw .sectionTooSmall(name: name, needed: count * size, actual: bytes.count) }
        let r = ByteReader(bytes)
        var out: [T] = []
        out.reserveCapacity(count)
        for i in 0..<count {
            let fields = ByteReader(r.slice(i * size, size))
            guard reserved(fields) else { throw .reservedNotZero(field: record, index: i) }
            out.append(make(fields))
        }
        return out
    }

    /// An op's reserved word, its unused params (all but ADD's left_shift) and the bytes after them.
    private static func opReservedIsZero(_ r: ByteReader) -> Bool {
        let kind = r.u32(0)
        let firstUnused = kind == OpKind.add.rawValue ? 100 : kind == OpKind.concat.rawValue ? 104 : 96
        return r.u32(60) == 0 && r.allZero(firstUnused, BlobLayout.opRecordSize - firstUnused)
    }

    private static func decodeLabels(_ bytes: UnsafeRawBufferPointer, classCount: Int) throws(SieveError) -> [(offset: Int, length: Int)] {
        let needed = 4 + 8 * classCount
        guard bytes.count >= needed else { throw .sectionTooSmall(name: "LABELS", needed: needed, actual: bytes.count) }
        let r = ByteReader(bytes)
        guard Int(r.u32(0)) == classCount else { throw .invalidLabel(index: -1, reason: "label count differs from class_count") }
        var ranges: [(offset: Int, length: Int)] = []
        for i in 0..<classCount {
            let offset = Int(r.u32(4 + 8 * i)), length = Int(r.u32(8 + 8 * i))
            guard length >= 1 && length <= 255 else { throw .invalidLabel(index: i, reason: "length is not 1...255") }
            guard offset >= needed && offset <= bytes.count - length else { throw .invalidLabel(index: i, reason: "bytes lie outside the LABELS section") }
            for b in r.slice(offset, length) where b < 0x20 || b == 0x7F || b == UInt8(ascii: "\"") || b == UInt8(ascii: "\\") {
                throw .invalidLabel(index: i, reason: "contains a control character, quote or backslash")
            }
            ranges.append((offset, length))
        }
        return ranges
    }

    // MARK: - Validation

    private static func check(tensor t: TensorRecord, index: Int) throws(SieveError) {
        guard t.n == 1 else { throw .invalidTensor(index: index, reason: "batch dimension n is not 1") }
        guard (1...65535).contains(t.h), (1...65535).contains(t.w), (1...65535).contains(t.c) else {
            throw .invalidTensor(index: index, reason: "a dimension is outside 1...65535")
        }
        guard UInt64(t.h) * UInt64(t.w) * UInt64(t.c) <= 1 << 26 else { throw .invalidTensor(index: index, reason: "more than 2^26 elements") }
        guard t.scale.isFinite && t.scale > 0 else { throw .invalidTensor(index: index, reason: "scale is not finite and positive") }
        guard (-128...127).contains(t.zeroPoint) else { throw .invalidTensor(index: index, reason: "zero point is outside -128...127") }
    }

    private func checkInput() throws(SieveError) {
        guard inputTensor.c == info.inputChannels else { throw .invalidModel(reason: "input_channels differs from the input tensor's C") }
        guard info.pixelScale.isFinite && info.pixelScale > 0 else { throw .invalidModel(reason: "pixel_scale is not finite and positive") }
        for c in 0..<Int(info.inputChannels) {
            guard info.mean(c).isFinite, info.std(c).isFinite, info.std(c) > 0 else { throw .invalidModel(reason: "input mean/std is not finite, or std is not positive") }
        }
        let out = outputTensor
        guard out.h == 1 && out.w == 1 && Int(out.c) == classCount else { throw .invalidModel(reason: "output tensor is not 1x1x1xclass_count") }
    }

    func checkRef(_ ref: DataRef, bytes: Int, op: Int, field: StaticText) throws(SieveError) {
        guard ref.offset % UInt32(BlobLayout.alignment) == 0, Int(ref.size) == bytes,
              UInt64(ref.offset) + UInt64(ref.size) <= UInt64(data.count) else {
            throw .dataOutOfBounds(op: op, field: field, offset: ref.offset, size: ref.size)
        }
    }

    func checkRequantization(_ op: OpRecord, channels: Int, index: Int) throws(SieveError) {
        try checkRef(op.multipliers, bytes: 4 * channels, op: index, field: "multipliers")
        try checkRef(op.shifts, bytes: 4 * channels, op: index, field: "shifts")
        let m = pointer(op.multipliers, as: Int32.self), s = pointer(op.shifts, as: Int32.self)
        for c in 0..<channels {
            guard m[c] >= 1 << 30 else { throw .invalidQuantization(op: index, channel: c, reason: "multiplier is outside [2^30, 2^31)") }
            guard s[c] >= 1 && s[c] <= 62 else { throw .invalidQuantization(op: index, channel: c, reason: "shift is outside 1...62") }
        }
    }

    private func check(op i: Int, written: [Bool]) throws(SieveError) {
        let op = ops[i]
        guard let kind = op.opKind else { throw .unknownOpKind(index: i, kind: op.kind) }
        guard op.input0 < info.tensorCount else { throw .tensorIndexOutOfRange(op: i, field: "input0", index: op.input0) }
        guard op.output < info.tensorCount else { throw .tensorIndexOutOfRange(op: i, field: "output", index: op.output) }
        if kind.takesTwoInputs {
            guard op.input1 < info.tensorCount else { throw .tensorIndexOutOfRange(op: i, field: "input1", index: op.input1) }
        } else {
            guard op.input1 == BlobLayout.noTensor else { throw .invalidOp(index: i, reason: "input1 is set on an op that takes one input") }
        }
        if kind == .concat {
            guard op.input2 == BlobLayout.noTensor || op.input2 < info.tensorCount else { throw .tensorIndexOutOfRange(op: i, field: "input2 (params[0])", index: op.input2) }
            guard op.input3 == BlobLayout.noTensor || (op.input3 < info.tensorCount && op.input2 != BlobLayout.noTensor) else {
                throw .tensorIndexOutOfRange(op: i, field: "input3 (params[1])", index: op.input3)
            }
        }
        guard written[Int(op.input0)] else { throw .tensorIndexOutOfRange(op: i, field: "input0", index: op.input0) }
        if kind.takesTwoInputs { guard written[Int(op.input1)] else { throw .tensorIndexOutOfRange(op: i, field: "input1", index: op.input1) } }
        if kind == .concat {
            for input in [op.input2, op.input3] where input != BlobLayout.noTensor && !written[Int(input)] {
                throw .tensorIndexOutOfRange(op: i, field: "input2/input3", index: input)
            }
        }
        guard !written[Int(op.output)] else { throw .invalidOp(index: i, reason: "output tensor is already written by an earlier op or is the input") }
        guard op.actMin >= -128 && op.actMin <= op.actMax && op.actMax <= 127 else { throw .invalidOp(index: i, reason: "activation clamp is not -128 <= min <= max <= 127") }
        let input = tensors[Int(op.input0)], output = tensors[Int(op.output)]
        if kind.isWindowed {
            for v in [op.kernelH, op.kernelW, op.strideH, op.strideW] where v < 1 || v > 64 {
                throw .invalidOp(index: i, reason: "kernel or stride is outside 1...64")
            }
            guard op.padTop < op.kernelH, op.padBottom < op.kernelH, op.padLeft < op.kernelW, op.padRight < op.kernelW else {
                throw .invalidOp(index: i, reason: "padding is not smaller than the kernel")
            }
            let paddedH = Int(input.h) + Int(op.padTop) + Int(op.padBottom), paddedW = Int(input.w) + Int(op.padLeft) + Int(op.padRight)
            guard paddedH >= Int(op.kernelH), paddedW >= Int(op.kernelW),
                  Int(output.h) == (paddedH - Int(op.kernelH)) / Int(op.strideH) + 1,
                  Int(output.w) == (paddedW - Int(op.kernelW)) / Int(op.strideW) + 1 else {
                throw .invalidOp(index: i, reason: "output height/width does not follow from input, kernel, stride and padding")
            }
        }
        if kind.isElementwise { try checkElementwise(op, index: i) }
        let cin = Int(input.c), cout = Int(output.c)
        switch kind {
        case .conv:
            guard op.groups >= 1, cin % Int(op.groups) == 0, cout % Int(op.groups) == 0 else { throw .invalidOp(index: i, reason: "groups does not divide the input and output channels") }
            try checkRef(op.weights, bytes: cout * Int(op.kernelH) * Int(op.kernelW) * (cin / Int(op.groups)), op: i, field: "weights")
        case .depthwiseConv:
            guard Int(op.groups) == cin, cout % cin == 0 else { throw .invalidOp(index: i, reason: "depthwise groups differ from input channels, or output channels are not a multiple") }
            try checkRef(op.weights, bytes: cout * Int(op.kernelH) * Int(op.kernelW), op: i, field: "weights")
        case .fullyConnected:
            guard output.h == 1 && output.w == 1 else { throw .invalidOp(index: i, reason: "fully connected output is not 1x1xC") }
            try checkRef(op.weights, bytes: cout * input.elementCount, op: i, field: "weights")
        case .maxPool, .averagePool, .globalAveragePool:
            guard op.groups == 0 else { throw .invalidOp(index: i, reason: "groups is set on a pool or ADD") }
            guard cin == cout, input.scale == output.scale, input.zeroPoint == output.zeroPoint else {
                throw .invalidOp(index: i, reason: "pooling changes the channel count or the quantisation")
            }
            if kind == .globalAveragePool { guard output.h == 1 && output.w == 1 else { throw .invalidOp(index: i, reason: "global average pool output is not 1x1xC") } }
        case .add:
            let other = tensors[Int(op.input1)]
            guard input.h == output.h, input.w == output.w, input.c == output.c, other.h == output.h, other.w == output.w, other.c == output.c else {
                throw .invalidOp(index: i, reason: "add inputs and output differ in shape")
            }
            guard op.groups == 0 else { throw .invalidOp(index: i, reason: "groups is set on a pool or ADD") }
            guard op.leftShift >= 0 && op.leftShift <= 20 else { throw .invalidOp(index: i, reason: "left_shift is outside 0...20") }
            try checkRequantization(op, channels: 3, index: i)
        case .concat, .mul, .lut, .gather:
            break  // checkElementwise (Model+Elementwise.swift)
        }
        if kind.hasWeights {
            try checkRef(op.bias, bytes: 4 * cout, op: i, field: "bias")
            try checkRequantization(op, channels: cout, index: i)
        }
    }

    /// Every op is well-formed, reads only tensors written earlier (or the input), and every tensor is written once.
    private func checkGraph() throws(SieveError) {
        var written = [Bool](repeating: false, count: tensors.count)
        written[Int(info.inputTensor)] = true
        for (i, op) in ops.enumerated() {
            try check(op: i, written: written)
            written[Int(op.output)] = true
        }
        guard written[Int(info.outputTensor)] && info.outputTensor != info.inputTensor else { throw .invalidModel(reason: "no op writes the output tensor") }
    }

    private func checkHeads() throws(SieveError) {
        var headOf = [Int](repeating: -1, count: ops.count)
        var nextFree: UInt32 = 0
        for (h, head) in heads.enumerated() {
            guard head.headKind != nil else { throw .invalidHead(index: h, reason: "unknown head kind") }
            guard head.threshold.isFinite && head.threshold >= 0 && head.threshold <= 1 else { throw .invalidHead(index: h, reason: "threshold is outside 0...1") }
            guard head.exitConfidence.isFinite && head.exitConfidence >= 0 && head.exitConfidence <= 1,
                  head.exitConfidence == 0 || head.headKind == .exclusion else {
                throw .invalidHead(index: h, reason: "exit confidence is outside 0...1 or set on a confidence head")
            }
            guard head.opCount >= 1, head.firstOp >= nextFree, head.firstOp < info.opCount, head.opCount <= info.opCount - head.firstOp else {
                throw .invalidHead(index: h, reason: "op range is empty, overlaps another head, or runs past the last op")
            }
            guard head.tapTensor < info.tensorCount, head.logitsTensor < info.tensorCount else { throw .invalidHead(index: h, reason: "tensor index out of range") }
            let first = Int(head.firstOp), end = first + Int(head.opCount)
            guard ops[first].input0 == head.tapTensor else { throw .invalidHead(index: h, reason: "first op does not read the tap tensor") }
            guard ops[end - 1].output == head.logitsTensor else { throw .invalidHead(index: h, reason: "last op does not write the logits tensor") }
            let logits = tensors[Int(head.logitsTensor)]
            guard logits.h == 1 && logits.w == 1 && Int(logits.c) == classCount else { throw .invalidHead(index: h, reason: "logits tensor is not 1x1x1xclass_count") }
            for i in first..<end {
                headOf[i] = h
                for input in ops[i].inputs where input != head.tapTensor {
                    guard let producer = ops.firstIndex(where: { $0.output == input }), producer >= first && producer < i else {
                        throw .invalidHead(index: h, reason: "an op reads a tensor from outside its head")
                    }
                }
            }
            nextFree = UInt32(end)
        }
        // No op reads a tensor a head wrote, unless it belongs to that head.
        var writerHead = [Int](repeating: -1, count: tensors.count)
        for (i, op) in ops.enumerated() { writerHead[Int(op.output)] = headOf[i] }
        for (i, op) in ops.enumerated() {
            for input in op.inputs {
                let w = writerHead[Int(input)]
                guard w == -1 || w == headOf[i] else { throw .invalidOp(index: i, reason: "reads a tensor computed inside an exit head") }
            }
        }
        guard writerHead[Int(info.outputTensor)] == -1 else { throw .invalidModel(reason: "the output tensor is computed inside an exit head") }
    }
}
