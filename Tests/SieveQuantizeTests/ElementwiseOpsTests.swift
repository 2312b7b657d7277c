import SieveTestSupport
import Foundation
import SieveCore
import Testing
@testable import SieveQuantize

/// Concat, Mul, Sigmoid, HardSigmoid, the SiLU pattern and a standalone ReLU through the quantiser:
/// the ops the blob gets, logits close to the float model, and the refusals' messages.
@Suite struct ElementwiseOpsTests {
    /// conv -> SiLU (Sigmoid + Mul) -> squeeze-excitation (GAP, 1x1 conv, HardSigmoid, Mul) ; conv -> ReLU ;
    /// Concat of both -> ReLU (standalone: a table) -> GAP -> Gemm.
    static func model() -> ONNXBuilder {
        var b = ONNXBuilder()
        b.input("x", [1, 3, 8, 8])
        b.random("w1", [8, 3, 3, 3]); b.random("b1", [8])
        b.node("Conv", ["x", "w1", "b1"], ["c1"], [attr("kernel_shape", ints: [3, 3]), attr("pads", ints: [1, 1, 1, 1])])
        b.node("Sigmoid", ["c1"], ["s1"])
        b.node("Mul", ["c1", "s1"], ["silu"])
        b.node("GlobalAveragePool", ["silu"], ["g"])
        b.random("w2", [8, 8, 1, 1]); b.random("b2", [8])
        b.node("Conv", ["g", "w2", "b2"], ["g2"], [attr("kernel_shape", ints: [1, 1])])
        b.node("HardSigmoid", ["g2"], ["hs"], [attr("alpha", float: 1.0 / 6.0), attr("beta", float: 0.5)])
        b.node("Mul", ["hs", "silu"], ["se0"])
        b.node("Clip", ["se0"], ["se"], [attr("min", float: -0.5), attr("max", float: 2)])   // fused into MUL's clamp
        b.random("w3", [4, 3, 3, 3])
        b.node("Conv", ["x", "w3"], ["c3"], [attr("kernel_shape", ints: [3, 3]), attr("pads", ints: [1, 1, 1, 1])])
        b.node("Relu", ["c3"], ["r3"])
        b.node("Concat", ["se", "r3"], ["cat"], [attr("axis", int: 1)])
        b.node("Relu", ["cat"], ["rcat"])
        b.node("GlobalAveragePool", ["rcat"], ["gp"])
        b.node("Flatten", ["gp"], ["f"], [attr("axis", int: 1)])
        b.random("wf", [10, 12]); b.random("bf", [10])
        b.node("Gemm", ["f", "wf", "bf"], ["out"], [attr("transB", int: 1)])
        b.output("out")
        return b
    }

    @Test func squeezeExcitationSiLUAndConcat() throws {
        let c = try quantizeAndCompare(Self.model(), h: 8, w: 8, c: 3)
        let count = { (k: OpKind) in c.opKinds.filter { $0 == k }.count }
        #expect(count(.lut) == 3, "SiLU, HardSigmoid and the ReLU after Concat are tables, the Clip after the SE Mul is its clamp: \(c.opKinds.map { $0.name })")
        #expect(count(.mul) == 1, "the SiLU's Mul is fused into its table, the SE Mul stays: \(c.opKinds.map { $0.name })")
        #expect(count(.concat) == 1)
        #expect(c.finalErrorLSB <= 4, "final logits off by \(c.finalErrorLSB) LSB")
        #expect(c.outputRange > 10 * c.outputScale, "the test would not catch a wrong layout")
    }

