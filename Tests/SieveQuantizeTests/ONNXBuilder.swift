import SieveTestSupport
import Foundation
@testable import SieveQuantize

/// Builds small ONNX models in memory with the generated protobuf types.
struct ONNXBuilder {
    var graph = Onnx_GraphProto()
    var metadata: [(String, String)] = []
    var opset: Int64 = 17
    private var rng = SplitMix(seed: 7)
    private var nodeCount = 0

    init(seed: UInt64 = 7) { rng = SplitMix(seed: seed) }

    mutating func input(_ name: String, _ dims: [Int64], dynamicAxis: Int? = nil) {
        var v = Onnx_ValueInfoProto()
        v.name = name
        var t = Onnx_TypeProto.Tensor()
        t.elemType = 1
        var shape = Onnx_TensorShapeProto()
        for (axis, d) in dims.enumerated() {
            var dim = Onnx_TensorShapeProto.Dimension()
            if axis == dynamicAxis { dim.dimParam = "N" } else { dim.dimValue = d }
            shape.dim.append(dim)
        }
        t.shape = shape
        v.type.tensorType = t
        graph.input.append(v)
    }

    mutating func output(_ name: String) {
        var v = Onnx_ValueInfoProto()
        v.name = name
        graph.output.append(v)
    }

    /// A float initializer in raw_data (or float_data with `asFloatData`).
    mutating func initializer(_ name: String, _ dims: [Int], _ values: [Float], asFloatData: Bool = false) {
        precondition(values.count == dims.reduce(1, *))
        var t = Onnx_TensorProto()
        t.name = name
        t.dims = dims.map { Int64($0) }
        t.dataType = 1
        if asFloatData { t.floatData = values } else { t.rawData = values.withUnsafeBytes { Data($0) } }
        graph.initializer.append(t)
    }

    /// A random float initializer, uniform in [-scale, scale].
    mutating func random(_ name: String, _ dims: [Int], scale: Float = 0.5) {
        let n = dims.reduce(1, *)
        initializer(name, dims, (0..<n).map { _ in rng.uniform() * 2 * scale - scale })
    }

    mutating func int64Initializer(_ name: String, _ values: [Int64]) {
        var t = Onnx_TensorProto()
        t.name = name
        t.dims = [Int64(values.count)]
        t.dataType = 7
        t.int64Data = values
        graph.initializer.append(t)
    }

    mutating func node(_ op: String, _ inputs: [String], _ outputs: [String], name: String? = nil, _ attributes: [Onnx_AttributeProto] = []) {
        var n = Onnx_NodeProto()
        n.opType = op
        n.input = inputs
        n.output = outputs
        n.name = name ?? "\(op)_\(nodeCount)"
        n.attribute = attributes
        nodeCount += 1
        graph.node.append(n)
    }

    func bytes() -> [UInt8] {
        var m = Onnx_ModelProto()
        m.irVersion = 8
        m.producerName = "sieve-tests"
        var op = Onnx_OperatorSetIdProto()
        op.version = opset
        m.opsetImport = [op]
        var g = graph
        g.name = "test"
        m.graph = g
        for (k, v) in metadata {
            var e = Onnx_StringStringEntryProto()
            e.key = k; e.value = v
            m.metadataProps.append(e)
        }
        return [UInt8](try! m.serializedBytes() as [UInt8])
    }

    func write(_ path: String) {
        try! Data(bytes()).write(to: URL(fileURLWithPath: path))
    }
}

func attr(_ name: String, ints: [Int64]) -> Onnx_AttributeProto {
    var a = Onnx_AttributeProto(); a.name = name; a.type = .ints; a.ints = ints; return a
}
func attr(_ name: String, int: Int64) -> Onnx_AttributeProto {
    var a = Onnx_AttributeProto(); a.name = name; a.type = .int; a.i = int; return a
}
func attr(_ name: String, float: Float) -> Onnx_AttributeProto {
    var a = Onnx_AttributeProto(); a.name = name; a.type = .float; a.f = float; return a
}
func attr(_ name: String, string: String) -> Onnx_AttributeProto {
    var a = Onnx_AttributeProto(); a.name = name; a.type = .string; a.s = Data(string.utf8); return a
}

/// A scratch directory for one test, removed when the value is released.
final class TempDir {
    let path: String
    init() {
        path = NSTemporaryDirectory() + "sieve-quant-tests-" + UUID().uuidString
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
    func file(_ name: String) -> String { path + "/" + name }
}

/// Raw IDX bytes of `count` images h x w (x c when c > 1), smooth random patterns so
/// activations have structure.
func idxImages(count: Int, h: Int, w: Int, c: Int = 1, seed: UInt64 = 3) -> [UInt8] {
    var rng = SplitMix(seed: seed)
    var bytes: [UInt8] = [0, 0, 8, c == 1 ? 3 : 4]
    for d in (c == 1 ? [count, h, w] : [count, h, w, c]) {
        bytes += [UInt8(d >> 24 & 255), UInt8(d >> 16 & 255), UInt8(d >> 8 & 255), UInt8(d & 255)]
    }
    for _ in 0..<count {
        let fx = rng.uniform() * 1.5, fy = rng.uniform() * 1.5, phase = rng.uniform() * 6
        for y in 0..<h {
            for x in 0..<w {
                for ch in 0..<c {
                    let v = 0.5 + 0.4 * sin(Float(x) * fx + Float(y) * fy + phase + Float(ch)) + (rng.uniform() - 0.5) * 0.2
                    bytes.append(UInt8(max(0, min(255, v * 255))))
                }
            }
        }
    }
    return bytes
}

extension QuantizeOptions {
    /// These options with the command line's `--norm`/`--mean`/`--std`/`--labels` set to `input`.
    func input(_ input: InputOptions) -> QuantizeOptions {
        var o = self
        o.input = input
        return o
    }
}

/// `--norm none` for a test model that does not declare its normalisation itself.
func normalisation(_ builder: ONNXBuilder) -> InputOptions {
    builder.metadata.contains { $0.0 == "sieve.input_mean" || $0.0 == "sieve.input_std" } ? InputOptions() : .none
}
