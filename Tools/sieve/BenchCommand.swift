import ArgumentParser
import CSieveKernels
import Foundation
import SieveCore
import SieveQuantize
import SieveRun

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Per-op time, MACs and GMAC/s of a blob against the core's peak, and its whole-network latency.",
        discussion: """
            Runs the network many times on real images (after warm-up runs that are not counted). \
            Each op is timed inside every run, in network order, heads included; the whole network \
            is timed separately with the heads off (as `sieve eval` times it with exits off) and with \
            the blob's exits on. Medians throughout. The peak is the kernel path's multiply-accumulate \
            instruction in a register-only loop, measured in the same run. With --threads above 1, \
            one thread is timed too, run for run, and the speed-up is the ratio of the median latencies \
            (frames per second from the means are printed too; they move with the machine's noise). \
            --contend N starts N busy processes for the timed runs, as a camera process shares a \
            board's cores: compare the median and p99 of N threads with one thread's in the same run.
            """)

    @Argument(help: "The .sieve blob.") var blob: String
    @Option(help: "Images to run on (IDX or .npy), cycled through (default: the bundled 1000 test images).") var images: String?
    @Option(help: "Timed runs.") var runs = 200
    @Option(help: "Untimed warm-up runs first.") var warmup = 20
    @OptionGroup var kernel: KernelOptions
    var threads: Int { kernel.threads }
    @Option(help: "Busy processes competing for the cores while timing (0...64).") var contend = 0
    @Option(help: "Camera frame whose preprocessing (centred crop in the model's aspect ratio, resize, colour, table) is timed: WxH.")
    var frameSize = "640x480"
    @Option(help: "Its format: gray8, rgb24, bgr24, i420, nv12, yuyv.") var frameFormat = "i420"
    @Flag(help: "Print one JSON object.") var json = false

    func validate() throws {
        guard runs >= 1 && runs <= 1_000_000 else { throw ValidationError("--runs must be in 1...1000000") }
        guard warmup >= 0 && warmup <= 1_000_000 else { throw ValidationError("--warmup must be in 0...1000000") }
        guard contend >= 0 && contend <= 64 else { throw ValidationError("--contend must be in 0...64") }
    }

    struct OpRow: Encodable {
        let index: Int, kind: String, head: Int?, macs: Int, median_us: Double, gmacs: Double, share: Double
        // Against peak_u8_route_gmacs when u8_route, else peak_gmacs; none for Winograd ops, whose
        // MACs are the direct conv's, more than the multiplies they run.
        let peak_share: Double?
        let u8_route: Bool
        let route: String  // "" (the path's own kernel), "u8" or "winograd"
    }
    struct Report: Encodable {
        let runs: Int, isa: String, threads: Int, contend: Int, full_macs: Int, peak_gmacs: Double?, peak_u8_route_gmacs: Double?
        let median_us: Double, p99_us: Double, gmacs: Double, frames_per_second: Double
        let one_thread_median_us: Double?, one_thread_p99_us: Double?, one_thread_frames_per_second: Double?
        let thread_speedup: Double?
        let preprocess_frame: String, preprocess_median_us: Double
        let exits_median_us: Double, exits_p99_us: Double, exits_mean_macs: Double
        let ops: [OpRow]
    }

    func run() throws {
        let bundled = "fashion-mnist-test-1000-images-idx3-ubyte.gz"
        let file = try openBlob(blob)
        let model = file.model
        let input = model.inputTensor
        let shape = (Int(input.h), Int(input.w), Int(input.c))
        var images = try pathOrBundled(self.images, bundled, option: "--images")
        let set: ImageSet
        do {
            if self.images == nil && (shape != (28, 28, 1)) {
                // A model of the user's own size: the bundled images do not fit, and the kernels'
                // time does not depend on the pixels, so synthetic ones time it just as well.
                set = ImageSet.synthetic(count: 16, height: shape.0, width: shape.1, channels: shape.2)
                images = "synthetic \(shape.0)x\(shape.1)x\(shape.2) pictures (pass --images for real ones)"
            } else {
                set = try ImageSet.load(path: images, expect: shape, calibration: false)
            }
        } catch {
            printError("error: \(error)")
            throw ExitCode.failure
        }
        guard set.count > 0 else { printError("error: \(images) holds no images"); throw ExitCode.failure }
        let interpreter = try Interpreter(model: model, path: kernel.isa, threads: threads)
        let peak = PeakRate.measure(path: interpreter.path)
        // Ops on the avx2 u8 x s8 route are measured against that route's own peak.
        let routes = (0..<model.ops.count).map { interpreter.route(op: $0) }
        let u8Ops = Set((0..<model.ops.count).filter { routes[$0] == .u8 })
        let peakU8 = u8Ops.isEmpty ? nil : PeakRate.measureU8Route(path: interpreter.path)
        let frames = try FrameBench(size: frameSize, format: frameFormat, interpreter: interpreter,
                                    pictures: (0..<min(16, set.count)).map { set.image($0) })
        let oneThread = threads > 1 ? try Interpreter(model: model, path: interpreter.path) : nil
        var oneThreadTimes = [Double](repeating: 0, count: oneThread == nil ? 0 : runs)
        let opCount = model.ops.count
        var headOf = [Int?](repeating: nil, count: opCount)
        for (h, head) in model.heads.enumerated() { for i in Int(head.firstOp)..<Int(head.firstOp + head.opCount) { headOf[i] = h } }

        var opTimes = [[Double]](repeating: [Double](repeating: 0, count: runs), count: opCount)
        var wholeTimes = [Double](repeating: 0, count: runs)
        var exitTimes = [Double](repeating: 0, count: runs)
        var exitMACs = 0
        let busy = try BusyProcesses(count: contend)
        for r in -warmup..<runs {
            set.image((r + warmup) % set.count).withUnsafeBytes { interpreter.setInput(pixels: $0) }
            for i in 0..<opCount {
                let start = sieve_now_ns()
                interpreter.run(op: i)
                if r >= 0 { opTimes[i][r] = Double(sieve_now_ns() - start) / 1000 }
            }
            set.image((r + warmup) % set.count).withUnsafeBytes { interpreter.setInput(pixels: $0) }
            let start = sieve_now_ns()
            _ = interpreter.classify(exits: false)
            if r >= 0 { wholeTimes[r] = Double(sieve_now_ns() - start) / 1000 }
            set.image((r + warmup) % set.count).withUnsafeBytes { interpreter.setInput(pixels: $0) }
            let exitStart = sieve_now_ns()
            let result = interpreter.classify(exits: true)
            if r >= 0 { exitTimes[r] = Double(sieve_now_ns() - exitStart) / 1000; exitMACs += result.macs }
            frames.time(frame: r + warmup, counted: r >= 0)
            if let oneThread {
                set.image((r + warmup) % set.count).withUnsafeBytes { oneThread.setInput(pixels: $0) }
                let oneStart = sieve_now_ns()
                _ = oneThread.classify(exits: false)
                if r >= 0 { oneThreadTimes[r] = Double(sieve_now_ns() - oneStart) / 1000 }
            }
        }
        busy.stop()
        let medians = opTimes.map { LatencyStats($0).p50 }
        let total = medians.reduce(0, +)
        let rows = (0..<opCount).map { i in
            let macs = model.macs(op: i)
            let gmacs = medians[i] > 0 ? Double(macs) / medians[i] / 1000 : 0
            return OpRow(index: i, kind: "\(model.ops[i].opKind!.name)", head: headOf[i], macs: macs, median_us: medians[i],
                         gmacs: gmacs, share: total > 0 ? 100 * medians[i] / total : 0,
                         peak_share: routes[i] == .winograd ? nil : (u8Ops.contains(i) ? peakU8 : peak).map { macs > 0 ? 100 * gmacs / $0 : 0 },
                         u8_route: u8Ops.contains(i), route: routes[i].name)
        }
        let whole = LatencyStats(wholeTimes), exiting = LatencyStats(exitTimes)
        let single = oneThread == nil ? nil : LatencyStats(oneThreadTimes)
        let fullMACs = noExitMACs(model)
        let pathName = interpreter.path.name
        let report = Report(runs: runs, isa: pathName, threads: threads, contend: contend, full_macs: fullMACs, peak_gmacs: peak, peak_u8_route_gmacs: peakU8,
                            median_us: whole.p50, p99_us: whole.p99, gmacs: Double(fullMACs) / whole.p50 / 1000,
                            frames_per_second: 1_000_000 / whole.mean, one_thread_median_us: single?.p50, one_thread_p99_us: single?.p99,
                            one_thread_frames_per_second: single.map { 1_000_000 / $0.mean },
                            thread_speedup: single.map { $0.p50 / whole.p50 },
                            preprocess_frame: frames.name, preprocess_median_us: frames.median,
                            exits_median_us: exiting.p50, exits_p99_us: exiting.p99, exits_mean_macs: Double(exitMACs) / Double(runs),
                            ops: rows)
        if json { try printJSON(report); return }
        print("\(blob): \(runs) runs after \(warmup) warm-up, images from \(images) (\(pathName) kernels, \(threads) thread\(threads == 1 ? "" : "s"))"
              + (contend > 0 ? ", \(contend) busy process\(contend == 1 ? "" : "es") competing" : ""))
        if let peak { print(String(format: "peak of %@ on this core: %.1f GMAC/s (register-only loop)", pathName, peak)) }
        if let peakU8 {
            print(String(format: "peak of its u8 x s8 route: %.1f GMAC/s, the \"of peak\" of the %d ops on it", peakU8, u8Ops.count))
        }
        let winograd = routes.filter { $0 == .winograd }.count
        if winograd > 0 {
            print("Winograd F(2,3) for the \(winograd) 3x3 stride-1 convs: 16 products per 2x2 outputs and input channel where a direct conv has 36, so their GMAC/s (of direct MACs) can pass the peak; \"of peak\" says F(2,3)")
        }
        print("")
        print(pad("op", 4) + pad("kind", 21) + pad("head", 6) + lpad("MACs", 12) + lpad("median us", 11) + lpad("GMAC/s", 8)
              + lpad("of peak", 9) + lpad("share", 8))
        for row in rows {
            print(pad("\(row.index)", 4) + pad(row.kind, 21) + pad(row.head.map(String.init) ?? "", 6) + lpad(grouped(row.macs), 12)
                  + lpad(String(format: "%.1f", row.median_us), 11) + lpad(row.macs > 0 ? String(format: "%.2f", row.gmacs) : "", 8)
                  + lpad(row.route == "winograd" ? "F(2,3)" : row.macs > 0 ? row.peak_share.map { String(format: "%.0f%%", $0) } ?? "" : "", 9)
                  + lpad(String(format: "%.1f%%", row.share), 8))
        }
        print("")
        print(String(format: "whole network, heads off: median %.1f us, p99 %.1f us, %@ MACs, %.2f GMAC/s, %.0f frames/s",
                     whole.p50, whole.p99, grouped(fullMACs), report.gmacs, report.frames_per_second))
        print(String(format: "blob's exits on:          median %.1f us, p99 %.1f us, mean %@ MACs",
                     exiting.p50, exiting.p99, grouped(Int(report.exits_mean_macs))))
        print(String(format: "preprocessing a %@ frame: median %.1f us (crop, resize, colour, table; not in the times above)",
                     report.preprocess_frame, report.preprocess_median_us))
        if let single, let speedup = report.thread_speedup {
            print(String(format: "one thread, same runs:    median %.1f us, p99 %.1f us, %.0f frames/s; %d threads: %.2fx faster (medians), p99 %.2fx",
                         single.p50, single.p99, 1_000_000 / single.mean, threads, speedup, whole.p99 / single.p99))
            let ops = interpreter.threadedOps
            print("large ops:                \(ops.split) split over \(threads) threads, \(ops.alone) on the caller alone (faster there, or probing)")
        }
    }
}
