import ArgumentParser
import Foundation
import SieveCore
import SieveQuantize
import SieveTune

struct TuneCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tune",
        abstract: "Pick per-head exit thresholds on a validation split for an accuracy budget and write them into a blob.",
        discussion: """
            Runs the int8 model once over the validation images with every head, caches the logits, then \
            searches thresholds by replaying the runtime's exit rule over the cache. The budget is measured \
            from the no-exit int8 accuracy on the same images.
            """)

    @Argument(help: "The .sieve blob.") var blob: String
    @Option(help: "Validation images (IDX or .npy). Default: the Fashion-MNIST training images, with --indices.")
    var images = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"
    @Option(help: "Validation labels.") var labels = "/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz"
    @Option(help: "Text file of image indices to use, one per line (default: the saved validation split bundled with sieve; 'all' for every image).")
    var indices: String?
    @Option(help: "Accuracy budget: points below the no-exit int8 accuracy.") var maxDrop = 0.5
    @Option(help: "Exit rule: \(ExitRuleChoice.allCases.map(\.rawValue).joined(separator: ", ")).") var rule = ExitRuleChoice.combined.rawValue
    @Option(help: "Search: \(SearchMethod.allCases.map(\.rawValue).joined(separator: ", ")).") var search = SearchMethod.marginal.rawValue
    @Option(help: ArgumentHelp("Standard errors of the accuracy change to hold in reserve when judging a setting against the budget (0: the raw validation accuracy).",
                               discussion: "The standard error is sqrt(lost + gained) / images, from the images whose correctness the exits change."))
    var safety = 1.645
    @Flag(help: "Also run every other rule and search and print them side by side.") var compare = false
    @Option(name: [.customShort("o"), .long], help: "Write the blob with the chosen thresholds here.") var output: String?
    @Flag(help: "Print one JSON object.") var json = false

    func validate() throws {
        guard ExitRuleChoice(rawValue: rule) != nil else { throw ValidationError("--rule must be one of \(ExitRuleChoice.allCases.map(\.rawValue))") }
        guard SearchMethod(rawValue: search) != nil else { throw ValidationError("--search must be one of \(SearchMethod.allCases.map(\.rawValue))") }
        guard maxDrop >= 0 && maxDrop < 100 else { throw ValidationError("--max-drop must be in [0, 100)") }
        guard safety >= 0 && safety <= 10 else { throw ValidationError("--safety must be in [0, 10]") }
    }

    struct Row: Encodable {
        let rule: String, search: String, accuracy: Double, judged_accuracy: Double, lost: Int, gained: Int, mean_macs: Double, reduction: Double
        let exits: [Int], thresholds: [Float], exit_confidence: [Float]
    }

    func run() throws {
        let indices = try pathOrBundled(self.indices, "fashion-mnist-val-indices.txt", option: "--indices")
        // The output checked (a regular file or new, no input) and its temporary file made before the search.
        var outputFile: OutputFile? = nil
        if let output {
            do { outputFile = try OutputFile(path: output, inputs: [blob, images, labels, indices]) } catch {
                printError("error: \(error.description)")
                throw ExitCode.failure
            }
        }
        let file = try openBlob(blob)
        let model = file.model
        let (set, truth, chosen) = try loadSplit(model, indices: indices)
        let start = Date()
        let cache = try ExitCache(model: model, images: set, labels: truth, indices: chosen, progress: true)
        let cacheSeconds = Date().timeIntervalSince(start)
        let simulator = ExitSimulator(model: model, cache: cache)
        var searcher = ThresholdSearch(simulator: simulator, target: 0)
        let reference = searcher.referenceAccuracy()
        searcher = ThresholdSearch(simulator: simulator, target: reference - maxDrop, safety: safety)
        let searchStart = Date()
        let primary = (ExitRuleChoice(rawValue: rule)!, SearchMethod(rawValue: search)!)
        var combos = [primary]
        if compare {
            for r in ExitRuleChoice.allCases { for s in SearchMethod.allCases where (r, s) != primary && !(r == .combined && s == .paper) { combos.append((r, s)) } }
        }
        var rows: [Row] = []
        var chosenSetting: [HeadRecord] = []
        for (r, s) in combos {
            let setting = searcher.search(r, s)
            if rows.isEmpty { chosenSetting = setting }
            let o = simulator.evaluate(setting)
            rows.append(Row(rule: r.rawValue, search: s.rawValue, accuracy: o.accuracy, judged_accuracy: searcher.judged(o), lost: o.lost, gained: o.gained, mean_macs: o.meanMACs,
                            reduction: 100 * (1 - o.meanMACs / Double(simulator.fullMACs)), exits: o.exits,
                            thresholds: setting.map(\.threshold), exit_confidence: setting.map(\.exitConfidence)))
        }
        let searchSeconds = Date().timeIntervalSince(searchStart)
        if let outputFile {
            let note = "exit thresholds: \(rule) rule, \(search) search, max drop \(maxDrop) points, safety \(safety), \(chosen.count) images from \(images)\n"
            let tuned = blobWithHeads(model, heads: chosenSetting, provenance: note)
            do { try outputFile.commit(tuned) } catch {
                printError("error: \(error.description)")
                throw ExitCode.failure
            }
        }
        if json {
            struct Report: Encodable { let images: Int, reference_accuracy: Double, target_accuracy: Double, safety: Double, full_macs: Int, results: [Row] }
            try printJSON(Report(images: chosen.count, reference_accuracy: reference, target_accuracy: reference - maxDrop, safety: safety,
                                 full_macs: simulator.fullMACs, results: rows))
            return
        }
        print(String(format: "validation: %d images, no-exit int8 accuracy %.2f %%, target %.2f %% (--max-drop %.2f) less %g standard errors (--safety)",
                     chosen.count, reference, reference - maxDrop, maxDrop, safety))
        print(String(format: "cached head logits in %.1f s; %d rule evaluations in %.1f s", cacheSeconds, searcher.evaluations, searchSeconds))
        print("")
        print(pad("rule", 12) + pad("search", 12) + lpad("accuracy", 9) + lpad("judged", 8) + lpad("mean MACs", 13) + lpad("saved", 8) + "  exits per head, final")
        for r in rows {
            print(pad(r.rule, 12) + pad(r.search, 12) + lpad(String(format: "%.2f", r.accuracy), 9) + lpad(String(format: "%.2f", r.judged_accuracy), 8)
                  + lpad(grouped(Int(r.mean_macs)), 13)
                  + lpad(String(format: "%.1f%%", r.reduction), 8) + "  " + r.exits.map(String.init).joined(separator: " "))
        }
        print("")
        let first = rows[0]
        print("thresholds (\(first.rule), \(first.search)): " + first.thresholds.map { String(format: "%.2f", $0) }.joined(separator: " ")
              + (first.rule == "combined" ? "; exit confidence: " + first.exit_confidence.map { String(format: "%.3f", $0) }.joined(separator: " ") : ""))
        if let output { print("wrote \(output)") }
    }

    func loadSplit(_ model: Model, indices: String) throws -> (ImageSet, [UInt8], [Int]) {
        let input = model.inputTensor
        do {
            let set = try ImageSet.load(path: images, expect: (Int(input.h), Int(input.w), Int(input.c)), calibration: false)
            let truth = try LabelSet.load(path: labels)
            guard truth.count >= set.count else { throw ValidationError("\(labels): \(truth.count) labels for \(set.count) images") }
            if let bad = truth[0..<set.count].firstIndex(where: { Int($0) >= model.classCount }) {
                throw ValidationError("\(labels): label \(truth[bad]) of image \(bad) is not a class of the model (0...\(model.classCount - 1))")
            }
            if indices == "all" { return (set, truth, Array(0..<set.count)) }
            guard let text = try? String(contentsOfFile: indices, encoding: .utf8) else { throw ValidationError("cannot read --indices \(indices)") }
            let chosen = text.split(whereSeparator: \.isNewline).compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard !chosen.isEmpty, chosen.allSatisfy({ $0 >= 0 && $0 < set.count }) else {
                throw ValidationError("\(indices): indices must be 0..<\(set.count), one per line")
            }
            return (set, truth, chosen)
        } catch let error as QuantizeError {
            printError("error: \(error)")
            throw ExitCode.failure
        }
    }
}
