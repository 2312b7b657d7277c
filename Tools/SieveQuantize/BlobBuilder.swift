import SieveCore

/// The fixed-point form of a real multiplier (docs/FORMAT.md, "The arithmetic"):
/// m = f * 2^e with f in [0.5, 1), M = round(f * 2^31) (2^31 -> 2^30 with e + 1), s = 31 - e.
/// Multipliers below 2^-32 clamp to the smallest one the format holds (M = 2^30, s = 62), which
/// turns any int32 accumulator into 0 or +-1; multipliers of 2^30 and more cannot be expressed.
/// With `significantBits` below 31, f is rounded to that many bits instead (M ends in
/// 31 - significantBits zero bits): see `shortMultiplierBits`.
func fixedPointMultiplier(_ m: Double, significantBits: Int = 31) -> (multiplier: Int32, shift: Int32)? {
    guard m.isFinite && m > 0 else { return nil }
    let bits = min(31, max(2, significantBits))
    let one = Double(1 << bits)
    var e = Int(m.exponent) + 1
    var q = (m.significand / 2 * one).rounded(.toNearestOrAwayFromZero)  // f in [0.5, 1), scaled
    if q == one { q = one / 2; e += 1 }
    var multiplier = Int64(q) << (31 - bits)
    var shift = 31 - e
    if shift > 62 { multiplier = 1 << 30; shift = 62 }
    guard shift >= 1 else { return nil }
    return (Int32(multiplier), Int32(shift))
}

/// Significant bits for the multiplier of a conv channel whose quantised weights' magnitudes sum to
/// `weightSum`: as many as leave `128 * weightSum * M'` below 2^29, with M' the multiplier without
/// its trailing zero bits, and at least 12; nil (keep all 31) where that would take fewer than 11.
/// Every accumulator of the channel is its bias plus at most `128 * weightSum` in magnitude, so the
/// x86 kernels can requantise it with one 32-bit multiply instead of a 64-bit product
/// (docs/KERNELS.md, "Requantisation"), with room for a bias up to three times that (twice at 11).
/// The channel's scale moves by at most 2^-12 of itself, a thirtieth of an output step at the
/// extremes. Every 3x3 depthwise channel qualifies (9 * 127 * 128 < 2^18), and the 1x1 convs with
/// few input channels that spend as long requantising as multiplying.
func shortMultiplierBits(weightSum: Int) -> Int? {
    let bound = 128 * max(weightSum, 1)
    var log2Ceil = 0
    while (1 << log2Ceil) < bound { log2Ceil += 1 }
    let bits = 29 - log2Ceil
    return bits < 11 ? nil : min(31, max(12, bits))
}

/// DATA section contents: every array starts at a multiple of 64 and is zero-padded to the next.
struct DataBuilder {
    var bytes: [UInt8] = []

    mutating func append(_ values: [Int8]) -> DataRef {
        let offset = bytes.count
        bytes.append(contentsOf: values.map { UInt8(bitPattern: $0) })
        return finish(offset)
    }

    mutating func append(_ values: [Int32]) -> DataRef {
        let offset = bytes.count
        var w = ByteWriter()
        w.bytes.reserveCapacity(values.count * 4)
        for v in values { w.i32(v) }
        bytes.append(contentsOf: w.bytes)
        return finish(offset)
    }

    private mutating func finish(_ offset: Int) -> DataRef {
        let size = bytes.count - offset
        let padded = roundUp(bytes.count, BlobLayout.alignment)
        bytes.append(contentsOf: [UInt8](repeating: 0, count: padded - bytes.count))
        return DataRef(offset: UInt32(offset), size: UInt32(size))
    }
}

/// Quantises a scheduled `Graph` with the given activation parameters into a blob.
struct BlobBuilder {
    let graph: Graph
    /// Quantisation of every value the blob holds (input and layer outputs).
    let qparams: [Int: QParams]
    /// Largest weight magnitude: 127 (8-bit weights) or 63 (7-bit, `--weight-bits 7`: any two
    /// weights' u8 x s8 products then fit vpmaddubsw's saturating int16 pair sum, docs/KERNELS.md).
    var weightMax = 127

    /// Blob tensor index of each value: the input is 0, then each op's output in op order.
    var tensorIndex: [Int: UInt32] {
        var index: [Int: UInt32] = [graph.input: 0]
        for (i, layer) in graph.layers.enumerated() { index[layer.output] = UInt32(i + 1) }
        return index
    }

