import CQuantizeKernels
import Foundation

/// How activation ranges are chosen from the float activations of the calibration images.
public enum CalibrationMethod: String, CaseIterable, Sendable {
    /// The observed minimum and maximum.
    case minmax
    /// The observed range with the top and bottom (100 - p)% of values clipped (p = 99.99 by default).
    case percentile
    /// The clipping range that minimises the expected quantisation mean squared error.
    case mse
}

/// Asymmetric int8 quantisation of an activation tensor: real = scale * (q - zeroPoint).
struct QParams: Equatable {
    var scale: Float
    var zeroPoint: Int32

    /// The range is widened to include 0, `scale = (max - min) / 255`,
    /// `zero_point = round(-128 - min / scale)` clamped to -128...127.
    init(min lo: Double, max hi: Double) {
        var lo = Swift.min(lo, 0), hi = Swift.max(hi, 0)
        if !(hi - lo > 1e-12) || !lo.isFinite || !hi.isFinite { lo = 0; hi = 1 } // an all-zero tensor: any scale holds 0 exactly
        let scale = Float((hi - lo) / 255)
        let zp = (-128 - lo / Double(scale)).rounded(.toNearestOrAwayFromZero)
        self.scale = scale
        self.zeroPoint = Int32(Swift.max(-128, Swift.min(127, zp)))
    }

    init(scale: Float, zeroPoint: Int32) { self.scale = scale; self.zeroPoint = zeroPoint }

    func dequantize(_ q: Int8) -> Float { scale * Float(Int32(q) - zeroPoint) }

    /// A conv output read only by a table or a depthwise conv (ChannelGroups.swift): each channel
    /// group has its own scale (and, before a table, zero point); `scale` and `zeroPoint` above are
    /// then the blob's nominal ones (the conv kernel adds that zero point, the bias the rest).
    var groups: ChannelGroups? = nil

    /// Channel c's quantisation: its group's, or the tensor's.
    func channel(_ c: Int) -> QParams { groups.map { $0.params[Int($0.map[c])] } ?? self }
}

/// A histogram of one tensor's values with 0 on a bin edge; exact zeros are counted apart
/// (they quantise without error whatever the range).
struct Histogram {
    static let targetBins = 2048
    let width: Double
    /// Bins below zero; bin i covers [(i - negativeBins) * width, (i - negativeBins + 1) * width).
    let negativeBins: Int
    var bins: [Double]
    var zeros: Double = 0

    init(min lo: Float, max hi: Float) {
        let lo = Double(Swift.min(lo, 0)), hi = Double(Swift.max(hi, 0))
        let w = hi > lo ? (hi - lo) / Double(Histogram.targetBins) : 1
        width = w
        negativeBins = Int((-lo / w).rounded(.up))
        let positive = Int((hi / w).rounded(.up))
        bins = [Double](repeating: 0, count: Swift.max(1, negativeBins + positive))
    }

    var total: Double { bins.reduce(0, +) + zeros }
    func edge(_ i: Int) -> Double { Double(i - negativeBins) * width }

    mutating func add(_ values: UnsafeBufferPointer<Float>) {
        let slots = bins.count + 1  // the last: exact zeros
        var counts = [UInt32](repeating: 0, count: 4 * slots)  // four interleaved copies (quantize_kernels.h)
        sieve_q_histogram_add(values.baseAddress, Int64(values.count), 1 / width, Int32(negativeBins), Int32(bins.count), &counts)
        bins.withUnsafeMutableBufferPointer { b in
            for k in 0..<4 {
                for i in b.indices { b[i] += Double(counts[k * slots + i]) }
                zeros += Double(counts[k * slots + slots - 1])
            }
        }
    }

    mutating func merge(_ other: Histogram) {
        for i in bins.indices { bins[i] += other.bins[i] }
        zeros += other.zeros
    }

    /// Clips `(100 - percentile)`% of the values off each end.
    func percentileRange(_ percentile: Double) -> (Double, Double) {
        let tail = total * (100 - percentile) / 100
        var zeroBin = negativeBins  // the bin that starts at 0 holds the exact zeros for counting
        zeroBin = Swift.min(zeroBin, bins.count - 1)
        func count(_ i: Int) -> Double { bins[i] + (i == zeroBin ? zeros : 0) }
        var above = 0.0, hiEdge = bins.count
        while hiEdge > 0 && above + count(hiEdge - 1) <= tail { above += count(hiEdge - 1); hiEdge -= 1 }
        var below = 0.0, loEdge = 0
        while loEdge < bins.count && below + count(loEdge) <= tail { below += count(loEdge); loEdge += 1 }
        return (Swift.min(edge(loEdge), 0), Swift.max(edge(hiEdge), 0))
    }

