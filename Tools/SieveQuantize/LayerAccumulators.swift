import COpenBLAS
import SieveCore

/// The int32 accumulators of one weighted int8 op (CONV, DEPTHWISE_CONV, FULLY_CONNECTED) without
/// its bias: `sum w * x` over the window, padding counting as the input zero point, exactly as the
/// kernels add them (docs/FORMAT.md). With them, the op's int8 output for any bias is
/// `requantize(bias + S)`: bias correction tries 17 biases per layer on them instead of
/// re-running the runtime 17 times.
///
/// Convolutions go through BLAS: sgemm when every channel's sum of |w| * 128 stays below 2^24 (each
/// partial sum is then an integer a float holds exactly), else dgemm (exact below 2^53).
final class LayerAccumulators {
    let op: OpRecord
    let input: TensorRecord, output: TensorRecord
    private let weights: UnsafePointer<Int8>
    private let exactInFloat: Bool
    /// Per output channel: weights as [cout][k] in float/double (k in the blob's order).
    private var weightsF: [Float] = [], weightsD: [Double] = []
    private var colF: [Float] = [], colD: [Double] = [], outF: [Float] = [], outD: [Double] = []

    init(model: Model, op index: Int) {
        op = model.ops[index]
        input = model.tensors[Int(op.input0)]
        output = model.tensors[Int(op.output)]
        weights = model.pointer(op.weights, as: Int8.self)
        let cout = Int(output.c)
        let k = LayerAccumulators.weightCount(op, input, output) / cout
        var largest = 0
        if op.opKind == .conv {
            for o in 0..<cout {
                var l1 = 0
                for i in 0..<k { l1 += abs(Int(weights[o * k + i])) }
                largest = max(largest, l1)
            }
        }
        exactInFloat = largest * 128 < 1 << 24
        if op.opKind == .conv {
            if exactInFloat { weightsF = (0..<(cout * k)).map { Float(weights[$0]) } } else { weightsD = (0..<(cout * k)).map { Double(weights[$0]) } }
        }
    }

    static func weightCount(_ op: OpRecord, _ input: TensorRecord, _ output: TensorRecord) -> Int {
        switch op.opKind! {
        case .conv: return Int(output.c) * Int(op.kernelH) * Int(op.kernelW) * Int(input.c) / Int(op.groups)
        case .depthwiseConv: return Int(output.c) * Int(op.kernelH) * Int(op.kernelW)
        default: return Int(output.c) * input.elementCount
        }
    }

    /// S for one image: `x` the op's int8 input (NHWC), `s` its output's element count (NHWC).
    func compute(_ x: UnsafePointer<Int8>, into s: UnsafeMutablePointer<Int32>) {
        switch op.opKind! {
        case .conv: conv(x, s)
        case .depthwiseConv: depthwise(x, s)
        default:
            let k = input.elementCount
            for o in 0..<Int(output.c) {
                let w = weights + o * k
                var acc: Int32 = 0
                for i in 0..<k { acc &+= Int32(w[i]) &* Int32(x[i]) }
                s[o] = acc
            }
        }
    }

    private func depthwise(_ x: UnsafePointer<Int8>, _ s: UnsafeMutablePointer<Int32>) {
        let (inH, inW, inC) = (Int(input.h), Int(input.w), Int(input.c))
        let (outH, outW, c) = (Int(output.h), Int(output.w), Int(output.c))
        let multiplier = c / inC  // output channel oc reads input channel oc / multiplier
        let (kh, kw) = (Int(op.kernelH), Int(op.kernelW))
        let zp = input.zeroPoint
        // [kh][kw][cout] weights; one output pixel at a time, all channels contiguous.
        for oy in 0..<outH {
            for ox in 0..<outW {
                let dst = s + (oy * outW + ox) * c
                dst.update(repeating: 0, count: c)
                for ky in 0..<kh {
                    let iy = oy * Int(op.strideH) - Int(op.padTop) + ky
                    for kx in 0..<kw {
                        let ix = ox * Int(op.strideW) - Int(op.padLeft) + kx
                        let w = weights + (ky * kw + kx) * c
                        if iy < 0 || iy >= inH || ix < 0 || ix >= inW {
                            for ch in 0..<c { dst[ch] &+= Int32(w[ch]) &* zp }
                        } else if multiplier == 1 {
                            let src = x + (iy * inW + ix) * inC
                            for ch in 0..<c { dst[ch] &+= Int32(w[ch]) &* Int32(src[ch]) }
                        } else {
                            let src = x + (iy * inW + ix) * inC
                            for ch in 0..<c { dst[ch] &+= Int32(w[ch]) &* Int32(src[ch / multiplier]) }
                        }
                    }
                }
            }
        }
    }

