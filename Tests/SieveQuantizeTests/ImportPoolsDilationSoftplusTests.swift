import SieveTestSupport
import Foundation
import Testing
@testable import SieveQuantize

/// ReduceMax over H and W (a whole-image max pool) and pooled [1, K] vectors side by side, dilated convs
/// (the dense kernels they sample), and the Softplus threshold the default exporter writes.
@Suite struct ImportPoolsDilationSoftplusTests {
    /// x -> Conv(2, pads 1) -> Relu "y" -> `pool` -> Gemm(3) on the [1, K] vector "f".
    func pooledClassifier(features: Int = 2, _ pool: (inout ONNXBuilder) -> Void) -> ONNXBuilder {
        var b = ONNXBuilder()
        b.opset = 18
        b.input("x", [1, 1, 8, 8])
        b.random("w", [2, 1, 3, 3])
        b.node("Conv", ["x", "w"], ["c"], [attr("pads", ints: [1, 1, 1, 1])])
        b.node("Relu", ["c"], ["y"])
        pool(&b)
        b.random("fw", [3, features])
        b.node("Gemm", ["f", "fw"], ["logits"], [attr("transB", int: 1)])
        b.output("logits")
        return b
    }

    /// `op` over H and W of "y", keepdims 0, or 1 and a Flatten, into "f".
    func reducedClassifier(_ op: String, keep: Int64) -> ONNXBuilder {
        pooledClassifier { b in
            b.int64Initializer("axes", [2, 3])
            b.node(op, ["y", "axes"], [keep == 1 ? "r" : "f"], [attr("keepdims", int: keep)])
            if keep == 1 { b.node("Flatten", ["r"], ["f"]) }
        }
    }

    @Test func reduceMaxIsAWholeImageMaxPool() throws {
        for keep in [Int64(0), 1] {
            let r = try importAndRun(reducedClassifier("ReduceMax", keep: keep))
            let relu = Array(r.executor.value(r.graph.layers[0].output))
            let pooled = Array(r.executor.value(r.graph.layers[1].output))
            #expect(pooled == [relu[0..<64].max()!, relu[64..<128].max()!], "keepdims \(keep)")
            guard case let .maxPool(p) = r.graph.layers[1].kind else { Issue.record("not a max pool"); continue }
            #expect([p.kh, p.kw, p.strideH, p.strideW] as [Int] == [8, 8, 8, 8])
        }
        // Windows are at most 64x64, and only H and W reduce.
        var big = ONNXBuilder()
        big.opset = 18
        big.input("x", [1, 1, 65, 65])
        big.int64Initializer("axes", [2, 3])
        big.node("ReduceMax", ["x", "axes"], ["m"])
        big.output("m")
        #expect(importError(big).contains("at most 64x64"))
        let channels = pooledClassifier(features: 2) { b in
            b.int64Initializer("axes", [1])
            b.node("ReduceMax", ["y", "axes"], ["f"])
        }
        #expect(importError(channels).contains("only the maximum over H and W"))
    }

    /// x.sum((2, 3)): the global average pool times H W, absorbed by the Gemm after it.
    @Test func reduceSumIsTheAveragePoolTimesThePixels() throws {
        for keep in [Int64(0), 1] {
            let b = reducedClassifier("ReduceSum", keep: keep)
            let r = try importAndRun(b)
            #expect(r.graph.layers.count == 3, "conv, pool, and the Gemm that absorbed the scale")
            let relu = Array(r.executor.value(r.graph.layers[0].output))
            let fw = initializerValues(b, "fw")
            let sums = [relu[0..<64].reduce(0, +), relu[64..<128].reduce(0, +)]
            let expected = (0..<3).map { o in fw[2 * o] * sums[0] + fw[2 * o + 1] * sums[1] }
            #expect(maxDifference(Array(r.executor.value(r.graph.final)), expected) < 1e-4, "keepdims \(keep)")
        }
    }