    func build(provenance: String) throws(QuantizeError) -> [UInt8] {
        let index = tensorIndex
        var data = DataBuilder()
        var tensors: [TensorRecord] = []
        for v in [graph.input] + graph.layers.map({ $0.output }) {
            let s = graph.values[v].shape, q = qparams[v]!
            tensors.append(TensorRecord(h: UInt32(s.h), w: UInt32(s.w), c: UInt32(s.c), scale: q.scale, zeroPoint: q.zeroPoint))
        }
        var ops: [OpRecord] = []
        for layer in graph.layers { ops.append(try op(layer, index: index, data: &data)) }
        guard data.bytes.count < Int(UInt32.max) else { throw .quantization(layer: "model", reason: "DATA is larger than 4 GiB") }

        var info = ModelRecord()
        info.tensorCount = UInt32(tensors.count)
        info.opCount = UInt32(ops.count)
        info.headCount = UInt32(graph.heads.count)
        info.classCount = UInt32(graph.classCount)
        info.inputTensor = index[graph.input]!
        info.outputTensor = index[graph.final]!
        info.inputChannels = UInt32(graph.inputShape.c)
        let mean = graph.mean + [Float](repeating: 0, count: 4 - graph.mean.count)
        let std = graph.std + [Float](repeating: 1, count: 4 - graph.std.count)
        info.mean = (mean[0], mean[1], mean[2], mean[3])
        info.std = (std[0], std[1], std[2], std[3])
        info.pixelScale = graph.pixelScale

        var w = BlobWriter()
        var m = ByteWriter(); info.encode(into: &m); w.add(.model, m.bytes)
        var t = ByteWriter(); for r in tensors { r.encode(into: &t) }; w.add(.tensors, t.bytes)
        var o = ByteWriter(); for r in ops { r.encode(into: &o) }; w.add(.ops, o.bytes)
        var h = ByteWriter()
        for head in graph.heads {
            HeadRecord(kind: head.kind == .exclusion ? .exclusion : .confidence, tapTensor: index[head.tap]!,
                       logitsTensor: index[head.output]!, firstOp: UInt32(head.firstLayer), opCount: UInt32(head.layerCount))
                .encode(into: &h)
        }
        w.add(.heads, h.bytes)
        w.add(.labels, labelsSection())
        w.add(.data, data.bytes)
        w.add(.provenance, Array(provenance.utf8))
        return w.write()
    }

    private func labelsSection() -> [UInt8] {
        var w = ByteWriter()
        let labels = graph.labels.map { Array($0.utf8) }
        w.u32(UInt32(labels.count))
        var offset = 4 + 8 * labels.count
        for l in labels { w.u32(UInt32(offset)); w.u32(UInt32(l.count)); offset += l.count }
        for l in labels { w.bytes.append(contentsOf: l) }
        return w.bytes
    }

    /// The int8 output clamp of a fused ReLU/ReLU6/Clip.
    private func clamp(_ layer: Layer, _ q: QParams) -> (Int32, Int32) {
        func toQ(_ x: Float) -> Int32 {
            let v = (Double(x) / Double(q.scale)).rounded(.toNearestOrAwayFromZero) + Double(q.zeroPoint)
            return Int32(max(-128, min(127, v)))
        }
        let lo = layer.clampMin > -.infinity ? toQ(layer.clampMin) : -128
        let hi = layer.clampMax < .infinity ? toQ(layer.clampMax) : 127
        return (lo, max(lo, hi))
    }