    /// The range [L, U] (bin edges, L <= 0 <= U) minimising the expected squared error:
    /// values inside are off by a uniform rounding error (step^2 / 12), values outside by their distance to the range.
    func mseRange() -> (Double, Double) {
        let n = bins.count
        var s0 = [Double](repeating: 0, count: n + 1), s1 = s0, s2 = s0
        for i in 0..<n {
            let x = edge(i) + width / 2
            s0[i + 1] = s0[i] + bins[i]
            s1[i + 1] = s1[i] + bins[i] * x
            s2[i + 1] = s2[i] + bins[i] * x * x
        }
        let zero = negativeBins
        var best = (error: Double.infinity, lo: edge(0), hi: edge(n))
        for a in 0...zero {
            let lo = edge(a)
            let belowErr = s2[a] - 2 * lo * s1[a] + lo * lo * s0[a]
            if belowErr >= best.error { continue }
            for b in zero...n where b > a {
                let hi = edge(b)
                let step = (hi - lo) / 255
                let inside = (s0[b] - s0[a]) * step * step / 12
                let c0 = s0[n] - s0[b], c1 = s1[n] - s1[b], c2 = s2[n] - s2[b]
                let aboveErr = c2 - 2 * hi * c1 + hi * hi * c0
                let e = belowErr + inside + aboveErr
                if e < best.error { best = (e, lo, hi) }
            }
        }
        return (best.lo, best.hi)
    }
}

/// Runs the float model over calibration images and returns each calibrated value's range.
struct Calibrator {
    let graph: Graph
    let images: ImageSet
    let count: Int
    let method: CalibrationMethod
    let percentile: Double
    let progress: Progress?
    /// Channel groups (ChannelGroups.swift); nil: every tensor one scale.
    var grouping: ChannelGrouping? = nil

    /// Values whose range is calibrated: every layer output except those whose quantisation follows
    /// from elsewhere (pools keep their input's, a CONCAT covers its inputs', some tables have a
    /// fixed one: `activationParams`), which would only cost passes over their values.
    var calibrated: [Int] {
        graph.layers.filter { layer in
            if layer.kind.keepsInputQuantisation { return false }
            if case .concat = layer.kind { return false }
            if case .lut(let f) = layer.kind, f.fixedQParams != nil { return false }
            return true
        }.map { $0.output }
    }

    func ranges() -> [Int: (min: Double, max: Double)] { rangesAndMeans().ranges }

    typealias Range = (min: Double, max: Double)
    /// A grouped value's channel groups and each group's range.
    typealias GroupRanges = (map: [UInt8], ranges: [Range], reader: GroupedReader)

