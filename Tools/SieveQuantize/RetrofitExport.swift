import Foundation
import SwiftProtobuf

/// A fitted head ready to be written: where it reads, how it pools, its weights and kind.
struct FittedHead {
    var tap: Tap
    var pooling: HeadPooling
    var kind: HeadKindName
    var head: LinearHead
}

/// Writes the model with exit heads added: the original ModelProto, every node, initializer,
/// field and metadata prop kept (fields the importer does not read included), external data made
/// inline so the file stands alone, and per head a pool, a Flatten and a Gemm reading its tap,
/// a new graph output, listed in `sieve.heads` (docs/MODEL.md, "Exit heads").
struct RetrofitExporter {
    let path: String
    /// Metadata props to set (replacing an entry with the same key).
    var metadata: [(String, String)] = []

    func export(_ heads: [FittedHead], finalOutput: String) throws(QuantizeError) -> (bytes: [UInt8], outputs: [String]) {
        let bytes = try readFile(path)
        var model: Onnx_ModelProto
        do { model = try Onnx_ModelProto(serializedBytes: bytes) } catch {
            throw .notONNX(path: path, reason: "not a protobuf ModelProto (\(error))")
        }
        var external = ExternalDataLoader(modelPath: path)
        try external.inline(&model)

        var taken = Set(model.graph.initializer.map { $0.name } + model.graph.input.map { $0.name } + model.graph.output.map { $0.name })
        for node in model.graph.node { taken.formUnion(node.output); taken.insert(node.name) }
        func fresh(_ base: String) -> String {
            var name = base, n = 1
            while taken.contains(name) { name = "\(base)_\(n)"; n += 1 }
            taken.insert(name)
            return name
        }
        var outputs: [String] = []
        for (i, h) in heads.enumerated() {
            let prefix = "sieve_retrofit/head\(i)"
            let pooled = fresh(prefix + "/pool"), flat = fresh(prefix + "/flatten"), w = fresh(prefix + "/fc.weight"), b = fresh(prefix + "/fc.bias")
            let output = fresh("head\(i)")
            var pool = node(h.pooling == .gap ? "GlobalAveragePool" : "AveragePool", [h.tap.name], pooled, prefix + "/pool")
            if h.pooling != .gap {
                let (kh, sh) = HeadPooling.gridWindow(h.tap.h, cells: h.pooling.cells), (kw, sw) = HeadPooling.gridWindow(h.tap.w, cells: h.pooling.cells)
                pool.attribute = [ints("kernel_shape", [kh, kw]), ints("strides", [sh, sw])]
            }
            var flatten = node("Flatten", [pooled], flat, prefix + "/flatten")
            flatten.attribute = [int("axis", 1)]
            var gemm = node("Gemm", [flat, w, b], output, prefix + "/fc")
            gemm.attribute = [int("transB", 1)]
            model.graph.node += [pool, flatten, gemm]
            model.graph.initializer += [tensor(w, [h.head.classes, h.head.features], h.head.weights), tensor(b, [h.head.classes], h.head.bias)]
            var info = Onnx_ValueInfoProto()
            info.name = output
            info.type.tensorType.elemType = Int32(Onnx_TensorProto.DataType.float.rawValue)
            for d in [1, h.head.classes] {
                var dim = Onnx_TensorShapeProto.Dimension()
                dim.dimValue = Int64(d)
                info.type.tensorType.shape.dim.append(dim)
            }
            model.graph.output.append(info)
            outputs.append(output)
        }
        let list = zip(heads, outputs).map { "{\"output\": \"\($1)\", \"kind\": \"\($0.kind.rawValue)\"}" }.joined(separator: ", ")
        var props = metadata + [("sieve.heads", "[\(list)]")]
        if !model.metadataProps.contains(where: { $0.key == "sieve.final_output" }) { props.append(("sieve.final_output", finalOutput)) }
        for (key, value) in props {
            model.metadataProps.removeAll { $0.key == key }
            var entry = Onnx_StringStringEntryProto()
            entry.key = key; entry.value = value
            model.metadataProps.append(entry)
        }
        do { return (try model.serializedBytes(), outputs) } catch {
            throw .internalError(reason: "cannot serialise the model with heads: \(error)")
        }
    }

    private func node(_ op: String, _ inputs: [String], _ output: String, _ name: String) -> Onnx_NodeProto {
        var n = Onnx_NodeProto()
        n.opType = op; n.input = inputs; n.output = [output]; n.name = name
        return n
    }

    private func int(_ name: String, _ v: Int) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto()
        a.name = name; a.type = .int; a.i = Int64(v)
        return a
    }

    private func ints(_ name: String, _ v: [Int]) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto()
        a.name = name; a.type = .ints; a.ints = v.map { Int64($0) }
        return a
    }

    private func tensor(_ name: String, _ dims: [Int], _ values: [Float]) -> Onnx_TensorProto {
        var t = Onnx_TensorProto()
        t.name = name
        t.dims = dims.map { Int64($0) }
        t.dataType = Int32(Onnx_TensorProto.DataType.float.rawValue)
        var raw = Data(capacity: values.count * 4)
        for v in values { withUnsafeBytes(of: v.bitPattern.littleEndian) { raw.append(contentsOf: $0) } }
        t.rawData = raw
        return t
    }
}