    /// Seven convs of different output ranges concatenated (a DenseNet block's last Concat) -> GAP -> Gemm.
    @Test func concatOfSevenBecomesAChainThatRoundsOnce() throws {
        var b = ONNXBuilder()
        b.input("x", [1, 3, 8, 8])
        var parts: [String] = []
        for k in 0..<7 {
            b.random("w\(k)", [2 + k % 3, 3, 1, 1], scale: 0.2 * Float(1 + 3 * k))
            b.node("Conv", ["x", "w\(k)"], ["c\(k)"], [attr("kernel_shape", ints: [1, 1])])
            parts.append("c\(k)")
        }
        b.node("Concat", parts, ["cat"], [attr("axis", int: 1)])
        b.node("GlobalAveragePool", ["cat"], ["g"])
        b.node("Flatten", ["g"], ["f"], [attr("axis", int: 1)])
        b.random("wf", [10, 20]); b.random("bf", [10])
        b.node("Gemm", ["f", "wf", "bf"], ["out"], [attr("transB", int: 1)])
        b.output("out")
        let c = try quantizeAndCompare(b, h: 8, w: 8, c: 3)
        let memory = UnsafeMutableRawBufferPointer.allocate(byteCount: c.result.blob.count, alignment: 64)
        defer { memory.deallocate() }
        memory.copyBytes(from: c.result.blob)
        let model = try Model(bytes: UnsafeRawBufferPointer(memory))
        let links = model.ops.filter { $0.opKind == .concat }
        #expect(links.count == 2, "7 inputs: a link of 4, then the link's output and 3 more: \(c.opKinds.map { $0.name })")
        if links.count == 2 {
            let first = model.tensors[Int(links[0].output)], whole = model.tensors[Int(links[1].output)]
            #expect(first.scale == whole.scale && first.zeroPoint == whole.zeroPoint,
                    "the first link is quantised as the whole concatenation, so the second copies it unchanged")
            #expect(whole.c == 20 && first.c == 2 + 3 + 4 + 2)
        }
        #expect(c.finalErrorLSB <= 4, "final logits off by \(c.finalErrorLSB) LSB")
        #expect(c.outputRange > 10 * c.outputScale, "the test would not catch a wrong layout")
    }

    @Test func identicalQuantisationGivesTheIdentityTable() {
        let q = QParams(scale: 0.0371, zeroPoint: -17)
        #expect(concatTable(input: q, output: q) == (-128...127).map { Int8($0) })
        let other = QParams(scale: 0.05, zeroPoint: 3)
        #expect(concatTable(input: q, output: other) != (-128...127).map { Int8($0) })
    }

    /// A CONCAT's output covers its inputs' ranges; an input whose range covers the others' (ShuffleNet's
    /// pass-through half, the previous unit's output) keeps its quantisation, so it is copied exactly.
    @Test func concatOutputCoversItsInputs() {
        func range(_ p: QParams) -> (Double, Double) {
            (Double(p.scale) * Double(-128 - p.zeroPoint), Double(p.scale) * Double(127 - p.zeroPoint))
        }
        let wide = QParams(min: -1, max: 7), narrow = QParams(min: 0, max: 5)
        #expect(concatParams([narrow, wide]) == wide)
        #expect(concatTable(input: wide, output: concatParams([narrow, wide])) == (-128...127).map { Int8($0) })
        let low = QParams(min: -3, max: 1), high = QParams(min: 0, max: 6)
        let both = concatParams([low, high])
        #expect(both != low && both != high)
        for p in [low, high] {
            let halfStep = Double(both.scale) / 2  // the zero point's rounding moves the range by up to this
            #expect(range(both).0 <= range(p).0 + halfStep && range(both).1 >= range(p).1 - halfStep, "\(range(both)) covers \(range(p))")
        }
        #expect(abs(range(both).1 - range(both).0 - 9) < 0.1, "no wider than the hull: \(range(both))")
    }

    @Test func sigmoidOutputsUseTheWholeUnitRange() {
        let q = Activation.sigmoid.fixedQParams!
        #expect(q.dequantize(-128) == 0 && abs(q.dequantize(127) - 1) < 1e-6)
        let table = Activation.sigmoid.table(input: QParams(scale: 0.1, zeroPoint: 0), output: q)
        #expect(table[128] == 0 || table[128] == -1, "sigmoid(0) = 0.5 lands mid-range (127.5 steps, the f32 scale decides the rounding)")
        #expect(table[0] == -128 && table[255] == 127, "sigmoid(-12.8) ~ 0, sigmoid(12.7) ~ 1")
        #expect(zip(table, table.dropFirst()).allSatisfy { $0 <= $1 }, "a monotone function gives a monotone table")
    }

    private func refusal(_ edit: (inout ONNXBuilder) -> Void) -> String {
        var b = ONNXBuilder()
        b.input("x", [1, 3, 8, 8])
        b.random("w1", [4, 3, 1, 1])
        b.node("Conv", ["x", "w1"], ["c1"], [attr("kernel_shape", ints: [1, 1])])
        edit(&b)
        b.node("GlobalAveragePool", ["y"], ["g"])
        b.node("Flatten", ["g"], ["f"], [attr("axis", int: 1)])
        b.random("wf", [10, 8])
        b.node("Gemm", ["f", "wf"], ["out"], [attr("transB", int: 1)])
        b.output("out")
        return importOutcome(b)
    }

    @Test func refusalsSayWhatIsSupported() {
        let height = refusal { $0.node("Concat", ["c1", "c1"], ["y"], [attr("axis", int: 2)]) }
        #expect(height.contains("along channels"), "\(height)")
        let shapes = refusal { b in
            b.random("w2", [1, 4, 1, 1])
            b.node("Conv", ["c1", "w2"], ["c2"], [attr("kernel_shape", ints: [1, 1])])   // 1x8x8: neither Cx1x1 nor the same
            b.node("Mul", ["c1", "c2"], ["m"])
            b.node("Concat", ["m", "m"], ["y"], [attr("axis", int: 1)])
        }
        #expect(shapes.contains("one value per channel"), "\(shapes)")
        let shuffle = refusal { b in
            b.int64Initializer("groups", [1, 2, 2, 8, 8])
            b.node("Reshape", ["c1", "groups"], ["y"])
        }
        #expect(shuffle.contains("channel shuffle"), "\(shuffle)")
        let single = refusal { b in   // torch.cat([x]) from the legacy exporter, then a Concat of it and x
            b.node("Concat", ["c1"], ["one"], [attr("axis", int: 1)])
            b.node("Concat", ["one", "c1"], ["y"], [attr("axis", int: 1)])
        }
        #expect(single == "imported", "\(single)")
        let fine = refusal { $0.node("Concat", ["c1", "c1"], ["y"], [attr("axis", int: -3)]) }
        #expect(fine == "imported", "\(fine)")
    }
}
