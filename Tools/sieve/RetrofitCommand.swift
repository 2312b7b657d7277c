import ArgumentParser
import Foundation
import SieveQuantize

struct RetrofitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retrofit",
        abstract: "Add early-exit heads to a trained ONNX model without heads, fitted on its frozen features.",
        discussion: """
            Runs the float network once over the training images, pools each tap (gap: per-channel mean; \
            grid2, grid4: a 2x2 or 4x4 grid of means), fits a linear head per tap (exclusion: per-class sigmoid BCE with \
            pos_weight 4(K-1); confidence: softmax cross-entropy) to the labels, or with --targets network to the \
            network's own answers (its softmax for confidence heads, its top-1 for exclusion heads; no labels needed), and writes the same model with the heads as \
            extra outputs and the sieve.* metadata, ready for sieve quantize and sieve tune. docs/RETROFIT.md.
            """)

    @Argument(help: "The trained ONNX model, without heads (as sieve quantize takes it).") var model: String
    @Option(help: "Training images: IDX, uint8 .npy, or a folder of class folders (the sorted folder names are the classes).")
    var images: String?
    @Option(help: "Training labels, one class per image: IDX or an integer .npy (not with a folder of class folders; optional with --targets network).")
    var labels: String?
    @Option(help: "auto (every candidate tap), list (print the candidates and exit), or comma-separated ONNX tensor names.")
    var taps: String = "auto"
    @Option(help: "Head objective: \(HeadObjective.allCases.map { $0.rawValue }.joined(separator: " | ")).")
    var kind: String = HeadObjective.exclusion.rawValue
    @Option(help: "Head pooling: \(HeadPooling.allCases.map { $0.rawValue }.joined(separator: " | ")).")
    var head: String = HeadPooling.gap.rawValue
    @Option(help: "What the heads learn to predict: labels (the training labels) or network (the float network's own answer on each image; no labels needed).")
    var targets: String = HeadTargets.labels.rawValue
    @Option(help: "Use at most N training images.") var limit: Int?
    @Option(help: "L2 weight on the (standardised) head weights.") var l2: Float = RetrofitOptions().l2
    @OptionGroup var normalisation: NormalisationOptions
    @Option(name: [.customShort("o"), .long], help: "The ONNX model with heads to write.") var output: String?

    func validate() throws {
        guard HeadObjective(rawValue: kind) != nil else { throw ValidationError("--kind must be exclusion or confidence, not '\(kind)'") }
        guard HeadPooling(rawValue: head) != nil else { throw ValidationError("--head must be \(HeadPooling.allCases.map { $0.rawValue }.joined(separator: ", ")), not '\(head)'") }
        guard HeadTargets(rawValue: targets) != nil else { throw ValidationError("--targets must be labels or network, not '\(targets)'") }
        if let limit = limit { guard limit >= 2 else { throw ValidationError("--limit must be at least 2") } }
        guard l2.isFinite && l2 >= 0 else { throw ValidationError("--l2 must be a non-negative number") }
        guard !taps.isEmpty, !taps.split(separator: ",", omittingEmptySubsequences: false).contains(where: { $0.isEmpty }) else {
            throw ValidationError("--taps must be auto, list, or comma-separated tensor names, not '\(taps)'")
        }
        if taps != "list" {
            guard images != nil else { throw ValidationError("--images is required (the training images the heads are fitted on)") }
            guard output != nil else { throw ValidationError("-o/--output is required (the ONNX model with heads to write)") }
        }
    }

    func run() throws {
        func fail(_ message: String) -> ExitCode {
            FileHandle.standardError.write(Data("error: \(message)\n".utf8))
            return ExitCode.failure
        }
        let inputOptions: InputOptions
        do { inputOptions = try normalisation.inputOptions() } catch { throw fail("\(error)") }
        if taps == "list" {
            do {
                let (candidates, classes) = try retrofitCandidates(onnxPath: model, input: inputOptions)
                print("  tap tensor\(String(repeating: " ", count: max(1, (candidates.map { $0.name.count }.max() ?? 6) - 4)))shape (CxHxW)   MACs before   an exit saves   gap head   grid2 head   grid4 head")
                let width = max(6, candidates.map { $0.name.count }.max() ?? 6)
                for t in candidates {
                    let shape = "\(t.c)x\(t.h)x\(t.w)"
                    let pad = String(repeating: " ", count: width - t.name.count)
                    print("  \(t.name)\(pad)  \(shape.padding(toLength: 14, withPad: " ", startingAt: 0))  \(String(t.macsBefore).leftPadded(11))   \(String(format: "%12.1f %%", 100 * t.savedFraction))   \(String(t.c * classes).leftPadded(8))   \(String(4 * t.c * classes).leftPadded(10))   \(String(16 * t.c * classes).leftPadded(10))")
                }
                if let first = candidates.first { print("backbone: \(first.macsTotal) MACs; head costs in MACs (the fully connected layer, \(classes) classes)") }
                if candidates.isEmpty { print("no candidate taps: name tensors with --taps NAME,NAME") }
            } catch { throw fail("\(error)") }
            return
        }
        let file: OutputFile
        do { file = try OutputFile(path: output!, inputs: [model, images!] + (labels.map { [$0] } ?? [])) } catch { throw fail(error.description) }
        var options = RetrofitOptions()
        options.input = inputOptions
        options.taps = taps == "auto" ? nil : taps.split(separator: ",").map { String($0) }
        options.objective = HeadObjective(rawValue: kind)!
        options.pooling = HeadPooling(rawValue: head)!
        options.targets = HeadTargets(rawValue: targets)!
        options.limit = limit ?? Int.max
        options.l2 = l2
        options.progress = true
        let start = Date()
        let result: RetrofitResult
        do { result = try retrofitModel(onnxPath: model, imagesPath: images!, labelsPath: labels, options: options) } catch {
            file.discard()
            throw fail("\(error)")
        }
        do { try file.commit(result.bytes) } catch { throw fail(error.description) }
        for line in result.report { print(line) }
        print("wrote \(output!): \(result.bytes.count) bytes, \(result.headOutputs.count) \(kind) heads (\(result.headOutputs.joined(separator: ", "))) in \(String(format: "%.1f", Date().timeIntervalSince(start))) s")
    }
}

private extension String {
    func leftPadded(_ n: Int) -> String { count >= n ? self : String(repeating: " ", count: n - count) + self }
}
