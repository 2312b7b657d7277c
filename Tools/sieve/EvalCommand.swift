import ArgumentParser
import CSieveKernels
import Foundation
import SieveCore
import SieveQuantize

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Top-1 accuracy and per-image latency of a blob on labelled images (no early exit).")

    @Argument(help: "The .sieve blob.") var blob: String
    @Option(help: "Images: IDX (gzipped or raw) or .npy, uint8, the model's input size.") var images: String
    @Option(help: "Labels: IDX (gzipped or raw) or .npy, uint8, one per image.") var labels: String
    @Option(help: "Evaluate only the first N images.") var limit: Int?
    @Flag(help: "Print one JSON object (images, accuracy, mean_us, ...).") var json = false
    @Option(help: "Write every image's int8 logits to an .npy file, shape (N, 1 + heads, classes): [:,0] final, [:,1+i] head i.")
    var dumpLogits: String?

    struct Report: Encodable {
        let images: Int, correct: Int, accuracy: Double, mean_us: Double, p50_us: Double, p99_us: Double
        let full_macs: Int, kernels: String, threads: Int
    }

    func validate() throws {
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1") }
    }

    func run() throws {
        let file = try openBlob(blob)
        let model = file.model
        let interpreter: Interpreter
        do { interpreter = try Interpreter(model: model) } catch {
            printError("error: \(blob): \(error)")
            throw ExitCode.failure
        }
        let input = model.inputTensor
        let set: ImageSet, truth: [UInt8]
        do {
            set = try ImageSet.load(path: images, expect: (Int(input.h), Int(input.w), Int(input.c)))
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
        let rows = 1 + model.heads.count, classes = model.classCount
        var logits = dumpLogits == nil ? [] : [Int8](repeating: 0, count: count * rows * classes)
        var times = [Double](repeating: 0, count: count)
        var correct = 0
        for i in 0..<count {
            let start = sieve_now_ns()
            set.image(i).withUnsafeBytes { interpreter.setInput(pixels: $0) }
            interpreter.run()
            let answer = interpreter.argmax()
            times[i] = Double(sieve_now_ns() - start) / 1000
            if answer == Int(truth[i]) { correct += 1 }
            if dumpLogits != nil {
                let base = i * rows * classes
                for (k, v) in interpreter.output.enumerated() { logits[base + k] = v }
                for (h, head) in model.heads.enumerated() {
                    for (k, v) in interpreter.tensor(Int(head.logitsTensor)).enumerated() { logits[base + (1 + h) * classes + k] = v }
                }
            }
        }
        if let dumpLogits {
            try writeNPY(int8: logits, shape: [count, rows, classes], to: dumpLogits)
        }
        let sorted = times.sorted()
        let report = Report(
            images: count, correct: correct, accuracy: 100 * Double(correct) / Double(count),
            mean_us: times.reduce(0, +) / Double(count), p50_us: sorted[count / 2], p99_us: sorted[min(count - 1, count * 99 / 100)],
            full_macs: model.fullMACs, kernels: "scalar", threads: 1)
        if json { try printJSON(report); return }
        print("\(blob) on \(count) images from \(images)")
        print(String(format: "accuracy: %.2f %% (%d/%d), no early exit", report.accuracy, correct, count))
        print(String(format: "latency: mean %.1f us, p50 %.1f us, p99 %.1f us per image (%@ kernels, 1 thread, %@ MACs)",
                     report.mean_us, report.p50_us, report.p99_us, report.kernels, grouped(report.full_macs)))
    }
}