    /// The ranges, and per layer with a bias its float output's mean per channel (what bias
    /// correction aims at, gathered in the first pass rather than in a pass of its own), and the
    /// channel groups of the values `grouping` splits, each group with its own range.
    func rangesAndMeans() -> (ranges: [Int: Range], means: [Int: [Double]], groups: [Int: GroupRanges]) {
        let values = calibrated
        let biased = graph.layers.indices.filter { graph.layers[$0].hasBias }
        let readers = grouping?.candidates(graph) ?? [:]
        let candidates = readers.keys.sorted().filter { values.contains($0) }
        // Pass 1: min and max (per channel for the candidates for channel groups), and the channel sums.
        let pass1: [([(Float, Float)], [Int: [Double]], [[(Float, Float)]])] = parallelChunks(count: count, progress: progress, passes: method == .minmax ? 1 : 2, pass: 0) { range in
            let executor = FloatExecutor(graph: graph)
            var stats = [(Float, Float)](repeating: (.infinity, -.infinity), count: values.count)
            var channelStats = candidates.map { [(Float, Float)](repeating: (.infinity, -.infinity), count: graph.values[$0].shape.c) }
            var sums: [Int: [Double]] = [:]
            for i in range.indices {
                executor.run(pixels: images.image(i))
                for (j, v) in values.enumerated() {
                    var (lo, hi) = stats[j]
                    for x in executor.value(v) { lo = min(lo, x); hi = max(hi, x) }
                    stats[j] = (lo, hi)
                }
                for (j, v) in candidates.enumerated() {
                    let x = executor.value(v), plane = graph.values[v].shape.h * graph.values[v].shape.w
                    for c in channelStats[j].indices {
                        var (lo, hi) = channelStats[j][c]
                        for k in (c * plane)..<((c + 1) * plane) { lo = min(lo, x[k]); hi = max(hi, x[k]) }
                        channelStats[j][c] = (lo, hi)
                    }
                }
                for l in biased {
                    executor.addChannelSums(of: graph.layers[l].output, into: &sums[l, default: []])
                }
                range.step()
            }
            return (stats, sums, channelStats)
        }
        let minmax = pass1.map { $0.0 }
        // Channel groups from the per-channel ranges, each group's min and max.
        var groupMaps: [Int: [UInt8]] = [:], groupMinMax: [Int: [(Float, Float)]] = [:]
        for (j, v) in candidates.enumerated() {
            var channels = pass1[0].2[j]
            for part in pass1.dropFirst() { for c in channels.indices { channels[c] = (min(channels[c].0, part.2[j][c].0), max(channels[c].1, part.2[j][c].1)) } }
            guard channels.allSatisfy({ $0.0.isFinite && $0.1.isFinite }),
                  let map = grouping!.groups(lo: channels.map { $0.0 }, hi: channels.map { $0.1 },
                                             weight: ChannelGrouping.consumerWeight(graph, value: v), reader: readers[v]!) else { continue }
            var extent = [(Float, Float)](repeating: (.infinity, -.infinity), count: Int(map.max()!) + 1)
            for c in channels.indices { let g = Int(map[c]); extent[g] = (min(extent[g].0, channels[c].0), max(extent[g].1, channels[c].1)) }
            groupMaps[v] = map; groupMinMax[v] = extent
        }
        var means: [Int: [Double]] = [:]
        for l in biased {
            let s = graph.values[graph.layers[l].output].shape
            var total = [Double](repeating: 0, count: s.c)
            for part in pass1 { for c in total.indices { total[c] += part.1[l]![c] } }
            means[l] = total.map { $0 / Double(count * s.h * s.w) }
        }
        var merged = [(Float, Float)](repeating: (.infinity, -.infinity), count: values.count)
        for part in minmax { for j in values.indices { merged[j] = (min(merged[j].0, part[j].0), max(merged[j].1, part[j].1)) } }
        var result: [Int: (min: Double, max: Double)] = [:]
        // Non-finite activations: report them as they are (quantisation refuses them), no histograms.
        if method == .minmax || merged.contains(where: { !$0.0.isFinite || !$0.1.isFinite }) {
            for (j, v) in values.enumerated() { result[v] = (Double(merged[j].0), Double(merged[j].1)) }
            var groups: [Int: GroupRanges] = [:]
            for (v, extent) in groupMinMax { groups[v] = (groupMaps[v]!, extent.map { (min: Double($0.0), max: Double($0.1)) }, readers[v]!) }
            return (result, means, groups)
        }
        // Pass 2: histograms over the observed ranges, and over each channel group's.
        let grouped = Array(groupMaps.keys).sorted()
        let parts: [([Histogram], [[Histogram]])] = parallelChunks(count: count, progress: progress, passes: 2, pass: 1) { range in
            let executor = FloatExecutor(graph: graph)
            var hists = merged.map { Histogram(min: $0.0, max: $0.1) }
            var groupHists = grouped.map { v in groupMinMax[v]!.map { Histogram(min: $0.0, max: $0.1) } }
            for i in range.indices {
                executor.run(pixels: images.image(i))
                for (j, v) in values.enumerated() { hists[j].add(executor.value(v)) }
                for (j, v) in grouped.enumerated() {
                    let x = executor.value(v), plane = graph.values[v].shape.h * graph.values[v].shape.w, map = groupMaps[v]!
                    for c in map.indices { groupHists[j][Int(map[c])].add(UnsafeBufferPointer(rebasing: x[(c * plane)..<((c + 1) * plane)])) }
                }
                range.step()
            }
            return (hists, groupHists)
        }
        var hists = parts[0].0, groupHists = parts[0].1
        for part in parts.dropFirst() {
            for j in hists.indices { hists[j].merge(part.0[j]) }
            for j in groupHists.indices { for g in groupHists[j].indices { groupHists[j][g].merge(part.1[j][g]) } }
        }
        var groups: [Int: GroupRanges] = [:]
        for (j, v) in grouped.enumerated() {
            groups[v] = (groupMaps[v]!, groupHists[j].map { h in
                let r = method == .percentile ? h.percentileRange(percentile) : h.mseRange()
                return (min: r.0, max: r.1)
            }, readers[v]!)
        }
        // Logits keep their whole observed range: they decide exits and answers, and clipping the
        // top would tie the leading classes at 127 (measured: head 0 argmax agreed with float on
        // 94.6 % of images with an mse range, against 99+ % for the unclipped heads).
        // So does the tensor a logits pool takes its quantisation from (SqueezeNet's classifier conv
        // before its global pool): clipping its peaks lowers every mean it feeds by a bias that does
        // not average out (random SqueezeNet: that conv's SQNR 12.5 dB with an mse range).
        var logits = Set<Int>()
        for var v in [graph.final] + graph.heads.map({ $0.output }) {
            logits.insert(v)
            while let pool = graph.layers.first(where: { $0.output == v && $0.kind.keepsInputQuantisation }) {
                v = pool.inputs[0]
                logits.insert(v)
            }
        }
        for (j, v) in values.enumerated() {
            if logits.contains(v) { result[v] = (Double(merged[j].0), Double(merged[j].1)); continue }
            result[v] = method == .percentile ? hists[j].percentileRange(percentile) : hists[j].mseRange()
        }
        return (result, means, groups)
    }
}