    private func op(_ layer: Layer, index: [Int: UInt32], data: inout DataBuilder) throws(QuantizeError) -> OpRecord {
        let inQ = qparams[layer.inputs[0]]!, outQ = qparams[layer.output]!
        let inS = graph.values[layer.inputs[0]].shape, outS = graph.values[layer.output].shape
        let name = graph.values[layer.output].name
        var r: OpRecord
        switch layer.kind {
        case .conv(let p):
            let depthwise = p.groups > 1 && p.groups == inS.c && p.cinPerGroup == 1
            r = OpRecord(kind: depthwise ? .depthwiseConv : .conv)
            r.kernelH = UInt32(p.kh); r.kernelW = UInt32(p.kw); r.strideH = UInt32(p.strideH); r.strideW = UInt32(p.strideW)
            r.padTop = UInt32(p.padTop); r.padLeft = UInt32(p.padLeft); r.padBottom = UInt32(p.padBottom); r.padRight = UInt32(p.padRight)
            r.groups = UInt32(p.groups)
            let perChannel = p.cinPerGroup * p.kh * p.kw
            // A grouped input (ChannelGroups.swift): output channel c reads input channel c alone.
            if inQ.groups != nil && !p.isDepthwise(inputChannels: inS.c) {
                throw .internalError(reason: "\(name): channel groups on the input of a conv that mixes channels")
            }
            let q = try quantizeChannels(name: name, weights: p.weights, bias: p.bias, cout: p.cout, perChannel: perChannel,
                                         inQ: inQ, outQ: outQ, shortMultipliers: true)
            // ONNX [cout][cin/g][kh][kw] -> CONV [cout][kh][kw][cin/g], DEPTHWISE [kh][kw][cout].
            var packed = [Int8](repeating: 0, count: q.weights.count)
            for oc in 0..<p.cout {
                for ci in 0..<p.cinPerGroup {
                    for ky in 0..<p.kh {
                        for kx in 0..<p.kw {
                            let src = ((oc * p.cinPerGroup + ci) * p.kh + ky) * p.kw + kx
                            let dst = depthwise ? (ky * p.kw + kx) * p.cout + oc : ((oc * p.kh + ky) * p.kw + kx) * p.cinPerGroup + ci
                            packed[dst] = q.weights[src]
                        }
                    }
                }
            }
            r.weights = data.append(packed)
            r.bias = data.append(q.bias); r.multipliers = data.append(q.multipliers); r.shifts = data.append(q.shifts)
        case .fullyConnected(let p):
            r = OpRecord(kind: .fullyConnected)
            if inQ.groups != nil { throw .internalError(reason: "\(name): channel groups on a fully connected layer's input") }
            let q = try quantizeChannels(name: name, weights: p.weights, bias: p.bias, cout: p.cout, perChannel: p.k, inQ: inQ, outQ: outQ)
            // ONNX flattens NCHW (k = c*H*W + y*W + x); Sieve's input is NHWC (k = (y*W + x)*C + c).
            var packed = q.weights
            let plane = inS.h * inS.w
            if plane > 1 {
                for o in 0..<p.cout {
                    for c in 0..<inS.c {
                        for pix in 0..<plane { packed[o * p.k + pix * inS.c + c] = q.weights[o * p.k + c * plane + pix] }
                    }
                }
            }
            r.weights = data.append(packed)
            r.bias = data.append(q.bias); r.multipliers = data.append(q.multipliers); r.shifts = data.append(q.shifts)
        case .maxPool(let p), .averagePool(let p):
            if case .maxPool = layer.kind { r = OpRecord(kind: .maxPool) } else { r = OpRecord(kind: .averagePool) }
            r.kernelH = UInt32(p.kh); r.kernelW = UInt32(p.kw); r.strideH = UInt32(p.strideH); r.strideW = UInt32(p.strideW)
            r.padTop = UInt32(p.padTop); r.padLeft = UInt32(p.padLeft); r.padBottom = UInt32(p.padBottom); r.padRight = UInt32(p.padRight)
        case .globalAveragePool:
            r = OpRecord(kind: .globalAveragePool)
        case .add:
            r = OpRecord(kind: .add)
            let q1 = qparams[layer.inputs[1]]!
            let s0 = Double(inQ.scale), s1 = Double(q1.scale), sOut = Double(outQ.scale)
            let twiceMax = 2 * max(s0, s1)
            let leftShift = 20
            var multipliers: [Int32] = [], shifts: [Int32] = []
            for m in [s0 / twiceMax, s1 / twiceMax, twiceMax / (Double(1 << leftShift) * sOut)] {
                guard let fp = fixedPointMultiplier(m) else {
                    throw .quantization(layer: name, reason: "ADD multiplier \(m) is outside what a 31-bit multiplier and shift 1...62 express")
                }
                multipliers.append(fp.multiplier); shifts.append(fp.shift)
            }
            r.leftShift = Int32(leftShift)
            r.multipliers = data.append(multipliers); r.shifts = data.append(shifts)
            r.input1 = index[layer.inputs[1]]!
        case .concat:
            r = OpRecord(kind: .concat)
            var tables: [Int8] = []
            for v in layer.inputs { tables += concatTable(input: qparams[v]!, output: outQ) }
            r.weights = data.append(tables)
            r.input1 = index[layer.inputs[1]]!
            if layer.inputs.count > 2 { r.input2 = index[layer.inputs[2]]! }
            if layer.inputs.count > 3 { r.input3 = index[layer.inputs[3]]! }
        case .mul:
            r = OpRecord(kind: .mul)
            let q1 = qparams[layer.inputs[1]]!
            let m = Double(inQ.scale) * Double(q1.scale) / Double(outQ.scale)
            guard let fp = fixedPointMultiplier(m) else {
                throw .quantization(layer: name, reason: "MUL multiplier \(m) is outside what a 31-bit multiplier and shift 1...62 express")
            }
            r.multipliers = data.append([fp.multiplier]); r.shifts = data.append([fp.shift])
            r.input1 = index[layer.inputs[1]]!
        case .lut(let f):
            r = OpRecord(kind: .lut)
            if let groups = inQ.groups {  // a table per channel group, then each channel's group
                r.groups = UInt32(groups.params.count)
                r.weights = data.append(groups.params.flatMap { f.table(input: $0, output: outQ) } + groups.map.map { Int8(bitPattern: $0) })
            } else {
                r.weights = data.append(f.table(input: inQ, output: outQ))
            }
        case .gather(let index):
            r = OpRecord(kind: .gather)
            r.weights = data.append(index.map { Int32($0) })
        }
        _ = outS
        r.input0 = index[layer.inputs[0]]!
        r.output = index[layer.output]!
        if !layer.kind.keepsInputQuantisation {
            (r.actMin, r.actMax) = clamp(layer, outQ)
            // One clamp serves every channel group only where each group's is the same (a ReLU-like
            // clamp before a depthwise conv: ChannelGrouping.candidates).
            if let groups = outQ.groups, layer.hasClamp, groups.params.contains(where: { clamp(layer, $0) != (r.actMin, r.actMax) }) {
                throw .internalError(reason: "\(name): a channel group's output clamp differs from the tensor's")
            }
        }
        return r
    }

