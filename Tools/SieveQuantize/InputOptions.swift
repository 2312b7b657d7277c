import Foundation

/// What the user says about the model's input on the command line (`--mean/--std/--norm/--labels`):
/// the alternative to the `sieve.*` metadata props, and winning over them (docs/MODEL.md).
public struct InputOptions: Equatable {
    /// Per-channel mean and std in 0..1 pixel units (input = (pixel/255 - mean) / std); one value
    /// applies to every channel.
    public var mean: [Float]?
    public var std: [Float]?
    /// Class names, one per class.
    public var labels: [String]?
    /// The input's height and width, for a model whose graph input leaves them dynamic.
    public var height: Int?, width: Int?

    public init(mean: [Float]? = nil, std: [Float]? = nil, labels: [String]? = nil, height: Int? = nil, width: Int? = nil) {
        self.mean = mean; self.std = std; self.labels = labels; self.height = height; self.width = width
    }

    /// torchvision's ImageNet normalisation.
    public static let imagenet = InputOptions(mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225])
    /// input = pixel/255.
    public static let none = InputOptions(mean: [0], std: [1])

    /// `--norm NAME`: imagenet or none.
    public static func named(_ name: String) -> InputOptions? {
        switch name {
        case "imagenet": return .imagenet
        case "none": return InputOptions.none
        default: return nil
        }
    }

    var declaresNormalisation: Bool { mean != nil || std != nil }
}

/// The importer's notes (what it folded or dropped), one `note:` line each on stderr.
func printImportNotes(_ notes: [String]) {
    for note in notes { FileHandle.standardError.write(Data("note: \(note)\n".utf8)) }
}
