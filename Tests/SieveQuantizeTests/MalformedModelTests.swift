import Foundation
import SieveTestSupport
import Testing
@testable import SieveQuantize

/// A corpus of broken ONNX models: each gets one clear error from the quantiser, never a crash,
/// a hang or an attempt to allocate what a hostile header declares.
@Suite struct MalformedModelTests {
    @Test func missingInitializer() {
        var b = modelWith("Relu")
        b.graph.initializer.removeAll { $0.name == "w" }
        let e = quantizeError(b)?.description ?? "accepted"
        #expect(e == "invalid model: node 'Conv_0' reads 'w', which no earlier node writes", "\(e)")
    }

    @Test func wrongDataType() {
        var b = modelWith("Relu")
        let i = b.graph.initializer.firstIndex { $0.name == "w" }!
        b.graph.initializer[i].dataType = 7  // INT64
        let e = quantizeError(b)?.description ?? "accepted"
        #expect(e == "invalid model: initializer 'w' has data type 7; float32 is needed here", "\(e)")
    }

    @Test func graphCycle() {
        var b = ONNXBuilder()
        b.input("x", [1, 1, 8, 8])
        b.node("Relu", ["x2"], ["x1"], name: "a")
        b.node("Relu", ["x1"], ["x2"], name: "b")
        b.output("x2")
        let e = quantizeError(b)?.description ?? "accepted"
        #expect(e.hasPrefix("invalid model: node 'a' reads 'x2', which no earlier node writes"), "\(e)")
    }

    /// ISSUE-14 item 13: a label with a NUL or newline is named without echoing the raw byte.
    @Test func labelWithControlBytesIsNotEchoed() {
        var b = modelWith("Relu")
        b.metadata = [("sieve.labels", "[\"a\", \"b\\u0000c\\nd\", \"e\"]")]
        let e = quantizeError(b)?.description ?? "accepted"
        #expect(e == "invalid metadata 'sieve.labels': label 1 'b?c?d' contains a control character (shown as ?), quote or backslash", "\(e)")
        #expect(!e.utf8.contains(0) && !e.utf8.contains(10))
    }

    /// ISSUE-14 item 9: products of declared dimensions that overflow are errors, not traps.
    @Test func dimensionProductsThatOverflow() {
        var b = modelWith("Relu")
        let i = b.graph.initializer.firstIndex { $0.name == "w" }!
        b.graph.initializer[i].dims = [1 << 28, 1 << 28, 1 << 28, 1 << 28]
        b.graph.initializer[i].rawData = Data()
        b.graph.initializer[i].floatData = []
        let e = quantizeError(b)?.description ?? "accepted"
        #expect(e.hasSuffix("above the 2^28 values an initializer may hold"), "\(e)")
        #expect(checkedProduct([1 << 62, 4]) == nil && checkedProduct([-1, 4]) == nil && checkedProduct([3, 5]) == 15)
    }

    @Test func hugeDeclaredDimension() {
        var b = modelWith("Relu")
        b.graph.input = []
        b.input("x", [1, 1, 100_000, 100_000])
        let e = quantizeError(b)?.description ?? "accepted"
        #expect(e == "invalid model: graph input 'x' is 1x100000x100000; Sieve tensors hold at most 65535 pixels a side and 2^26 values", "\(e)")
    }

    @Test func fileCutShort() throws {
        let dir = TempDir()
        modelWith("Relu").write(dir.file("whole.onnx"))
        let whole = try Data(contentsOf: URL(fileURLWithPath: dir.file("whole.onnx")))
        try Data(idxImages(count: 2, h: 8, w: 8)).write(to: URL(fileURLWithPath: dir.file("c.idx")))
        for cut in [1, 7, whole.count / 3, whole.count / 2, whole.count - 5] {
            let path = dir.file("cut-\(cut).onnx")
            try whole.prefix(cut).write(to: URL(fileURLWithPath: path))
            do {
                _ = try quantizeModel(onnxPath: path, calibrationPath: dir.file("c.idx"), options: QuantizeOptions(count: 2))
                Issue.record("a model cut at \(cut) of \(whole.count) bytes was accepted")
            } catch {
                #expect(error.description == "\(path) is not an ONNX model: not a protobuf ModelProto (truncated)", "\(error)")
            }
        }
    }
}
