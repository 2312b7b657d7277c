/// The quantiser's graph: the ONNX model after import and simplification (Identity/Dropout
/// dropped, BatchNormalization folded, ReLU/Clip fused, Flatten/Reshape turned into views),
/// in the op set Sieve runs. Float, NCHW, batch 1.

/// Channels, height, width of an activation (batch is always 1).
struct Shape: Equatable, CustomStringConvertible {
    var c: Int, h: Int, w: Int
    var count: Int { c * h * w }
    var description: String { "\(c)x\(h)x\(w)" }
}

struct ConvParams {
    /// `[cout][cin/groups][kh][kw]`, as ONNX stores it.
    var weights: [Float]
    var bias: [Float]
    var cout: Int, cinPerGroup: Int, kh: Int, kw: Int
    var strideH: Int, strideW: Int
    var padTop: Int, padLeft: Int, padBottom: Int, padRight: Int
    var groups: Int
}

extension ConvParams {
    /// y = scale * x + shift per channel: a 1x1 depthwise conv.
    static func perChannel(scale: [Float], shift: [Float]) -> ConvParams {
        ConvParams(weights: scale, bias: shift, cout: scale.count, cinPerGroup: 1, kh: 1, kw: 1, strideH: 1, strideW: 1,
                   padTop: 0, padLeft: 0, padBottom: 0, padRight: 0, groups: scale.count)
    }
}

struct FCParams {
    /// `[cout][k]`, `k` indexing the input flattened in ONNX's (NCHW) order.
    var weights: [Float]
    var bias: [Float]
    var cout: Int, k: Int
}

struct PoolParams {
    var kh: Int, kw: Int, strideH: Int, strideW: Int
    var padTop: Int, padLeft: Int, padBottom: Int, padRight: Int
}

enum LayerKind {
    case conv(ConvParams)
    case fullyConnected(FCParams)
    case maxPool(PoolParams)
    case averagePool(PoolParams)
    case globalAveragePool
    case add
    /// Inputs concatenated along channels (2...4 inputs).
    case concat
    /// inputs[0] times inputs[1], the second the same shape or Cx1x1 (squeeze-excitation).
    case mul
    /// An elementwise function of one input, a 256-entry table in int8 (Activation.swift).
    case lut(Activation)
    /// Channels of the input in the order of `index` (channel shuffles, Split, Slice).
    case gather([Int])

    var isPool: Bool {
        switch self {
        case .maxPool, .averagePool, .globalAveragePool: return true
        default: return false
        }
    }

    /// Pools and GATHER: the output keeps the input's quantisation (nothing to calibrate, no clamp).
    var keepsInputQuantisation: Bool {
        if case .gather = self { return true }
        return isPool
    }
}

struct Layer {
    /// The ONNX node this layer came from (the Conv, Gemm, ... that the others fused into).
    var node: String
    var opType: String
    var kind: LayerKind
    /// Value ids: one input, two for ADD and MUL, 2...4 for CONCAT.
    var inputs: [Int]
    var output: Int
    /// A link of a CONCAT of more than 4 inputs, split into a chain: its output takes this value's
    /// (the whole concatenation's) quantisation, so the next link copies it through unchanged.
    var quantisedAs: Int? = nil
    /// Output clamp in real values (ReLU: 0...inf, ReLU6: 0...6).
    var clampMin: Float = -.infinity
    var clampMax: Float = .infinity
    /// Index in ONNX node order, for scheduling.
    var order: Int

    var hasClamp: Bool { clampMin > -.infinity || clampMax < .infinity }
}

struct Value {
    /// The ONNX tensor name (after fusion: the name of the last fused node's output).
    var name: String
    var shape: Shape
    /// The layer writing it; nil for the graph input.
    var producer: Int?
}

struct HeadSpec {
    var kind: HeadKindName
    var output: Int
    var tap: Int = -1
    /// Index of the head's first layer in the scheduled `layers` and its layer count.
    var firstLayer: Int = 0
    var layerCount: Int = 0
}

enum HeadKindName: String { case exclusion, confidence }

struct Graph {
    var values: [Value] = []
    var layers: [Layer] = []
    var input: Int = 0
    var final: Int = 0
    var heads: [HeadSpec] = []
    var labels: [String] = []
    var mean: [Float] = []
    var std: [Float] = []
    var pixelScale: Float = 1.0 / 255.0
    /// What the importer folded or dropped that the user should know about (stderr).
    var notes: [String] = []

    var inputShape: Shape { values[input].shape }
    var classCount: Int { values[final].shape.count }

    /// The float value of input channel `c` for pixel `p` (docs/FORMAT.md, MODEL).
    func normalized(_ p: Int, channel c: Int) -> Float {
        Float((Double(p) * Double(pixelScale) - Double(mean[c])) / Double(std[c]))
    }
}
