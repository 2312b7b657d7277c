import ArgumentParser
import Foundation
import SieveQuantize

struct QuantizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quantize",
        abstract: "Quantise an ONNX model to an int8 .sieve blob, calibrating activations on real images.",
        discussion: """
            Folds batch norm, fuses ReLU/ReLU6, quantises weights per output channel (symmetric int8) and \
            activations per tensor (asymmetric int8, ranges from the calibration images), then prints each \
            layer's SQNR against the float model. Metadata written by Tools/train/train.py (labels, input \
            normalisation, final output, heads) is used when present; --mean/--std/--norm/--labels say the \
            same on the command line and win over it. A model that does not say how its input is \
            normalised (metadata, options or Sub/Div on the input) is refused. docs/MODEL.md lists what \
            models are accepted.
            """)

    @Argument(help: "The ONNX model (static [1,C,H,W] input).") var model: String
    @Option(help: """
        Calibration images: a folder of .jpg/.jpeg/.png files (the first --calib-count by name, \
        centre-cropped and resized to the model's input as sieve-run does), IDX (gzipped or raw), or a uint8 \
        .npy of one image or many ([H,W], [N,H,W], [H,W,C], [C,H,W], [N,H,W,C], [N,C,H,W]) at the model's input size.
        """) var calib: String
    @Option(name: [.customShort("o"), .long], help: "The .sieve blob to write.") var output: String
    @Option(help: "Activation range calibration: \(CalibrationMethod.allCases.map { $0.rawValue }.joined(separator: " | ")).")
    var method: String = QuantizeOptions.defaultMethod.rawValue
    @Option(help: "Calibration images to use: the first N of the file or folder.")
    var calibCount: Int = QuantizeOptions.defaultCount
    @Flag(help: "Skip the empirical bias correction (docs/RESULTS.md, \"Float reference\").")
    var noBiasCorrection = false
    @Option(help: "Per-channel input mean in 0..1 pixel units, e.g. 0.485,0.456,0.406 (input = (pixel/255 - mean) / std).")
    var mean: String?
    @Option(help: "Per-channel input std in 0..1 pixel units, e.g. 0.229,0.224,0.225.")
    var std: String?
    @Option(help: "Input normalisation by name: imagenet (torchvision's mean/std) or none (input = pixel/255).")
    var norm: String?
    @Option(help: "Class names, one per line; as many as the model has classes.")
    var labels: String?
    @Option(help: """
        Weight bits: 8 (per-channel symmetric [-127, 127]) or 7 ([-63, 63]: exact on AVX2's faster u8 x s8 \
        vpmaddubsw route, for a small accuracy cost; docs/KERNELS.md).
        """) var weightBits: String = "8"

    func validate() throws {
        guard CalibrationMethod(rawValue: method) != nil else {
            throw ValidationError("--method must be one of \(CalibrationMethod.allCases.map { $0.rawValue }.joined(separator: ", ")), not '\(method)'")
        }
        guard calibCount >= 1 else { throw ValidationError("--calib-count must be at least 1") }
        guard let bits = Int(weightBits), QuantizeOptions.weightBitChoices.contains(bits) else {
            throw ValidationError("--weight-bits must be 7 or 8, not '\(weightBits)'")
        }
        try Self.validateNormalisation(mean: mean, std: std, norm: norm)
    }

    /// --norm, --mean, --std: shared with `sieve retrofit`.
    static func validateNormalisation(mean: String?, std: String?, norm: String?) throws {
        if let norm = norm {
            guard InputOptions.named(norm) != nil else { throw ValidationError("--norm must be imagenet or none, not '\(norm)'") }
            guard mean == nil && std == nil else { throw ValidationError("--norm cannot be combined with --mean/--std: give one or the other") }
        }
        guard (mean == nil) == (std == nil) else { throw ValidationError("--mean and --std go together: give both (or --norm imagenet|none)") }
        for (name, text) in [("--mean", mean), ("--std", std)] {
            guard let text = text else { continue }
            guard let values = Self.numbers(text), !values.isEmpty, values.count <= 4 else {
                throw ValidationError("\(name) must be 1 to 4 comma-separated numbers in 0..1 pixel units (e.g. 0.485,0.456,0.406), not '\(text)'")
            }
            if name == "--std" { guard values.allSatisfy({ $0 > 0 }) else { throw ValidationError("--std values must be positive, not '\(text)'") } }
        }
    }

    static func numbers(_ text: String) -> [Float]? {
        var out: [Float] = []
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            guard let v = Float(part.trimmingCharacters(in: .whitespaces)), v.isFinite else { return nil }
            out.append(v)
        }
        return out
    }

    func inputOptions() throws(QuantizeError) -> InputOptions {
        try Self.inputOptions(mean: mean, std: std, norm: norm, labels: labels)
    }

    static func inputOptions(mean: String?, std: String?, norm: String?, labels: String?) throws(QuantizeError) -> InputOptions {
        var input = norm.flatMap { InputOptions.named($0) } ?? InputOptions()
        if let m = mean, let s = std { input.mean = Self.numbers(m); input.std = Self.numbers(s) }
        if let path = labels { input.labels = try ClassLabelFile.load(path: path) }
        return input
    }

    func run() throws {
        func fail(_ message: String) -> ExitCode {
            FileHandle.standardError.write(Data("error: \(message)\n".utf8))
            return ExitCode.failure
        }
        // Check the output and create its temporary file first, so a bad path fails before minutes
        // of calibration, and a failed or interrupted run leaves an existing blob alone.
        let file: OutputFile
        do { file = try OutputFile(path: output, inputs: [model, calib] + (labels.map { [$0] } ?? [])) } catch { throw fail(error.description) }
        var options = QuantizeOptions(method: CalibrationMethod(rawValue: method)!, count: calibCount, progress: true)
        options.biasCorrection = !noBiasCorrection
        options.weightBits = Int(weightBits)!
        let result: QuantizeResult
        do {
            options.input = try inputOptions()
            result = try quantizeModel(onnxPath: model, calibrationPath: calib, options: options)
        } catch {
            file.discard()
            throw fail("\(error)")
        }
        do { try file.commit(result.blob) } catch { throw fail(error.description) }
        print(result.summary)
        print("wrote \(output): \(result.blob.count) bytes, \(result.opCount) ops, \(result.headCount) heads")
    }
}
