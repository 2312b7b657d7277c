import SieveTestSupport
import Foundation
import SieveCore
import Testing
@testable import SieveQuantize

/// What `quantizeModel` throws for `builder`'s model on a small valid calibration file.
func quantizeError(_ builder: ONNXBuilder, h: Int = 8, w: Int = 8) -> QuantizeError? {
    let dir = TempDir()
    builder.write(dir.file("m.onnx"))
    try! Data(idxImages(count: 4, h: h, w: w)).write(to: URL(fileURLWithPath: dir.file("c.idx")))
    do {
        _ = try quantizeModel(onnxPath: dir.file("m.onnx"), calibrationPath: dir.file("c.idx"), options: QuantizeOptions(count: 4).input(.none))
        return nil
    } catch {
        return error
    }
}

/// "imported" when `builder`'s graph imports, else the error's description (the line a user reads).
func importOutcome(_ builder: ONNXBuilder) -> String {
    do {
        _ = try ONNXImporter.importGraph(Onnx_ModelProto(serializedBytes: builder.bytes()), options: .none)
        return "imported"
    } catch let error as QuantizeError {
        return error.description
    } catch {
        return "\(error)"
    }
}

/// conv -> `op` -> GAP -> Flatten -> Gemm, input [1,1,8,8].
func modelWith(_ op: String, _ attributes: [Onnx_AttributeProto] = [], name: String? = nil, extraInputs: [String] = []) -> ONNXBuilder {
    var b = ONNXBuilder()
    b.input("x", [1, 1, 8, 8])
    b.random("w", [2, 1, 3, 3])
    b.node("Conv", ["x", "w"], ["c"], [attr("pads", ints: [1, 1, 1, 1])])
    b.node(op, ["c"] + extraInputs, ["y"], name: name, attributes)
    b.node("GlobalAveragePool", ["y"], ["g"])
    b.node("Flatten", ["g"], ["f"])
    b.random("fw", [3, 2])
    b.node("Gemm", ["f", "fw"], ["logits"], [attr("transB", int: 1)])
    b.output("logits")
    return b
}

@Suite struct ErrorTests {
    @Test func unsupportedOpNamesOpAndNode() {
        let e = quantizeError(modelWith("Softmax", name: "Softmax_12"))
        #expect(e?.description == "unsupported ONNX op 'Softmax' (node 'Softmax_12'): only a Softmax over the class logits at the output is supported (it is dropped there); remove it elsewhere")
    }

    @Test func unsupportedAttributesNameTheAttribute() {
        var b = ONNXBuilder()
        b.input("x", [1, 1, 8, 8])
        b.random("w", [2, 1, 3, 3])
        // Dilated convs import as their dense kernels, up to the format's 64x64: a 3x3 at dilation 40 spans 81.
        b.node("Conv", ["x", "w"], ["logits0"], name: "dilated", [attr("dilations", ints: [2, 40])])
        b.output("logits0")
        let e = quantizeError(b)
        #expect(e?.description.contains("'dilations'") == true && e?.description.contains("node 'dilated'") == true, "\(String(describing: e))")

        let pool = quantizeError(modelWith("MaxPool", [attr("kernel_shape", ints: [3, 3]), attr("pads", ints: [3, 3, 3, 3])], name: "mp"))
        #expect(pool?.description.contains("'pads'") == true && pool?.description.contains("node 'mp'") == true, "\(String(describing: pool))")

        // ceil_mode 1 is extra end padding, except where count_include_pad 1 would change the extra windows' divisor.
        let ceil = quantizeError(modelWith("AveragePool", [attr("kernel_shape", ints: [3, 3]), attr("strides", ints: [2, 2]), attr("ceil_mode", int: 1),
                                                           attr("count_include_pad", int: 1)], name: "cm"))
        #expect(ceil?.description.contains("'ceil_mode'") == true, "\(String(describing: ceil))")
    }

