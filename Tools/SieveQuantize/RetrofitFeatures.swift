import Foundation

/// The pooled features each exit head is fitted on: the frozen float network run once over the
/// training images, stopping after the deepest tap unless the network's own answers are wanted.
struct TapFeatures {
    /// Per tap, `count` rows of `pooling.featureCount(channels:)` floats, in the order ONNX's
    /// Flatten of the head's pool gives them (channel-major, then grid row, then grid column).
    var rows: [[Float]]
    var widths: [Int]
    var count: Int
    /// The float network's top-1 class on each image (`answers: true`), else empty.
    var networkAnswers: [Int] = []
    /// Its softmax probabilities, `count` x classes (`answers: true`), else empty.
    var networkProbabilities: [Float] = []

    static func extract(graph: Graph, taps: [Tap], pooling: HeadPooling, images: ImageSet, count: Int,
                        answers: Bool, progress: Progress?) -> TapFeatures {
        let executor = FloatExecutor(graph: graph)
        let last = answers ? graph.layers.count - 1 : taps.map { graph.values[$0.value].producer! }.max()!
        var networkAnswers: [Int] = [], networkProbabilities: [Float] = []
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
            if answers {
                let logits = executor.value(graph.final)
                let top = logits.indices.max { logits[$0] < logits[$1] }!
                networkAnswers.append(top)
                let e = logits.map { expf($0 - logits[top]) }, sum = e.reduce(0, +)
                networkProbabilities += e.map { $0 / sum }
            }
            if i % 256 == 0 || i + 1 == count { progress?.update(i + 1, of: count) }
        }
        return TapFeatures(rows: rows, widths: widths, count: count, networkAnswers: networkAnswers, networkProbabilities: networkProbabilities)
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
