import SieveTestSupport
import Foundation
import SieveCore
import Testing
@testable import SieveQuantize

/// ShuffleNet's channel shuffle (Reshape-Transpose-Reshape) and the Split/Slice after it, through
/// the importer and the quantiser: which GATHERs the graph gets, their channel order, and the refusals.
@Suite struct ChannelGatherTests {
    /// conv (8 ch) -> shuffle (2 groups) -> cut in two (`cut`) -> a, b; b -> 1x1 conv -> ReLU;
    /// Concat(a, relu) -> shuffle (4 groups) -> GAP -> Gemm.
    static func model(cut: (inout ONNXBuilder) -> Void) -> ONNXBuilder {
        var b = ONNXBuilder()
        b.input("x", [1, 3, 6, 6])
        b.random("w1", [8, 3, 3, 3])
        b.node("Conv", ["x", "w1"], ["c1"], [attr("kernel_shape", ints: [3, 3]), attr("pads", ints: [1, 1, 1, 1])])
        shuffle(&b, "c1", "s1", groups: 2, channels: 8)
        cut(&b)
        b.random("w2", [4, 4, 1, 1], scale: 3)
        b.node("Conv", ["b", "w2"], ["c2"], [attr("kernel_shape", ints: [1, 1])])
        b.node("Relu", ["c2"], ["r2"])
        b.node("Concat", ["a", "r2"], ["cat"], [attr("axis", int: 1)])
        shuffle(&b, "cat", "s2", groups: 4, channels: 8)
        b.node("GlobalAveragePool", ["s2"], ["g"])
        b.node("Flatten", ["g"], ["f"], [attr("axis", int: 1)])
        b.random("wf", [10, 8])
        b.node("Gemm", ["f", "wf"], ["out"], [attr("transB", int: 1)])
        b.output("out")
        return b
    }

    static func shuffle(_ b: inout ONNXBuilder, _ x: String, _ y: String, groups: Int64, channels: Int64) {
        b.int64Initializer("\(y).grouped", [1, groups, channels / groups, 6, 6])
        b.int64Initializer("\(y).flat", [1, -1, 6, 6])
        b.node("Reshape", [x, "\(y).grouped"], ["\(y).view"])
        b.node("Transpose", ["\(y).view"], ["\(y).t"], [attr("perm", ints: [0, 2, 1, 3, 4])])
        b.node("Reshape", ["\(y).t", "\(y).flat"], [y])
    }

    /// The default exporter's Split (opset 18: num_outputs).
    static func split(_ b: inout ONNXBuilder) {
        b.node("Split", ["s1"], ["a", "b"], [attr("axis", int: 1), attr("num_outputs", int: 2)])
    }

    /// The legacy exporter's two Slices (opset 10+: starts, ends, axes as inputs; "to the end" as INT64_MAX).
    static func slices(_ b: inout ONNXBuilder) {
        b.int64Initializer("zero", [0]); b.int64Initializer("four", [4]); b.int64Initializer("end", [Int64.max])
        b.int64Initializer("axis", [1])
        b.node("Slice", ["s1", "zero", "four", "axis"], ["a"])
        b.node("Slice", ["s1", "four", "end", "axis"], ["b"])
    }

    static func gathers(_ b: ONNXBuilder) throws -> [[Int]] {
        let graph = try ONNXImporter.importGraph(Onnx_ModelProto(serializedBytes: b.bytes()), options: .none)
        return graph.layers.compactMap { if case .gather(let index) = $0.kind { return index } else { return nil } }
    }

    @Test func shuffleThenCutGathersEachPartFromTheShufflesInput() throws {
        // Shuffled channel j of 8 in 2 groups is channel (j % 2) * 4 + j / 2: 0 4 1 5 | 2 6 3 7.
        // The shuffle itself is never stored: each half gathers from the conv. Then 4 groups of 2.
        let expected = [[0, 4, 1, 5], [2, 6, 3, 7], [0, 2, 4, 6, 1, 3, 5, 7]]
        #expect(try Self.gathers(Self.model(cut: Self.split)) == expected)
        #expect(try Self.gathers(Self.model(cut: Self.slices)) == expected)
    }

    @Test func quantisedShuffleMatchesTheFloatModel() throws {
        for cut in [Self.split, Self.slices] {
            let c = try quantizeAndCompare(Self.model(cut: cut), h: 6, w: 6, c: 3)
            #expect(c.opKinds.filter { $0 == .gather }.count == 3, "\(c.opKinds.map { $0.name })")
            #expect(c.finalErrorLSB <= 4, "final logits off by \(c.finalErrorLSB) LSB")
            #expect(c.outputRange > 10 * c.outputScale, "the test would not catch a wrong order")
        }
    }

    static func refusal(_ cut: (inout ONNXBuilder) -> Void) -> String { importOutcome(model(cut: cut)) }

    @Test func refusalsSayWhatIsSupported() {
        let crop = Self.refusal { b in
            b.int64Initializer("zero", [0]); b.int64Initializer("three", [3]); b.int64Initializer("h", [2])
            b.node("Slice", ["s1", "zero", "three", "h"], ["a"])
            b.node("Slice", ["s1", "zero", "three", "h"], ["b"])
        }
        #expect(crop.contains("cropping height or width is not"), "\(crop)")
        let uneven = Self.refusal { b in
            b.int64Initializer("sizes", [3, 4])
            b.node("Split", ["s1", "sizes"], ["a", "b"], [attr("axis", int: 1)])
        }
        #expect(uneven.contains("do not cut 8 channels into 2"), "\(uneven)")
        let wrongPerm = Self.refusal { b in
            b.int64Initializer("g", [1, 2, 4, 6, 6])
            b.node("Reshape", ["c1", "g"], ["v"])
            b.node("Transpose", ["v"], ["t"], [attr("perm", ints: [0, 1, 2, 4, 3])])
        }
        #expect(wrongPerm.contains("only swapping the two channel axes"), "\(wrongPerm)")
        let nhwc = Self.refusal { b in
            b.node("Transpose", ["c1"], ["a"], [attr("perm", ints: [0, 2, 3, 1])])
        }
        #expect(nhwc.contains("not supported outside a channel shuffle"), "\(nhwc)")
        // The default exporter's uneven AdaptiveAvgPool2d (VGG at 240x320): the image to the front, then GatherND.
        let adaptive = Self.refusal { b in
            b.node("Transpose", ["c1"], ["hwnc"], [attr("perm", ints: [2, 3, 0, 1])])
            b.int64Initializer("windows", [0, 0])
            b.node("GatherND", ["hwnc", "windows"], ["w"])
        }
        #expect(adaptive.contains("AdaptiveAvgPool2d whose output size does not divide its input"), "\(adaptive)")
    }
}
