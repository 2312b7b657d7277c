import ArgumentParser
import CSieveKernels
import Foundation
import SieveCore
import SieveQuantize
import SieveTune

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Accuracy, MACs, exit histogram and per-image latency of a blob on labelled images, exits on and off.",
        discussion: """
            Every image is classified twice in the same run, interleaved: with the blob's exit thresholds \
            (exits on) and with the backbone and classifier only (exits off). Heads with threshold 0 are off; \
            a blob straight from `sieve quantize` has every head off, so both runs agree.
            """)

    @Argument(help: "The .sieve blob.") var blob: String
    @Option(help: "Images: IDX (gzipped or raw) or .npy, uint8, the model's input size.") var images: String
    @Option(help: "Labels: IDX (gzipped or raw) or .npy, uint8, one per image.") var labels: String
    @Option(help: "Evaluate only the first N images.") var limit: Int?
    @Flag(help: "Print one JSON object (images, accuracy, mean_us, mean_macs, full_macs, exits, ...).") var json = false
    @Option(help: "Write every image's int8 logits to an .npy file, shape (N, 1 + heads, classes): [:,0] final, [:,1+i] head i (all heads run).")
    var dumpLogits: String?
    @Option(help: "Write every image's exact logits, the ones exits and answers read (docs/FORMAT.md), to a float32 .npy file, shape as --dump-logits.")
    var dumpExactLogits: String?
    @Option(help: "Write each image's decision to a CSV file: index, label, answer, exit head (-1 final), survivors, MACs.")
    var dumpExits: String?
    @Option(help: "Draw accuracy against mean MACs for the exclusion, confidence and combined rules across thresholds (Pareto fronts, swept on these images), with the blob's operating point marked, as an SVG file.")
    var plot: String?
    @OptionGroup var kernel: KernelOptions

    struct Report: Encodable {
        let images: Int, accuracy: Double, mean_us: Double, p50_us: Double, p99_us: Double
        let accuracy_no_exit: Double, mean_us_no_exit: Double, p99_us_no_exit: Double
        let mean_macs: Double, full_macs: Int, macs_reduction: Double, time_reduction: Double
        let exits: [Int], kernels: String, threads: Int
    }

    func validate() throws {
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1") }
    }

    func run() throws {
        // Every output checked (a regular file or new, no input) and its temporary file made
        // before the evaluation; each is renamed into place at the end.
        func output(_ path: String?) throws -> OutputFile? {
            guard let path else { return nil }
            do { return try OutputFile(path: path, inputs: [blob, images, labels]) } catch {
                printError("error: \(error.description)")
                throw ExitCode.failure
            }
        }
        let logitsFile = try output(dumpLogits), exactFile = try output(dumpExactLogits)
        let exitsFile = try output(dumpExits), plotFile = try output(plot)
        func commit(_ file: OutputFile?, _ data: @autoclosure () throws -> Data) throws {
            guard let file else { return }
            do { try file.commit(try data()) } catch let error as OutputFile.Failure {
                printError("error: \(error.description)")
                throw ExitCode.failure
            }
        }
        let file = try openBlob(blob)
        let model = file.model
        let interpreter: Interpreter
        do { interpreter = try Interpreter(model: model, path: kernel.isa, threads: kernel.threads) } catch {
            printError("error: \(blob): \(error)")
            throw ExitCode.failure
        }
        let input = model.inputTensor
        let set: ImageSet, truth: [UInt8]
        do {
            set = try ImageSet.load(path: images, expect: (Int(input.h), Int(input.w), Int(input.c)), calibration: false)
            truth = try LabelSet.load(path: labels)
        } catch {
            printError("error: \(error)")
            throw ExitCode.failure
        }
        let count = min(set.count, limit ?? set.count)
        guard truth.count >= count else {
            printError("error: \(labels): \(truth.count) labels for \(count) images")
            throw ExitCode.failure
        }
        if let bad = truth[0..<count].firstIndex(where: { Int($0) >= model.classCount }) {
            printError("error: \(labels): label \(truth[bad]) of image \(bad) is not a class of the model (0...\(model.classCount - 1))")
            throw ExitCode.failure
        }
        let rows = 1 + model.heads.count, classes = model.classCount
        var logits = dumpLogits == nil ? [] : [Int8](repeating: 0, count: count * rows * classes)
        var exactLogits = dumpExactLogits == nil ? [] : [Float](repeating: 0, count: count * rows * classes)
        var csv = "index,label,answer,exit_head,survivors,macs\n"
        var onTimes = [Double](repeating: 0, count: count), offTimes = onTimes
        var correctOn = 0, correctOff = 0, macs = 0
        var exits = [Int](repeating: 0, count: model.heads.count + 1)
        for i in 0..<count {
            set.image(i).withUnsafeBytes { pixels in
                // The network's time only, as `sieve bench` reports it: the input conversion
                // is the same either way and would dilute the time the exits save.
                interpreter.setInput(pixels: pixels)
                var start = sieve_now_ns()
                let off = interpreter.classify(exits: false)
                offTimes[i] = Double(sieve_now_ns() - start) / 1000
                interpreter.setInput(pixels: pixels)
                start = sieve_now_ns()
                let on = interpreter.classify(exits: true)
                onTimes[i] = Double(sieve_now_ns() - start) / 1000
                if off.answer == Int(truth[i]) { correctOff += 1 }
                if on.answer == Int(truth[i]) { correctOn += 1 }
                macs += on.macs
                exits[on.exitHead < 0 ? model.heads.count : on.exitHead] += 1
                if dumpExits != nil { csv += "\(i),\(truth[i]),\(on.answer),\(on.exitHead),\(on.survivorCount),\(on.macs)\n" }
            }
            if dumpLogits != nil || dumpExactLogits != nil {
                set.image(i).withUnsafeBytes { interpreter.setInput(pixels: $0) }
                interpreter.run()
                let base = i * rows * classes
                if dumpLogits != nil {
                    for (k, v) in interpreter.output.enumerated() { logits[base + k] = v }
                    for (h, head) in model.heads.enumerated() {
                        for (k, v) in interpreter.tensor(Int(head.logitsTensor)).enumerated() { logits[base + (1 + h) * classes + k] = v }
                    }
                }
                if dumpExactLogits != nil {
                    for (k, v) in interpreter.finalLogits.enumerated() { exactLogits[base + k] = v }
                    for h in model.heads.indices {
                        for (k, v) in interpreter.logits(head: h).enumerated() { exactLogits[base + (1 + h) * classes + k] = v }
                    }
                }
            }
        }
        try commit(logitsFile, npyFile(int8: logits, shape: [count, rows, classes]))
        try commit(exactFile, npyFile(float32: exactLogits, shape: [count, rows, classes]))
        try commit(exitsFile, Data(csv.utf8))
        try commit(plotFile, Data(try paretoPlot(model: model, set: set, truth: truth, count: count,
                                                 marker: (Double(macs) / Double(count), 100 * Double(correctOn) / Double(count))).utf8))
        let on = LatencyStats(onTimes), off = LatencyStats(offTimes)
        let meanMACs = Double(macs) / Double(count)
        let report = Report(
            images: count, accuracy: 100 * Double(correctOn) / Double(count), mean_us: on.mean, p50_us: on.p50, p99_us: on.p99,
            accuracy_no_exit: 100 * Double(correctOff) / Double(count), mean_us_no_exit: off.mean, p99_us_no_exit: off.p99,
            mean_macs: meanMACs, full_macs: noExitMACs(model), macs_reduction: 100 * (1 - meanMACs / Double(noExitMACs(model))),
            time_reduction: 100 * (1 - on.mean / off.mean), exits: exits, kernels: interpreter.path.name, threads: kernel.threads)
        if json { try printJSON(report); return }
        print("\(blob) on \(count) images from \(images) (\(interpreter.path.name) kernels, \(kernel.threads) thread\(kernel.threads == 1 ? "" : "s"))")
        print(String(format: "exits on:  accuracy %.2f %% (%d/%d), mean %@ MACs (%.1f %% fewer), latency mean %.1f us, p50 %.1f us, p99 %.1f us",
                     report.accuracy, correctOn, count, grouped(Int(meanMACs)), report.macs_reduction, on.mean, on.p50, on.p99))
        print(String(format: "exits off: accuracy %.2f %% (%d/%d), %@ MACs, latency mean %.1f us, p50 %.1f us, p99 %.1f us",
                     report.accuracy_no_exit, correctOff, count, grouped(report.full_macs), off.mean, off.p50, off.p99))
        print(String(format: "time saved by exits: %.1f %% of the mean latency", report.time_reduction))
        let names = model.heads.indices.map { "head \($0)" } + ["final"]
        print("exits: " + zip(names, exits).map { "\($0) \($1)" }.joined(separator: ", "))
    }
}