    /// torch.cat([x.mean((2, 3)), x.amax((2, 3))], 1): [1, K] vectors joined along K are joined along channels.
    @Test func pooledVectorsConcatenate() throws {
        let b = pooledClassifier(features: 4) { b in
            b.int64Initializer("axes", [2, 3])
            b.node("ReduceMean", ["y", "axes"], ["mean"], [attr("keepdims", int: 0)])
            b.node("ReduceMax", ["y", "axes"], ["max"], [attr("keepdims", int: 0)])
            b.node("Concat", ["mean", "max"], ["f"], [attr("axis", int: 1)])
        }
        let r = try importAndRun(b)
        let relu = Array(r.executor.value(r.graph.layers[0].output))
        let joined = Array(r.executor.value(r.graph.layers[3].output))
        let means = [relu[0..<64].reduce(0, +) / 64, relu[64..<128].reduce(0, +) / 64]
        #expect(maxDifference(Array(joined[0..<2]), means) < 1e-6)
        #expect(Array(joined[2..<4]) == [relu[0..<64].max()!, relu[64..<128].max()!])
        // A flattened image is not a channel vector: its order is (c, h, w).
        let flat = pooledClassifier(features: 256) { b in
            b.node("Flatten", ["y"], ["a"])
            b.node("Flatten", ["c"], ["d"])
            b.node("Concat", ["a", "d"], ["f"], [attr("axis", int: 1)])
        }
        #expect(importError(flat).contains("only for pooled vectors"))
    }

    @Test func dilatedConvIsTheDenseKernelItSamples() throws {
        let weights = (0..<18).map { Float($0 % 7) - 3 }
        let b = classifier(yChannels: 2) { b in
            b.initializer("w", [2, 1, 3, 3], weights)
            b.node("Conv", ["x", "w"], ["y"], name: "dil", [attr("pads", ints: [2, 2, 2, 2]), attr("dilations", ints: [2, 2])])
        }
        let r = try importAndRun(b)
        #expect(r.graph.notes.contains { $0.contains("conv 'dil' has dilation [2, 2]: imported as the dense 5x5 kernel") })
        // The dilated conv, computed directly on the normalised input.
        let direct = referenceConv(Array(r.executor.value(r.graph.input)), c: 1, h: 8, w: 8, weights: weights, bias: [0, 0], cout: 2, k: 3, pad: 2,
                                   dilation: 2)
        #expect(maxDifference(Array(r.executor.value(r.graph.layers[0].output)), direct) < 1e-4)
        var wide = b
        wide.graph.node[0].attribute[1] = attr("dilations", ints: [1, 40])
        #expect(importError(wide).contains("spans 3x81"))
    }

    /// x -> Conv -> Softplus, Greater(conv, t), Where(greater, conv, softplus) -> GAP -> Gemm; with a `beta`
    /// as the default exporter writes nn.Softplus(beta, threshold): s = Mul(conv, beta), Greater(s, t),
    /// Where(greater, conv, Div(Softplus(s), beta)).
    func softplusClassifier(threshold: Float, beta: Float? = nil, whereInputs: [String] = ["gt", "c", "sp"], greaterReadBy: String? = nil) -> ONNXBuilder {
        classifier(yChannels: 2) { b in
            b.random("w", [2, 1, 3, 3])
            b.node("Conv", ["x", "w"], ["c"], [attr("pads", ints: [1, 1, 1, 1])])
            b.initializer("t", [], [threshold])
            if let beta {
                b.initializer("beta", [], [beta])
                b.node("Mul", ["c", "beta"], ["s"])
                b.node("Softplus", ["s"], ["sps"])
                b.node("Div", ["sps", "beta"], ["sp"])
                b.node("Greater", ["s", "t"], ["gt"])
            } else {
                b.node("Softplus", ["c"], ["sp"])
                b.node("Greater", ["c", "t"], ["gt"])
            }
            if let op = greaterReadBy { b.node(op, ["gt"], ["other"]) }
            b.node("Where", whereInputs, ["y"])
        }
    }

