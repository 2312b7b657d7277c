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
            normalisation, final output, heads) is used when present.
            """)

    @Argument(help: "The ONNX model (static [1,C,H,W] input).") var model: String
    @Option(help: "Calibration images: IDX (gzipped or raw) or .npy, uint8, the model's input size.") var calib: String
    @Option(name: [.customShort("o"), .long], help: "The .sieve blob to write.") var output: String
    @Option(help: "Activation range calibration: \(CalibrationMethod.allCases.map { $0.rawValue }.joined(separator: ", ")) (default: \(QuantizeOptions.defaultMethod.rawValue)).")
    var method: String = QuantizeOptions.defaultMethod.rawValue
    @Option(help: "Calibration images to use, the first N of the file (default: \(QuantizeOptions.defaultCount)).")
    var calibCount: Int = QuantizeOptions.defaultCount

    func validate() throws {
        guard CalibrationMethod(rawValue: method) != nil else {
            throw ValidationError("--method must be one of \(CalibrationMethod.allCases.map { $0.rawValue }.joined(separator: ", ")), not '\(method)'")
        }
        guard calibCount >= 1 else { throw ValidationError("--calib-count must be at least 1") }
    }

    func run() throws {
        let options = QuantizeOptions(method: CalibrationMethod(rawValue: method)!, count: calibCount, progress: true)
        let result: QuantizeResult
        do {
            result = try quantizeModel(onnxPath: model, calibrationPath: calib, options: options)
        } catch {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode.failure
        }
        do {
            try Data(result.blob).write(to: URL(fileURLWithPath: output))
        } catch {
            FileHandle.standardError.write(Data("error: cannot write \(output): \((error as NSError).localizedDescription)\n".utf8))
            throw ExitCode.failure
        }
        print(result.summary)
        print("wrote \(output): \(result.blob.count) bytes, \(result.opCount) ops, \(result.headCount) heads")
    }
}