    @Test func unfusableReluIsAnError() {
        // ReLU on the graph input has no op to fuse into (after a pool it is a clamp table: ImportPatternTests).
        var b = ONNXBuilder()
        b.input("x", [1, 1, 8, 8])
        b.node("Relu", ["x"], ["r0"], name: "late_relu")
        b.random("w", [2, 1, 3, 3])
        b.node("Conv", ["r0", "w"], ["r"])
        b.node("GlobalAveragePool", ["r"], ["g"])
        b.node("Flatten", ["g"], ["f"])
        b.random("fw", [3, 2])
        b.node("Gemm", ["f", "fw"], ["logits"], [attr("transB", int: 1)])
        b.output("logits")
        let e = quantizeError(b)
        #expect(e?.description.hasPrefix("cannot translate ONNX op 'Relu' (node 'late_relu')") == true, "\(String(describing: e))")
    }

    @Test func dynamicInputDimension() {
        // A dynamic batch axis is batch 1 (ImportPatternTests); a dynamic image size is refused.
        var b = modelWith("Relu")
        b.graph.input = []
        b.input("x", [1, 1, 8, 8], dynamicAxis: 2)
        let e = quantizeError(b)
        #expect(e?.description == "invalid model: graph input 'x' has a dynamic dimension 'N' on axis 2; give its size with --input-size WxH, or export with a static [1,C,H,W] shape")
        var zero = modelWith("Relu")
        zero.graph.input = []
        zero.input("x", [1, 1, 0, 8])
        #expect(quantizeError(zero)?.description.contains("missing or zero dimension on axis 2") == true)
    }

    /// export_params=False leaves the weights as graph inputs with no initializers: the message says so.
    @Test func weightsAsGraphInputs() {
        var b = ONNXBuilder()
        b.input("x", [1, 1, 8, 8])
        b.input("w", [2, 1, 3, 3])
        b.node("Conv", ["x", "w"], ["c"])
        b.output("c")
        #expect(quantizeError(b)?.description == "invalid model: the graph has 2 inputs ('x', 'w'); Sieve models take one image (weights as graph inputs: export with export_params=True, the default)")
    }

    @Test func notAnONNXFile() throws {
        let dir = TempDir()
        var rng = SplitMix(seed: 9)
        let cases: [(String, [UInt8])] = [
            ("random.bin", (0..<4096).map { _ in UInt8(truncatingIfNeeded: rng.next()) }),
            ("text.onnx", Array("hello, this is not a model\n".utf8)),
            ("empty.onnx", []),
            ("model.sieve", Array("SIEVEBLB".utf8) + [UInt8](repeating: 0, count: 120)),
        ]
        try Data(idxImages(count: 2, h: 8, w: 8)).write(to: URL(fileURLWithPath: dir.file("c.idx")))
        for (name, bytes) in cases {
            let path = dir.file(name)
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            #expect(throws: QuantizeError.self) { _ = try FloatModel(onnxPath: path) }
            do {
                _ = try quantizeModel(onnxPath: path, calibrationPath: dir.file("c.idx"), options: QuantizeOptions(count: 2))
                Issue.record("\(name) was accepted")
            } catch {
                #expect(error.description.hasPrefix("\(path) is not an ONNX model: "), "\(error)")
            }
        }
        do {
            _ = try FloatModel(onnxPath: dir.file("missing.onnx"))
        } catch {
            #expect(error.description == "cannot read \(dir.file("missing.onnx")): no such file")
        }
    }

    @Test func headsMustBeSeparable() {
        // A head output that is the graph input's direct descendant through nothing but the backbone.
        var b = QuantizeTests.convBNReLUModel()
        b.output("r1")
        b.metadata = [("sieve.heads", "[{\"output\": \"r1\", \"kind\": \"exclusion\"}]")]
        let e = quantizeError(b)
        #expect(e?.description.contains("head output 'r1'") == true, "\(String(describing: e))")
        var kind = QuantizeTests.convBNReLUModel()
        kind.metadata = [("sieve.heads", "[{\"output\": \"head0\", \"kind\": \"maybe\"}]")]
        #expect(quantizeError(kind)?.description.contains("kind 'maybe'") == true)
    }
}