    @Test func softplusThresholdIsOneTable() throws {
        for beta: Float? in [nil, 2] {
            let r = try importAndRun(softplusClassifier(threshold: 0.5, beta: beta))
            let tables = r.graph.layers.filter { if case .lut = $0.kind { return true } else { return false } }
            #expect(r.graph.layers.count == 4 && tables.count == 1, "beta \(String(describing: beta))")
            let b = beta ?? 1
            #expect(tables.first.map { if case .lut(.softplus(beta: b, threshold: 0.5)) = $0.kind { return true } else { return false } } == true)
            let conv = Array(r.executor.value(r.graph.layers[0].output)), out = Array(r.executor.value(r.graph.layers[1].output))
            let expected = conv.map { b * $0 > 0.5 ? $0 : Float(log1p(exp(Double(b * $0))) / Double(b)) }
            #expect(maxDifference(out, expected) < 1e-6)
            #expect(conv.contains { b * $0 > 0.5 } && conv.contains { b * $0 < 0.5 }, "both sides of the threshold are tried")
        }
        // Any other use of the comparison is refused, saying which pattern is supported (the pattern is
        // recognised before the import, so the refusal names the Greater that is not part of it).
        for beta: Float? in [nil, 2] {
            let swapped = importError(softplusClassifier(threshold: 20, beta: beta, whereInputs: ["gt", "sp", "c"]))
            #expect(swapped.contains("'Greater' (node 'Greater_") && swapped.contains("supported only in the Softplus threshold"), "\(swapped)")
            #expect(importError(softplusClassifier(threshold: 20, beta: beta, greaterReadBy: "Relu"))
                .contains("a Greater and a Where are supported only in the Softplus threshold the default exporter writes"))
        }
    }

    /// An explicit Pad before an AveragePool counts its zeros (count_include_pad); with ceil_mode's extra
    /// windows that is refused, and the message names the Pad, not an attribute the model never set.
    @Test func ceilModeAveragePoolAfterAnExplicitPadSaysWhy() {
        let b = classifier { b in
            b.random("w", [4, 1, 3, 3]); b.node("Conv", ["x", "w"], ["c"])  // 6x6
            b.int64Initializer("p", [0, 0, 1, 1, 0, 0, 0, 0]); b.node("Pad", ["c", "p"], ["cp"])  // 7x7: ceil mode adds a window
            b.node("AveragePool", ["cp"], ["y"], [attr("kernel_shape", ints: [2, 2]), attr("strides", ints: [2, 2]), attr("ceil_mode", int: 1)])
        }
        let message = importError(b)
        #expect(message.contains("after an explicit Pad"))
        #expect(!message.contains("with count_include_pad 1"))
    }

    /// x -> Conv -> GELU as the legacy exporter writes it (Div by sqrt 2 and Erf, or with `tanh` the cubic
    /// inside a Tanh; then Add 1, Mul by the conv, Mul by `half`), operands in the order given -> GAP -> Gemm.
    func legacyGeluClassifier(tanh: Bool = false, half: Float = 0.5, swapped: Bool = false) -> ONNXBuilder {
        classifier(yChannels: 2) { b in
            b.random("w", [2, 1, 3, 3])
            b.node("Conv", ["x", "w"], ["c"], [attr("pads", ints: [1, 1, 1, 1])])
            b.initializer("one", [], [1]); b.initializer("half", [], [half])
            if tanh {
                b.initializer("k", [], [0.7978845608]); b.initializer("cubic", [], [0.044715])
                b.node("Mul", ["c", "c"], ["c2"])
                b.node("Mul", swapped ? ["c2", "c"] : ["c", "c2"], ["c3"])
                b.node("Mul", swapped ? ["c3", "cubic"] : ["cubic", "c3"], ["t3"])
                b.node("Add", swapped ? ["t3", "c"] : ["c", "t3"], ["s"])
                b.node("Mul", swapped ? ["s", "k"] : ["k", "s"], ["d"])
                b.node("Tanh", ["d"], ["e"])
            } else {
                b.initializer("root2", [], [Float(2).squareRoot()])
                b.node("Div", ["c", "root2"], ["d"])
                b.node("Erf", ["d"], ["e"])
            }
            b.node("Add", swapped ? ["one", "e"] : ["e", "one"], ["a"])
            b.node("Mul", swapped ? ["a", "c"] : ["c", "a"], ["m"])
            b.node("Mul", swapped ? ["half", "m"] : ["m", "half"], ["y"])
        }
    }

    @Test func legacyGeluArithmeticIsOneTable() throws {
        for tanh in [false, true] {
            for swapped in [false, true] {
                let r = try importAndRun(legacyGeluClassifier(tanh: tanh, swapped: swapped))
                #expect(r.graph.layers.map(\.opType) == ["Conv", "Gelu", "GlobalAveragePool", "Gemm"], "tanh \(tanh), swapped \(swapped)")
                let conv = Array(r.executor.value(r.graph.layers[0].output)), out = Array(r.executor.value(r.graph.layers[1].output))
                let expected = conv.map { v -> Float in
                    let x = Double(v)
                    return Float(0.5 * x * (1 + (tanh ? Foundation.tanh(0.7978845608 * (x + 0.044715 * x * x * x)) : erf(x / 2.0.squareRoot()))))
                }
                #expect(maxDifference(out, expected) < 1e-6, "tanh \(tanh), swapped \(swapped)")
            }
        }
        // Not GELU (the last factor is not 0.5): the Erf is refused, naming the one form supported.
        #expect(importError(legacyGeluClassifier(half: 0.4)).contains("Erf is supported only inside GELU"))
        // A Tanh that is not GELU's stays an activation of its own.
        let plain = try importAndRun(legacyGeluClassifier(tanh: true, half: 0.4))
        #expect(plain.graph.layers.contains { $0.opType == "Tanh" } && !plain.graph.layers.contains { $0.opType == "Gelu" })
    }
}
