import ArgumentParser
import Foundation
import SieveQuantize

/// --mean, --std, --norm: how pixels become the model's input, for the commands that run the float
/// model on images (`sieve quantize`, `sieve retrofit`).
struct NormalisationOptions: ParsableArguments {
    @Option(help: "Per-channel input mean in 0..1 pixel units, e.g. 0.485,0.456,0.406 (input = (pixel/255 - mean) / std).")
    var mean: String?
    @Option(help: "Per-channel input std in 0..1 pixel units, e.g. 0.229,0.224,0.225.")
    var std: String?
    @Option(help: "Input normalisation by name: imagenet (torchvision's mean/std) or none (input = pixel/255).")
    var norm: String?
    @Option(help: "The input's width and height, WxH (e.g. 224x224), for a model exported with a dynamic height and width.")
    var inputSize: String?

    func validate() throws {
        if let norm = norm {
            guard InputOptions.named(norm) != nil else { throw ValidationError("--norm must be imagenet or none, not '\(norm)'") }
            guard mean == nil && std == nil else { throw ValidationError("--norm cannot be combined with --mean/--std: give one or the other") }
        }
        if let text = inputSize, Self.size(text) == nil {
            throw ValidationError("--input-size must be WxH with sides of 1 to 65535 pixels (e.g. 224x224), not '\(text)'")
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

    /// The options as the quantiser takes them, with the class names of `labels` (a file) when given.
    func inputOptions(labels: String? = nil) throws(QuantizeError) -> InputOptions {
        var input = norm.flatMap { InputOptions.named($0) } ?? InputOptions()
        if let m = mean, let s = std { input.mean = Self.numbers(m); input.std = Self.numbers(s) }
        if let path = labels { input.labels = try ClassLabelFile.load(path: path) }
        if let (width, height) = inputSize.flatMap(Self.size) { input.width = width; input.height = height }
        return input
    }

    private static func size(_ text: String) -> (Int, Int)? {
        let parts = text.split(separator: "x", omittingEmptySubsequences: false)
        guard parts.count == 2, let w = Int(parts[0]), let h = Int(parts[1]), (1...65535).contains(w), (1...65535).contains(h) else { return nil }
        return (w, h)
    }

    private static func numbers(_ text: String) -> [Float]? {
        var out: [Float] = []
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            guard let v = Float(part.trimmingCharacters(in: .whitespaces)), v.isFinite else { return nil }
            out.append(v)
        }
        return out
    }
}