    /// im2col (rows: output pixels, columns: (ky, kx, ci) as the blob orders CONV weights) and one
    /// gemm per group: S[pixel][oc] = col[pixel] . w[oc].
    private func conv(_ x: UnsafePointer<Int8>, _ s: UnsafeMutablePointer<Int32>) {
        let (inH, inW, inC) = (Int(input.h), Int(input.w), Int(input.c))
        let (outH, outW, outC) = (Int(output.h), Int(output.w), Int(output.c))
        let (kh, kw, groups) = (Int(op.kernelH), Int(op.kernelW), Int(op.groups))
        let cg = inC / groups, og = outC / groups
        let k = kh * kw * cg, pixels = outH * outW
        let zp = Float(input.zeroPoint)
        if colF.count < pixels * k { colF = [Float](repeating: 0, count: pixels * k) }
        if exactInFloat && outF.count < pixels * outC { outF = [Float](repeating: 0, count: pixels * outC) }
        if !exactInFloat && colD.count < pixels * k { colD = [Double](repeating: 0, count: pixels * k); outD = [Double](repeating: 0, count: pixels * outC) }
        for g in 0..<groups {
            colF.withUnsafeMutableBufferPointer { colBuffer in
                let col = colBuffer.baseAddress!
                for oy in 0..<outH {
                    for ox in 0..<outW {
                        let row = col + (oy * outW + ox) * k
                        for ky in 0..<kh {
                            let iy = oy * Int(op.strideH) - Int(op.padTop) + ky
                            for kx in 0..<kw {
                                let ix = ox * Int(op.strideW) - Int(op.padLeft) + kx
                                let dst = row + (ky * kw + kx) * cg
                                if iy < 0 || iy >= inH || ix < 0 || ix >= inW {
                                    dst.update(repeating: zp, count: cg)
                                } else {
                                    let src = x + (iy * inW + ix) * inC + g * cg
                                    for ci in 0..<cg { dst[ci] = Float(src[ci]) }
                                }
                            }
                        }
                    }
                }
            }
            if exactInFloat {
                colF.withUnsafeBufferPointer { col in
                    weightsF.withUnsafeBufferPointer { w in
                        outF.withUnsafeMutableBufferPointer { out in
                            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(pixels), Int32(og), Int32(k), 1,
                                        col.baseAddress!, Int32(k), w.baseAddress! + g * og * k, Int32(k), 0, out.baseAddress! + g * og, Int32(outC))
                        }
                    }
                }
            } else {
                // Every int8 is exact in both types: the column converts as it is.
                for i in 0..<(pixels * k) { colD[i] = Double(colF[i]) }
                colD.withUnsafeBufferPointer { col in
                    weightsD.withUnsafeBufferPointer { w in
                        outD.withUnsafeMutableBufferPointer { out in
                            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(pixels), Int32(og), Int32(k), 1,
                                        col.baseAddress!, Int32(k), w.baseAddress! + g * og * k, Int32(k), 0, out.baseAddress! + g * og, Int32(outC))
                        }
                    }
                }
            }
        }
        // The kernels add in int32 with wrap-around: the exact sum taken modulo 2^32 is the same.
        let n = pixels * outC
        if exactInFloat {
            outF.withUnsafeBufferPointer { o in for i in 0..<n { s[i] = Int32(o[i]) } }
        } else {
            outD.withUnsafeBufferPointer { o in for i in 0..<n { s[i] = Int32(truncatingIfNeeded: Int64(o[i])) } }
        }
    }
}
