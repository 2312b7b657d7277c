/// Everything the quantiser refuses, with a one-line description that names the file, ONNX
/// node, attribute or layer at fault.
public enum QuantizeError: Error, Equatable, CustomStringConvertible {
    /// The file cannot be read at all.
    case cannotRead(path: String, reason: String)
    /// The file is not an ONNX model (random bytes, text, a Sieve blob, no graph...).
    case notONNX(path: String, reason: String)
    /// An op type the importer does not translate, with what to do about it when that is known.
    case unsupportedOp(opType: String, node: String, advice: String = "")
    /// A supported op with an attribute value Sieve cannot run.
    case unsupportedAttribute(opType: String, node: String, attribute: String, reason: String)
    /// A supported op used in a way Sieve cannot express (an unfusable ReLU, a non-constant weight...).
    case unsupportedNode(opType: String, node: String, reason: String)
    /// Something wrong with the graph as a whole: its input, outputs, heads or initializers.
    case invalidModel(reason: String)
    /// A `sieve.*` metadata entry that does not parse or does not fit the graph.
    case invalidMetadata(key: String, reason: String)
    /// A calibration data file that cannot be used.
    case invalidCalibrationData(path: String, reason: String)
    /// An image file for evaluation or tuning that cannot be used.
    case invalidImageData(path: String, reason: String)
    /// A label file (for evaluation) that cannot be used.
    case invalidLabelData(path: String, reason: String)
    /// A layer whose quantisation parameters fall outside what the format can express.
    case quantization(layer: String, reason: String)
    /// A quantiser option outside what it accepts (QuantizeOptions).
    case invalidOption(name: String, reason: String)
    /// The blob the quantiser wrote does not load: a bug in the quantiser.
    case internalError(reason: String)

    public var description: String {
        switch self {
        case let .cannotRead(path, reason): return "cannot read \(path): \(reason)"
        case let .notONNX(path, reason): return "\(path) is not an ONNX model: \(reason)"
        case let .unsupportedOp(opType, node, advice):
            return "unsupported ONNX op '\(opType)' (node '\(node)')" + (advice.isEmpty ? "" : ": \(advice)")
        case let .unsupportedAttribute(opType, node, attribute, reason):
            return "unsupported attribute '\(attribute)' of ONNX op '\(opType)' (node '\(node)'): \(reason)"
        case let .unsupportedNode(opType, node, reason): return "cannot translate ONNX op '\(opType)' (node '\(node)'): \(reason)"
        case let .invalidModel(reason): return "invalid model: \(reason)"
        case let .invalidMetadata(key, reason): return "invalid metadata '\(key)': \(reason)"
        case let .invalidCalibrationData(path, reason): return "calibration data \(path): \(reason)"
        case let .invalidImageData(path, reason): return "images \(path): \(reason)"
        case let .invalidLabelData(path, reason): return "labels \(path): \(reason)"
        case let .quantization(layer, reason): return "cannot quantise layer '\(layer)': \(reason)"
        case let .invalidOption(name, reason): return "\(name): \(reason)"
        case let .internalError(reason): return "internal error (quantiser bug): \(reason)"
        }
    }
}