    struct QuantizedChannels {
        var weights: [Int8]
        var bias: [Int32]
        var multipliers: [Int32]
        var shifts: [Int32]
    }

    /// Per-output-channel symmetric weights in [-weightMax, weightMax], int32 bias with the input zero point
    /// folded in, and the requantisation multiplier of each channel.
    /// `shortMultipliers` (convs, not fully connected layers): multipliers rounded to
    /// `shortMultiplierBits` bits where it allows.
    func quantizeChannels(name: String, weights: [Float], bias: [Float], cout: Int, perChannel: Int,
                          inQ: QParams, outQ: QParams, shortMultipliers: Bool = false) throws(QuantizeError) -> QuantizedChannels {
        var out = QuantizedChannels(weights: [Int8](repeating: 0, count: weights.count), bias: [], multipliers: [], shifts: [])
        for oc in 0..<cout {
            // With channel groups each channel has its group's scale and zero point (ChannelGroups.swift);
            // a grouped input is a depthwise conv's, whose output channel oc reads input channel oc.
            let channelQ = outQ.channel(oc), sOut = Double(channelQ.scale)
            let sIn = Double(inQ.channel(oc).scale)
            let row = (oc * perChannel)..<((oc + 1) * perChannel)
            var maxAbs = 0.0
            for i in row { maxAbs = max(maxAbs, Double(abs(weights[i]))) }
            let b = Double(bias[oc])
            // All-zero channel: a scale that keeps the bias precise and the multiplier in range.
            var sW = maxAbs > 0 ? maxAbs / Double(weightMax) : sOut / (sIn * 256)
            // Keep the quantised bias within 2^29, whatever the weights.
            sW = max(sW, abs(b) / (sIn * 536870912.0))
            var sum = 0, sumAbs = 0
            for i in row {
                let q = Int(max(-Double(weightMax), min(Double(weightMax), (Double(weights[i]) / sW).rounded(.toNearestOrAwayFromZero))))
                out.weights[i] = Int8(q)
                sum += q
                sumAbs += abs(q)
            }
            var folded = Int((b / (sIn * sW)).rounded(.toNearestOrAwayFromZero)) - Int(inQ.zeroPoint) * sum
            let m = sIn * sW / sOut
            let bits = shortMultipliers ? shortMultiplierBits(weightSum: sumAbs) ?? 31 : 31
            guard let fp = fixedPointMultiplier(m, significantBits: bits) else {
                throw .quantization(layer: name, reason: "channel \(oc): requantisation multiplier \(m) is 2^30 or more (output scale \(sOut) is far too small)")
            }
            // The kernel adds the tensor's zero point; a channel group's own is the rest, moved into
            // the bias through the channel's multiplier (exact to a small fraction of a step).
            let zeroPointShift = Double(channelQ.zeroPoint - outQ.zeroPoint)
            folded += Int((zeroPointShift * Double(sign: .plus, exponent: Int(fp.shift), significand: 1) / Double(fp.multiplier)).rounded(.toNearestOrAwayFromZero))
            guard folded >= Int(Int32.min) && folded <= Int(Int32.max) else {
                throw .quantization(layer: name, reason: "channel \(oc): the bias with the zero point folded in does not fit int32")
            }
            out.bias.append(Int32(folded))
            out.multipliers.append(fp.multiplier)
            out.shifts.append(fp.shift)
        }
        return out
    }
}