extension EvalCommand {
    func paretoPlot(model: Model, set: ImageSet, truth: [UInt8], count: Int, marker: (macs: Double, accuracy: Double)) throws -> String {
        let cache = try ExitCache(model: model, images: set, labels: truth, indices: Array(0..<count))
        let simulator = ExitSimulator(model: model, cache: cache)
        let reference = ThresholdSearch(simulator: simulator, target: 0).referenceAccuracy()
        var chart = ParetoPlot(title: "\(URL(fileURLWithPath: blob).lastPathComponent): accuracy against MACs, \(count) images",
                               fullMACs: Double(simulator.fullMACs))
        let colors: [ExitRuleChoice: String] = [.exclusion: "#d62728", .confidence: "#1f77b4", .combined: "#2ca02c"]
        for rule in ExitRuleChoice.allCases {
            chart.series.append(.init(name: rule.rawValue, color: colors[rule]!,
                                      points: ThresholdSearch.sweep(simulator, rule: rule, reference: reference)))
        }
        chart.marker = ("this blob", marker.macs, marker.accuracy)
        return chart.svg()
    }
}

/// MACs of the network with every head off: backbone and classifier.
func noExitMACs(_ model: Model) -> Int {
    let headMACs = model.heads.reduce(0) { total, head in
        total + (Int(head.firstOp)..<Int(head.firstOp + head.opCount)).reduce(0) { $0 + model.macs(op: $1) }
    }
    return model.fullMACs - headMACs
}

struct LatencyStats {
    let mean: Double, p50: Double, p99: Double
    init(_ times: [Double]) {
        let sorted = times.sorted()
        mean = times.reduce(0, +) / Double(times.count)
        p50 = sorted[sorted.count / 2]
        p99 = sorted[min(sorted.count - 1, sorted.count * 99 / 100)]
    }
}
