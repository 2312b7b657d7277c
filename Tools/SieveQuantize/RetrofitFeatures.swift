/// The pooled features each exit head is fitted on: the frozen float network run once over the
/// training images, stopping after the deepest tap (the rest of the network is not needed).
struct TapFeatures {
    /// Per tap, `count` rows of `pooling.featureCount(channels:)` floats, in the order ONNX's
    /// Flatten of the head's pool gives them (channel-major, then grid row, then grid column).
    var rows: [[Float]]
    var widths: [Int]
    var count: Int

    static func extract(graph: Graph, taps: [Tap], pooling: HeadPooling, images: ImageSet, count: Int,
                        progress: Progress?) -> TapFeatures {
        let executor = FloatExecutor(graph: graph)
        let last = taps.map { graph.values[$0.value].producer! }.max()!
        let widths = taps.map { pooling.featureCount(channels: $0.c) }
        var rows = widths.map { [Float](repeating: 0, count: count * $0) }
        for i in 0..<count {
            executor.setInput(images.image(i))
            for l in 0...last { executor.run(layer: l) }
            for (t, tap) in taps.enumerated() {
                let x = executor.value(tap.value)
                let base = i * widths[t]
                rows[t].withUnsafeMutableBufferPointer { out in
                    pool(x, tap, pooling, into: out.baseAddress! + base)
                }
            }
            if i % 256 == 0 || i + 1 == count { progress?.update(i + 1, of: count) }
        }
        return TapFeatures(rows: rows, widths: widths, count: count)
    }

    /// What the head's GlobalAveragePool or AveragePool (then Flatten) computes from the tap: per
    /// channel, the mean of each grid cell's window, row by row (gap: one window, the whole plane).
    static func pool(_ x: UnsafeBufferPointer<Float>, _ tap: Tap, _ pooling: HeadPooling, into out: UnsafeMutablePointer<Float>) {
        let n = pooling.cells, plane = tap.h * tap.w
        let (kh, sh) = HeadPooling.gridWindow(tap.h, cells: n), (kw, sw) = HeadPooling.gridWindow(tap.w, cells: n)
        for c in 0..<tap.c {
            for gy in 0..<n {
                for gx in 0..<n {
                    var sum: Float = 0
                    for y in (gy * sh)..<(gy * sh + kh) {
                        for xx in (gx * sw)..<(gx * sw + kw) { sum += x[c * plane + y * tap.w + xx] }
                    }
                    out[(c * n + gy) * n + gx] = sum / Float(kh * kw)
                }
            }
        }
    }
}
