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
        centre-cropped to the model's aspect ratio and resized to its input as sieve-run does), IDX (gzipped or raw), or a uint8 \
        .npy of one image or many ([H,W], [N,H,W], [H,W,C], [C,H,W], [N,H,W,C], [N,C,H,W]) at the model's input size.
        """) var calib: String
    @Option(name: [.customShort("o"), .long], help: "The .sieve blob to write.") var output: String
    @Option(help: "Activation range calibration: \(CalibrationMethod.allCases.map { $0.rawValue }.joined(separator: " | ")).")
    var method: String = QuantizeOptions.defaultMethod.rawValue
    @Option(help: "Calibration images to use: the first N of the file or folder.")
    var calibCount: Int = QuantizeOptions.defaultCount
    @Flag(help: "Skip the empirical bias correction (docs/RESULTS.md, \"Float reference\").")
    var noBiasCorrection = false
    @OptionGroup var normalisation: NormalisationOptions
    @Option(help: "Class names, one per line; as many as the model has classes.")
    var labels: String?
    @Option(help: """
        Weight bits: 8 (per-channel symmetric [-127, 127]) or 7 ([-63, 63]: exact on AVX2's faster u8 x s8 \
        vpmaddubsw route, for a small accuracy cost; docs/KERNELS.md).
        """) var weightBits: String = "8"
    @Option(help: """
        Most scales a conv output read only by an activation table may have, one per group of channels of similar \
        range (1 ... 16; 1: one scale per tensor). Used where a few wide channels would leave the rest a coarse \
        step (docs/MODEL.md, "Table groups").
        """) var lutGroups: Int = 4
    @Option(help: """
        Most scales a conv output read only by a depthwise conv may have, one per group of channels of similar range \
        (1 ... 64; 1: one scale per tensor). Free at run time: the depthwise conv takes each channel's scale into its \
        own multiplier (docs/MODEL.md, "Channel groups").
        """) var depthwiseGroups: Int = 16
    @Option(help: """
        Also write the float model's logits (the ONNX graph as Sieve imports it, run in float32) on the images the SQNR \
        is measured on (the first 200 calibration images, or all of them if --calib-count is lower) as a float32 [N, K] .npy, to check the import against \
        ONNX Runtime or PyTorch on the same pictures.
        """) var dumpFloatLogits: String?

    func validate() throws {
        guard CalibrationMethod(rawValue: method) != nil else {
            throw ValidationError("--method must be one of \(CalibrationMethod.allCases.map { $0.rawValue }.joined(separator: ", ")), not '\(method)'")
        }
        guard calibCount >= 1 else { throw ValidationError("--calib-count must be at least 1") }
        guard let bits = Int(weightBits), QuantizeOptions.weightBitChoices.contains(bits) else {
            throw ValidationError("--weight-bits must be 7 or 8, not '\(weightBits)'")
        }
        guard (1...16).contains(lutGroups) else { throw ValidationError("--lut-groups must be 1 ... 16, not \(lutGroups)") }
        guard (1...64).contains(depthwiseGroups) else { throw ValidationError("--depthwise-groups must be 1 ... 64, not \(depthwiseGroups)") }
    }

    func run() throws {
        func fail(_ message: String) -> ExitCode {
            FileHandle.standardError.write(Data("error: \(message)\n".utf8))
            return ExitCode.failure
        }
        // Check the output and create its temporary file first, so a bad path fails before minutes
        // of calibration, and a failed or interrupted run leaves an existing blob alone.
        let file: OutputFile
        let inputs = [model, calib] + (labels.map { [$0] } ?? [])
        var logitsFile: OutputFile?
        do {
            file = try OutputFile(path: output, inputs: inputs)
            if let path = dumpFloatLogits { logitsFile = try OutputFile(path: path, inputs: inputs + [output]) }
        } catch { throw fail(error.description) }
        var options = QuantizeOptions(method: CalibrationMethod(rawValue: method)!, count: calibCount, progress: true)
        options.biasCorrection = !noBiasCorrection
        options.weightBits = Int(weightBits)!
        options.lutGroups = lutGroups
        options.depthwiseGroups = depthwiseGroups
        let result: QuantizeResult
        do {
            options.input = try normalisation.inputOptions(labels: labels)
            result = try quantizeModel(onnxPath: model, calibrationPath: calib, options: options)
        } catch {
            file.discard()
            logitsFile?.discard()
            throw fail("\(error)")
        }
        do { try file.commit(result.blob) } catch { throw fail(error.description) }
        if let logitsFile {
            let classes = result.floatLogits.count / max(result.sqnrImageCount, 1)
            let npy = npyFile(float32: result.floatLogits, shape: [result.sqnrImageCount, classes])
            do { try logitsFile.commit(npy) } catch { throw fail(error.description) }
        }
        print(result.summary)
        print("wrote \(output): \(result.blob.count) bytes, \(result.opCount) ops, \(result.headCount) heads")
    }
}