// MARK: - Parallel loops and progress

/// A contiguous slice of the work, with a hook to report one finished item.
package struct WorkRange {
    package let indices: Range<Int>
    let report: (() -> Void)?
    package func step() { report?() }
}

/// Splits `0..<count` into one contiguous chunk per core and runs `body` on each concurrently.
package func parallelChunks<T>(count: Int, progress: Progress? = nil, passes: Int = 1, pass: Int = 0,
                       _ body: (WorkRange) -> T) -> [T] {
    let threads = max(1, min(ProcessInfo.processInfo.activeProcessorCount, 8, count))
    let results = ResultSlots<T>(count: threads)
    let counter = ProgressCounter()
    DispatchQueue.concurrentPerform(iterations: threads) { t in
        let range = (count * t / threads)..<(count * (t + 1) / threads)
        let report: (() -> Void)? = progress.map { p in
            { let done = counter.increment(); p.update(pass * count + done, of: passes * count) }
        }
        results.set(t, body(WorkRange(indices: range, report: report)))
    }
    return results.values()
}

final class ResultSlots<T>: @unchecked Sendable {
    private var slots: [T?]
    private let lock = NSLock()
    init(count: Int) { slots = [T?](repeating: nil, count: count) }
    func set(_ i: Int, _ value: T) { lock.lock(); slots[i] = value; lock.unlock() }
    func values() -> [T] { slots.map { $0! } }
}

final class ProgressCounter: @unchecked Sendable {
    private var value = 0
    private let lock = NSLock()
    func increment() -> Int { lock.lock(); defer { lock.unlock() }; value += 1; return value }
}

/// A one-line progress bar on stderr, redrawn in place when stderr is a terminal. With `lines`,
/// each phase also leaves one line when it ends ("label: 1.23 s"), on a terminal or not, so a log
/// shows where the time went.
package final class Progress: @unchecked Sendable {
    private let label: String
    private let lock = NSLock()
    private var lastDrawn = -1
    private let draws: Bool, lines: Bool
    private let start = Date()

    /// nil unless `enabled` and stderr is a terminal (or `lines`).
    package static func make(_ label: String, enabled: Bool, lines: Bool = false) -> Progress? {
        let terminal = isatty(STDERR_FILENO) != 0
        return enabled && (terminal || lines) ? Progress(label, draws: terminal, lines: lines) : nil
    }

    private init(_ label: String, draws: Bool, lines: Bool) { self.label = label; self.draws = draws; self.lines = lines }

    package func update(_ done: Int, of total: Int) {
        guard draws else { return }
        lock.lock(); defer { lock.unlock() }
        let width = 30
        let filled = total > 0 ? done * width / total : width
        let percent = total > 0 ? done * 100 / total : 100
        guard percent != lastDrawn || done == total else { return }
        lastDrawn = percent
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        FileHandle.standardError.write(Data("\r\(label) [\(bar)] \(done)/\(total)".utf8))
    }

    package func finish() {
        var text = draws ? "\r\u{1B}[K" : ""
        if lines { text += "\(label): \(String(format: "%.2f", Date().timeIntervalSince(start))) s\n" }
        FileHandle.standardError.write(Data(text.utf8))
    }
}
