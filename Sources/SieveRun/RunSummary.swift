/// What happened to every frame, and the latency and exit histograms: allocated at start, updated
/// without allocation, printed once at the end.
final class RunSummary {
    var framesRead = 0, classified = 0, dropped = 0, skipped = 0
    var partialBytes = 0, frameBytes = 0
    var kernels = "", threads = 1
    private var exitCounts: [Int]  // per head, then final
    private var latency: LatencyHistogram

    init(heads: Int) {
        exitCounts = [Int](repeating: 0, count: heads + 1)
        latency = LatencyHistogram()
    }

    func record(exitHead: Int, nanoseconds: UInt64) {
        classified += 1
        exitCounts[exitHead < 0 ? exitCounts.count - 1 : exitHead] += 1
        latency.add(nanoseconds)
    }

    /// The summary lines, into `line`.
    func write(into line: LineBuffer) {
        line.clear()
        line.append("sieve-run: frames read "); line.append(framesRead)
        line.append(", classified "); line.append(classified)
        line.append(", dropped "); line.append(dropped)
        line.append(", skipped "); line.append(skipped)
        if partialBytes > 0 {
            line.append("; a partial last frame: "); line.append(partialBytes); line.append(" of "); line.append(frameBytes)
            line.append(" bytes, "); line.append(frameBytes - partialBytes); line.append(" missing, not classified")
        } else {
            line.append("; no partial frame")
        }
        line.append(UInt8(ascii: "\n"))
        line.append("kernels: "); line.append(text: kernels)
        line.append(", threads: "); line.append(threads)
        line.append(UInt8(ascii: "\n"))
        line.append("latency per classified frame (preprocessing and inference): ")
        if classified > 0 {
            line.append("mean "); line.append(microsecondsFromNanoseconds: latency.meanNanoseconds)
            line.append(" us, p50 "); line.append(microsecondsFromNanoseconds: latency.percentileNanoseconds(50))
            line.append(" us, p99 "); line.append(microsecondsFromNanoseconds: latency.percentileNanoseconds(99))
            line.append(" us")
        } else {
            line.append("none")
        }
        line.append(UInt8(ascii: "\n"))
        line.append("exits:")
        for h in 0..<exitCounts.count - 1 {
            line.append(" head "); line.append(h); line.append(" "); line.append(exitCounts[h]); line.append(",")
        }
        line.append(" final "); line.append(exitCounts[exitCounts.count - 1])
        line.append(UInt8(ascii: "\n"))
    }
}

/// Latencies in 1 us buckets up to 10 ms, then 100 us buckets up to 1 s (the last bucket holds
/// everything slower): percentiles without keeping every sample.
struct LatencyHistogram {
    private var fine = [UInt32](repeating: 0, count: 10_000)
    private var coarse = [UInt32](repeating: 0, count: 10_000)
    private var count: UInt64 = 0
    private var total: UInt64 = 0

    mutating func add(_ ns: UInt64) {
        count += 1
        total += ns
        let us = ns / 1000
        if us < 10_000 { fine[Int(us)] += 1 } else { coarse[Int(min(us / 100, 9_999))] += 1 }
    }

    var meanNanoseconds: UInt64 { count == 0 ? 0 : total / count }

    /// The upper edge of the bucket holding the p-th percentile sample.
    func percentileNanoseconds(_ p: UInt64) -> UInt64 {
        guard count > 0 else { return 0 }
        let rank = max(1, (count * p + 99) / 100)
        var seen: UInt64 = 0
        for (i, n) in fine.enumerated() {
            seen += UInt64(n)
            if seen >= rank { return UInt64(i + 1) * 1000 }
        }
        for (i, n) in coarse.enumerated() {
            seen += UInt64(n)
            if seen >= rank { return UInt64(i + 1) * 100_000 }
        }
        return 1_000_000_000
    }
}