@Suite struct ImageLoaderTests {
    func load(_ bytes: [UInt8], name: String = "d.idx", expect: (Int, Int, Int)? = nil) -> Result<ImageSet, QuantizeError> {
        let dir = TempDir()
        let path = dir.file(name)
        try! Data(bytes).write(to: URL(fileURLWithPath: path))
        do { return .success(try ImageSet.load(path: path, expect: expect)) } catch { return .failure(error) }
    }

    func message(_ r: Result<ImageSet, QuantizeError>) -> String {
        if case .failure(let e) = r { return e.description }
        return "(loaded)"
    }

    @Test func idxRawAndGzipped() throws {
        let raw = idxImages(count: 5, h: 4, w: 3)
        let a = try load(raw).get(), b = try load(gzipCompress(raw), name: "d.idx.gz").get()
        #expect(a.count == 5 && a.height == 4 && a.width == 3 && a.channels == 1)
        #expect(a.pixels == b.pixels && a.pixels == Array(raw[16...]))
        let rgb = try load(idxImages(count: 2, h: 4, w: 3, c: 3), expect: (4, 3, 3)).get()
        #expect(rgb.channels == 3 && rgb.imageSize == 36)
    }

    @Test func idxErrors() {
        let raw = idxImages(count: 5, h: 4, w: 3)
        #expect(message(load([0x50, 0x4B, 3, 4] + raw)).contains("not an IDX or .npy file"))
        #expect(message(load(Array(raw.dropLast(10)))).contains("truncated"))
        #expect(message(load([0, 0, 0x0D, 3] + raw[4...])).contains("is not unsigned byte"))
        #expect(message(load(raw, expect: (28, 28, 1))).contains("images are 4x3x1 (HxWxC), the model takes 28x28x1"))
        #expect(message(load(Array(gzipCompress(raw).dropLast(30)), name: "t.gz")).contains("gzip"))
        // The file name is in every message.
        #expect(message(load(Array(raw.dropLast(10)), name: "short.idx")).contains("short.idx"))
    }

    func npy(_ shape: [Int], dtype: String = "|u1", data: [UInt8]) -> [UInt8] {
        var header = "{'descr': '\(dtype)', 'fortran_order': False, 'shape': (\(shape.map(String.init).joined(separator: ", "))\(shape.count == 1 ? "," : "")), }"
        while (10 + header.utf8.count + 1) % 64 != 0 { header += " " }
        header += "\n"
        let n = header.utf8.count
        return [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(n & 255), UInt8(n >> 8)] + Array(header.utf8) + data
    }

    @Test func npyLayouts() throws {
        let hw = try load(npy([2, 4, 3], data: Array(0..<24)), name: "a.npy").get()
        #expect(hw.count == 2 && hw.height == 4 && hw.width == 3 && hw.channels == 1 && hw.pixels == Array(0..<24))
        // [N,C,H,W] is transposed to HWC.
        let nchw = try load(npy([1, 2, 2, 3], data: Array(0..<12)), name: "b.npy", expect: (2, 3, 2)).get()
        #expect(nchw.channels == 2 && nchw.pixels == [0, 6, 1, 7, 2, 8, 3, 9, 4, 10, 5, 11])
        let nhwc = try load(npy([1, 2, 3, 2], data: Array(0..<12)), name: "c.npy", expect: (2, 3, 2)).get()
        #expect(nhwc.pixels == Array(0..<12))
        #expect(message(load(npy([2, 4, 3], dtype: "<f4", data: Array(0..<96)), name: "f.npy")).contains("dtype '<f4' is not uint8"))
        #expect(message(load(npy([2, 4, 3], data: Array(0..<20)), name: "t.npy")).contains("truncated"))
        #expect(message(load(npy([24], data: Array(0..<24)), name: "1d.npy")).contains("1 dimensions"))
    }
}
