import CQuantizeKernels
import COpenBLAS

/// The float32 reference executor of a `Graph`, NCHW, batch 1: what calibration observes and
/// what the quantised model is measured against. Convolutions are im2col + OpenBLAS's sgemm (one
/// thread: the callers run one image per core), depthwise convolutions a direct loop.
/// Every buffer is allocated once in `init`; one instance runs one image at a time.
final class FloatExecutor {
    let graph: Graph
    private var buffers: [UnsafeMutablePointer<Float>?]
    private var scratch: UnsafeMutablePointer<Float>
    private let scratchCount: Int
    /// Float input value of pixel p in channel c: `table[c * 256 + p]`.
    private let table: [Float]

    init(graph: Graph) {
        openblas_set_num_threads(1)
        self.graph = graph
        buffers = [UnsafeMutablePointer<Float>?](repeating: nil, count: graph.values.count)
        var scratchNeeded = 1
        var live: Set<Int> = [graph.input]
        for layer in graph.layers {
            live.insert(layer.output)
            if case .conv(let p) = layer.kind, !FloatExecutor.isPointwise(p), !FloatExecutor.isDepthwise(p, graph.values[layer.inputs[0]].shape) {
                let out = graph.values[layer.output].shape
                scratchNeeded = max(scratchNeeded, p.cinPerGroup * p.kh * p.kw * out.h * out.w)
            }
        }
        for v in live {
            let count = graph.values[v].shape.count
            let buffer = UnsafeMutablePointer<Float>.allocate(capacity: count)
            buffer.initialize(repeating: 0, count: count)
            buffers[v] = buffer
        }
        scratchCount = scratchNeeded
        scratch = UnsafeMutablePointer<Float>.allocate(capacity: scratchNeeded)
        scratch.initialize(repeating: 0, count: scratchNeeded)
        var t: [Float] = []
        for c in 0..<graph.inputShape.c { for p in 0..<256 { t.append(graph.normalized(p, channel: c)) } }
        table = t
    }

    deinit {
        for b in buffers { b?.deallocate() }
        scratch.deallocate()
    }

    /// The float value `v` (NCHW) as computed by the last `run`.
    /// Adds value `v`'s per-channel sums (in Double) to `sums`, sized on first use.
    func addChannelSums(of v: Int, into sums: inout [Double]) {
        let s = graph.values[v].shape
        let plane = s.h * s.w
        let x = value(v)
        if sums.isEmpty { sums = [Double](repeating: 0, count: s.c) }
        for c in 0..<s.c {
            var total = sums[c]  // in a register: the same additions in the same order
            for p in 0..<plane { total += Double(x[c * plane + p]) }
            sums[c] = total
        }
    }

    func value(_ v: Int) -> UnsafeBufferPointer<Float> {
        UnsafeBufferPointer(start: buffers[v]!, count: graph.values[v].shape.count)
    }

    /// Runs every layer on one image of u8 pixels in HWC order.
    func run<C: Collection>(pixels: C) where C.Element == UInt8, C.Index == Int {
        setInput(pixels)
        for l in graph.layers.indices { run(layer: l) }
    }

    func setInput<C: Collection>(_ pixels: C) where C.Element == UInt8, C.Index == Int {
        let s = graph.inputShape
        precondition(pixels.count == s.count, "image size differs from the model input")
        let x = buffers[graph.input]!
        let plane = s.h * s.w
        var i = pixels.startIndex
        for p in 0..<plane {
            for c in 0..<s.c {
                x[c * plane + p] = table[c * 256 + Int(pixels[i])]
                i += 1
            }
        }
    }

    func run(layer index: Int) {
        let layer = graph.layers[index]
        let x = UnsafePointer(buffers[layer.inputs[0]]!)
        let y = buffers[layer.output]!
        let inS = graph.values[layer.inputs[0]].shape, outS = graph.values[layer.output].shape
        switch layer.kind {
        case .conv(let p): conv(p, x, inS, y, outS)
        case .fullyConnected(let p):
            p.weights.withUnsafeBufferPointer { w in
                for o in 0..<p.cout {
                    let row = w.baseAddress! + o * p.k
                    var acc0: Float = 0, acc1: Float = 0, acc2: Float = 0, acc3: Float = 0
                    var k = 0
                    while k + 4 <= p.k {
                        acc0 += row[k] * x[k]; acc1 += row[k + 1] * x[k + 1]; acc2 += row[k + 2] * x[k + 2]; acc3 += row[k + 3] * x[k + 3]
                        k += 4
                    }
                    while k < p.k { acc0 += row[k] * x[k]; k += 1 }
                    y[o] = p.bias[o] + ((acc0 + acc1) + (acc2 + acc3))
                }
            }
        case .maxPool(let p), .averagePool(let p):
            let isMax: Bool
            if case .maxPool = layer.kind { isMax = true } else { isMax = false }
            for c in 0..<inS.c {
                let src = x + c * inS.h * inS.w, dst = y + c * outS.h * outS.w
                for oy in 0..<outS.h {
                    for ox in 0..<outS.w {
                        var best = -Float.infinity, sum: Float = 0, n = 0
                        for ky in 0..<p.kh {
                            let iy = oy * p.strideH - p.padTop + ky
                            if iy < 0 || iy >= inS.h { continue }
                            for kx in 0..<p.kw {
                                let ix = ox * p.strideW - p.padLeft + kx
                                if ix < 0 || ix >= inS.w { continue }
                                let v = src[iy * inS.w + ix]
                                best = max(best, v); sum += v; n += 1
                            }
                        }
                        dst[oy * outS.w + ox] = isMax ? best : sum / Float(n)
                    }
                }
            }
        case .globalAveragePool:
            let plane = inS.h * inS.w
            for c in 0..<inS.c {
                var sum: Float = 0
                for i in 0..<plane { sum += x[c * plane + i] }
                y[c] = sum / Float(plane)
            }
        case .add:
            let x1 = buffers[layer.inputs[1]]!
            for i in 0..<outS.count { y[i] = x[i] + x1[i] }
        case .concat:
            concatFloat(layer.inputs.map { (UnsafePointer(buffers[$0]!), graph.values[$0].shape.count) }, y)
        case .mul:
            mulFloat(x, UnsafePointer(buffers[layer.inputs[1]]!), graph.values[layer.inputs[1]].shape, y, outS)
        case .lut(let f):
            for i in 0..<outS.count { y[i] = f.apply(x[i]) }
        case .gather(let index):
            let plane = outS.h * outS.w
            for (c, from) in index.enumerated() { (y + c * plane).update(from: x + from * plane, count: plane) }
        }
        if layer.hasClamp {
            let lo = layer.clampMin, hi = layer.clampMax
            for i in 0..<outS.count { y[i] = min(max(y[i], lo), hi) }
        }
    }

    static func isPointwise(_ p: ConvParams) -> Bool {
        p.kh == 1 && p.kw == 1 && p.strideH == 1 && p.strideW == 1 && p.padTop + p.padLeft + p.padBottom + p.padRight == 0
    }

    private func conv(_ p: ConvParams, _ x: UnsafePointer<Float>, _ inS: Shape, _ y: UnsafeMutablePointer<Float>, _ outS: Shape) {
        if FloatExecutor.isDepthwise(p, inS) { depthwise(p, x, inS, y, outS); return }
        let positions = outS.h * outS.w
        let k = p.cinPerGroup * p.kh * p.kw
        let coutPerGroup = p.cout / p.groups
        p.weights.withUnsafeBufferPointer { w in
            for g in 0..<p.groups {
                let src = x + g * p.cinPerGroup * inS.h * inS.w
                let col: UnsafePointer<Float>
                if FloatExecutor.isPointwise(p) {
                    col = src
                } else {
                    im2col(p, src, inS, outS)
                    col = UnsafePointer(scratch)
                }
                let out = y + g * coutPerGroup * positions
                // y = bias, then y += W x: OpenBLAS's sgemm (the float reference was ~90 % of calibration time).
                for o in 0..<coutPerGroup { (out + o * positions).update(repeating: p.bias[g * coutPerGroup + o], count: positions) }
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(coutPerGroup), Int32(positions), Int32(k),
                            1, w.baseAddress! + g * coutPerGroup * k, Int32(k), col, Int32(positions), 1, out, Int32(positions))
            }
        }
    }

    static func isDepthwise(_ p: ConvParams, _ inS: Shape) -> Bool {
        p.groups > 1 && p.groups == inS.c && p.cinPerGroup == 1 && p.cout == p.groups
    }

    /// One channel at a time, direct: each output row accumulates kh x kw shifted input rows
    /// (contiguous at stride 1, so the compiler vectorises the inner loop).
    private func depthwise(_ p: ConvParams, _ x: UnsafePointer<Float>, _ inS: Shape, _ y: UnsafeMutablePointer<Float>, _ outS: Shape) {
        var shape = sieve_q_depthwise_shape(channels: Int32(p.cout), in_h: Int32(inS.h), in_w: Int32(inS.w), out_h: Int32(outS.h), out_w: Int32(outS.w),
                                            kernel_h: Int32(p.kh), kernel_w: Int32(p.kw), stride_h: Int32(p.strideH), stride_w: Int32(p.strideW),
                                            pad_top: Int32(p.padTop), pad_left: Int32(p.padLeft))
        sieve_q_depthwise_f32(&shape, x, p.weights, p.bias, y)
    }

    /// scratch[(ci * kh + ky) * kw + kx][oy * out_w + ox] = x[ci][iy][ix], zero outside the input.
    private func im2col(_ p: ConvParams, _ x: UnsafePointer<Float>, _ inS: Shape, _ outS: Shape) {
        let positions = outS.h * outS.w
        for ci in 0..<p.cinPerGroup {
            let plane = x + ci * inS.h * inS.w
            for ky in 0..<p.kh {
                for kx in 0..<p.kw {
                    let row = scratch + ((ci * p.kh + ky) * p.kw + kx) * positions
                    for oy in 0..<outS.h {
                        let iy = oy * p.strideH - p.padTop + ky
                        let dst = row + oy * outS.w
                        if iy < 0 || iy >= inS.h {
                            dst.update(repeating: 0, count: outS.w)
                            continue
                        }
                        let srcRow = plane + iy * inS.w
                        for ox in 0..<outS.w {
                            let ix = ox * p.strideW - p.padLeft + kx
                            dst[ox] = ix >= 0 && ix < inS.w ? srcRow[ix] : 0
                        }
                    }
                }
            }
        }
    }
}
