import SieveTestSupport
import Foundation
import SieveCore
import Testing
@testable import SieveQuantize

/// The float outputs of every layer of `builder`'s model, imported, on one synthetic image.
func importAndRun(_ builder: ONNXBuilder, options: InputOptions = .none, h: Int = 8, w: Int = 8, c: Int = 1) throws -> (graph: Graph, executor: FloatExecutor, pixels: [UInt8]) {
    let graph = try ONNXImporter.importGraph(Onnx_ModelProto(serializedBytes: builder.bytes()), options: options)
    let images = try ImageSet.parseIDX(idxImages(count: 1, h: h, w: w, c: c)) { .invalidCalibrationData(path: "", reason: $0) }
    let executor = FloatExecutor(graph: graph)
    let pixels = Array(images.image(0))
    executor.run(pixels: pixels)
    return (graph, executor, pixels)
}

func finalLogits(_ builder: ONNXBuilder, options: InputOptions = .none, h: Int = 8, w: Int = 8, c: Int = 1) throws -> [Float] {
    let r = try importAndRun(builder, options: options, h: h, w: w, c: c)
    return Array(r.executor.value(r.graph.final))
}

func importError(_ builder: ONNXBuilder, options: InputOptions = .none) -> String {
    let proto = try! Onnx_ModelProto(serializedBytes: builder.bytes())
    do {
        _ = try ONNXImporter.importGraph(proto, options: options)
        return "accepted"
    } catch {
        return error.description
    }
}

func maxDifference(_ a: [Float], _ b: [Float]) -> Float {
    guard a.count == b.count else { return .infinity }
    return zip(a, b).map { abs($0 - $1) }.max() ?? 0
}

/// x [1,C,8,8] -> `body` -> GAP -> Flatten -> Gemm(5): `body` appends nodes from "x" to "y".
func classifier(c: Int = 1, seed: UInt64 = 7, yChannels: Int = 4, opset: Int64 = 17, _ body: (inout ONNXBuilder) -> Void) -> ONNXBuilder {
    var b = ONNXBuilder(seed: seed)
    b.opset = opset
    b.input("x", [1, Int64(c), 8, 8])
    body(&b)
    b.node("GlobalAveragePool", ["y"], ["g"])
    b.node("Flatten", ["g"], ["f"])
    b.random("fw", [5, yChannels]); b.random("fb", [5])
    b.node("Gemm", ["f", "fw", "fb"], ["logits"], [attr("transB", int: 1)])
    b.output("logits")
    return b
}

/// NCHW conv (taps `dilation` apart), for checking folds against the arithmetic itself.
func referenceConv(_ x: [Float], c: Int, h: Int, w: Int, weights: [Float], bias: [Float], cout: Int, k: Int, pad: Int, dilation: Int = 1) -> [Float] {
    let span = dilation * (k - 1) + 1
    let oh = h + 2 * pad - span + 1, ow = w + 2 * pad - span + 1
    var out = [Float](repeating: 0, count: cout * oh * ow)
    for o in 0..<cout {
        for y in 0..<oh {
            for xx in 0..<ow {
                var acc = Double(bias[o])
                for ci in 0..<c {
                    for ky in 0..<k {
                        for kx in 0..<k {
                            let iy = y + dilation * ky - pad, ix = xx + dilation * kx - pad
                            guard iy >= 0, iy < h, ix >= 0, ix < w else { continue }
                            acc += Double(weights[((o * c + ci) * k + ky) * k + kx]) * Double(x[(ci * h + iy) * w + ix])
                        }
                    }
                }
                out[(o * oh + y) * ow + xx] = Float(acc)
            }
        }
    }
    return out
}

func initializerValues(_ b: ONNXBuilder, _ name: String) -> [Float] {
    let t = b.graph.initializer.first { $0.name == name }!
    return t.rawData.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
}

@Suite struct ImportPatternTests {
    // MARK: Normalisation

    @Test func noNormalisationIsAnErrorNamingTheOptions() {
        let e = importError(modelWith("Relu"), options: InputOptions())
        #expect(e.contains("does not say how its input is normalised") && e.contains("--norm imagenet") && e.contains("--mean R,G,B --std R,G,B")
                && e.contains("--norm none"), "\(e)")
    }

    /// (x - m) / s inside the graph equals the same model with m, s given as options.
    @Test func subDivOnTheInputFoldIntoTheNormalisation() throws {
        let mean: [Float] = [0.4, 0.5, 0.3], std: [Float] = [0.2, 0.25, 0.3]
        let inGraph = classifier(c: 3) { b in
            b.initializer("m", [1, 3, 1, 1], mean); b.initializer("s", [3, 1, 1], std)
            b.node("Sub", ["x", "m"], ["xs"]); b.node("Div", ["xs", "s"], ["xn"])
            b.random("w", [4, 3, 3, 3]); b.node("Conv", ["xn", "w"], ["y"], [attr("pads", ints: [1, 1, 1, 1])])
        }
        let plain = classifier(c: 3) { b in
            b.random("w", [4, 3, 3, 3]); b.node("Conv", ["x", "w"], ["y"], [attr("pads", ints: [1, 1, 1, 1])])
        }
        let r = try importAndRun(inGraph, options: InputOptions(), c: 3)
        #expect(r.graph.layers.count == 3, "the Sub and Div became layers")
        #expect(maxDifference(r.graph.mean, mean) < 1e-6 && maxDifference(r.graph.std, std) < 1e-6, "\(r.graph.mean) \(r.graph.std)")
        #expect(r.graph.notes.contains { $0.contains("folded Sub") })
        let expected = try finalLogits(plain, options: InputOptions(mean: mean, std: std), c: 3)
        #expect(maxDifference(Array(r.executor.value(r.graph.final)), expected) < 1e-4)
        // Composed with options: the graph's (x - m) / s applies after the options' normalisation.
        let composed = try importAndRun(inGraph, options: InputOptions(mean: [0.1], std: [0.5]), c: 3)
        for ch in 0..<3 {
            #expect(abs(composed.graph.std[ch] - 0.5 * std[ch]) < 1e-6 && abs(composed.graph.mean[ch] - (0.1 + mean[ch] * 0.5)) < 1e-6)
        }
    }

    @Test func optionsOverrideMetadataAndSaySo() throws {
        var b = modelWith("Relu")
        b.metadata = [("sieve.input_mean", "[0.5]"), ("sieve.input_std", "[0.25]"), ("sieve.labels", "[\"a\", \"b\", \"c\"]")]
        let meta = try importAndRun(b, options: InputOptions()).graph
        #expect(meta.mean == [0.5] && meta.std == [0.25] && meta.notes.isEmpty)
        let over = try importAndRun(b, options: InputOptions(mean: [0.1], std: [0.2], labels: ["x", "y", "z"])).graph
        #expect(over.mean == [0.1] && over.std == [0.2] && over.labels == ["x", "y", "z"])
        #expect(over.notes.contains { $0.contains("override") } && over.notes.contains { $0.contains("--labels overrides") })
        #expect(importError(b, options: InputOptions(mean: [0.1], std: [0.2], labels: ["x"])).contains("--labels gives 1 labels; the model has 3 classes"))
        #expect(importError(modelWith("Relu"), options: InputOptions(mean: [0.1, 0.2], std: [1])).contains("--mean gives 2 values; the model's input has 1 channels"))
    }

    @Test func labelFile() throws {
        let dir = TempDir()
        try "cat\r\ndog\nbird\n".write(toFile: dir.file("l.txt"), atomically: true, encoding: .utf8)
        #expect(try ClassLabelFile.load(path: dir.file("l.txt")) == ["cat", "dog", "bird"])
        try "cat\n\ndog\n".write(toFile: dir.file("blank.txt"), atomically: true, encoding: .utf8)
        #expect(throws: QuantizeError.invalidLabelData(path: dir.file("blank.txt"), reason: "line 2 is empty (one class name per line)")) {
            _ = try ClassLabelFile.load(path: dir.file("blank.txt"))
        }
    }

    // MARK: Softmax, ReduceMean, views

    @Test func softmaxAtTheOutputIsDroppedWithANote() throws {
        var b = modelWith("Relu")
        b.graph.output = []
        b.node("Softmax", ["logits"], ["probs"], name: "sm", [attr("axis", int: 1)])
        b.output("probs")
        let r = try importAndRun(b)
        #expect(r.graph.notes.contains { $0.contains("dropped Softmax 'sm'") })
        #expect(try maxDifference(Array(r.executor.value(r.graph.final)), finalLogits(modelWith("Relu"))) == 0)
        var log = modelWith("Relu")
        log.graph.output = []
        log.node("LogSoftmax", ["logits"], ["lp"])
        log.output("lp")
        #expect(importError(log) == "accepted")
    }

    /// A model that returns its features beside the logits: that output is no exit head (the wrong shape)
    /// and is left out with a note; an output shaped like the logits is still a head.
    @Test func extraOutputsThatAreNotLogitsAreLeftOut() throws {
        var b = modelWith("Relu")
        b.output("f")  // the pooled 2 features, beside the 3 logits
        let r = try importAndRun(b)
        #expect(r.graph.heads.isEmpty)
        #expect(r.graph.notes.contains { $0.contains("graph output 'f' is 2x1x1 (CxHxW), not the 3 class logits: not an exit head, left out") })
        #expect(try maxDifference(Array(r.executor.value(r.graph.final)), finalLogits(modelWith("Relu"))) == 0)
        var echo = modelWith("Relu")
        echo.output("x")  // the input handed back, as some wrappers do
        #expect(try importAndRun(echo).graph.notes.contains { $0.contains("graph output 'x' is the input image itself, not the 3 class logits") })
        var head = modelWith("Relu")
        head.random("hw", [3, 2])
        head.node("Gemm", ["f", "hw"], ["head"], [attr("transB", int: 1)])
        head.output("head")
        #expect(try importAndRun(head).graph.heads.count == 1)
    }

    @Test func reduceMeanIsTheGlobalPoolInEveryForm() throws {
        let reference = try finalLogits(modelWith("Relu"))
        for (opset, keep) in [(Int64(13), Int64(1)), (13, 0), (18, 1), (18, 0)] {
            var b = ONNXBuilder()
            b.opset = opset
            b.input("x", [1, 1, 8, 8])
            b.random("w", [2, 1, 3, 3])
            b.node("Conv", ["x", "w"], ["c"], [attr("pads", ints: [1, 1, 1, 1])])
            b.node("Relu", ["c"], ["y"])
            if opset >= 18 {
                b.int64Initializer("axes", [-2, -1])
                b.node("ReduceMean", ["y", "axes"], ["g"], [attr("keepdims", int: keep)])
            } else {
                b.node("ReduceMean", ["y"], ["g"], [attr("axes", ints: [2, 3]), attr("keepdims", int: keep)])
            }
            if keep == 1 {
                b.int64Initializer("sq", [2, 3])
                b.node("Squeeze", ["g", "sq"], ["f"])
            } else {
                b.node("Identity", ["g"], ["f"])
            }
            b.random("fw", [3, 2])
            b.node("Gemm", ["f", "fw"], ["logits"], [attr("transB", int: 1)])
            b.output("logits")
            #expect(try finalLogits(b) == reference, "opset \(opset) keepdims \(keep)")
        }
        #expect(importError(modelWith("ReduceMean", [attr("axes", ints: [1])])).contains("only the mean over H and W"))
    }

    /// `x.view(x.size(0), -1)` as the legacy exporter writes it: Shape, Gather, Unsqueeze, Concat, Reshape.
    @Test func shapeSubgraphsFoldToConstants() throws {
        var b = ONNXBuilder()
        b.input("x", [1, 1, 8, 8])
        b.random("w", [2, 1, 3, 3])
        b.node("Conv", ["x", "w"], ["c"], [attr("pads", ints: [1, 1, 1, 1])])
        b.node("Relu", ["c"], ["y"])
        b.node("GlobalAveragePool", ["y"], ["g"])
        b.node("Shape", ["g"], ["shape"])
        b.int64Initializer("zero", [0])
        b.node("Gather", ["shape", "zero"], ["n"])
        b.int64Initializer("minus", [-1])
        b.node("Concat", ["n", "minus"], ["target"], [attr("axis", int: 0)])
        b.node("Reshape", ["g", "target"], ["f"])
        b.random("fw", [3, 2])
        b.node("Gemm", ["f", "fw"], ["logits"], [attr("transB", int: 1)])
        b.output("logits")
        #expect(try finalLogits(b) == finalLogits(modelWith("Relu")))
    }

    @Test func clipBoundsAsInputsAndAttributes() throws {
        for opset in [Int64(6), 11, 13] {
            let b = classifier(opset: opset) { b in
                b.random("w", [4, 1, 3, 3], scale: 2); b.node("Conv", ["x", "w"], ["c"], [attr("pads", ints: [1, 1, 1, 1])])
                if opset < 11 {
                    b.node("Clip", ["c"], ["y"], [attr("min", float: 0), attr("max", float: 0.5)])
                } else {
                    b.initializer("lo", [], [0]); b.initializer("hi", [], [0.5])
                    b.node("Clip", ["c", "lo", "hi"], ["y"])
                }
            }
            let g = try importAndRun(b).graph
            #expect(g.layers[0].clampMin == 0 && g.layers[0].clampMax == 0.5, "opset \(opset)")
        }
    }

    // MARK: BatchNormalization, per-channel affine

    static func bnNode(_ b: inout ONNXBuilder, _ input: String, _ output: String, channels: Int, positive: Bool = false) {
        if positive { b.initializer("bn_s\(output)", [channels], (0..<channels).map { 0.5 + Float($0) }) } else { b.random("bn_s\(output)", [channels], scale: 1) }
        b.random("bn_b\(output)", [channels]); b.random("bn_m\(output)", [channels], scale: 0.3)
        b.initializer("bn_v\(output)", [channels], (0..<channels).map { 0.5 + Float($0) * 0.25 })
        b.node("BatchNormalization", [input, "bn_s\(output)", "bn_b\(output)", "bn_m\(output)", "bn_v\(output)"], [output])
    }

    func bnAffine(_ b: ONNXBuilder, _ output: String, _ x: Float, channel c: Int) -> Float {
        let s = initializerValues(b, "bn_s\(output)")[c], sh = initializerValues(b, "bn_b\(output)")[c]
        let m = initializerValues(b, "bn_m\(output)")[c], v = initializerValues(b, "bn_v\(output)")[c]
        return Float((Double(x) - Double(m)) / (Double(v) + 1e-5).squareRoot() * Double(s) + Double(sh))
    }

    /// Conv -> ReLU -> BN: the BN cannot fold back (the ReLU is between) and the next op is a pool:
    /// a 1x1 depthwise conv computing exactly the BN.
    @Test func batchNormAfterReluIsADepthwiseAffine() throws {
        let b = classifier { b in
            b.random("w", [4, 1, 3, 3]); b.node("Conv", ["x", "w"], ["c"], [attr("pads", ints: [1, 1, 1, 1])])
            b.node("Relu", ["c"], ["r"])
            Self.bnNode(&b, "r", "y", channels: 4)
        }
        let r = try importAndRun(b)
        #expect(r.graph.layers.count == 4)
        guard case .conv(let p) = r.graph.layers[1].kind else { Issue.record("no affine layer"); return }
        #expect(p.groups == 4 && p.kh == 1 && p.kw == 1 && p.cinPerGroup == 1)
        let relu = r.executor.value(r.graph.layers[0].output), bn = r.executor.value(r.graph.layers[1].output)
        var worst: Float = 0
        for c in 0..<4 { for i in 0..<64 { worst = max(worst, abs(bn[c * 64 + i] - bnAffine(b, "y", relu[c * 64 + i], channel: c))) } }
        #expect(worst < 1e-5)
    }

    /// ReLU -> BN -> Conv without padding: the BN folds forward into the conv, exactly.
    @Test func batchNormBeforeAnUnpaddedConvFoldsForward() throws {
        let b = classifier(yChannels: 3) { b in
            b.random("w", [4, 1, 3, 3]); b.node("Conv", ["x", "w"], ["c"], [attr("pads", ints: [1, 1, 1, 1])])
            b.node("Relu", ["c"], ["r"])
            Self.bnNode(&b, "r", "bn", channels: 4)
            b.random("w2", [3, 4, 3, 3]); b.random("b2", [3])
            b.node("Conv", ["bn", "w2", "b2"], ["y"])
        }
        let r = try importAndRun(b)
        #expect(r.graph.layers.count == 4, "the BN stayed a layer: \(r.graph.layers.map { $0.opType })")
        let relu = Array(r.executor.value(r.graph.layers[0].output))
        var bn = relu
        for c in 0..<4 { for i in 0..<64 { bn[c * 64 + i] = bnAffine(b, "bn", relu[c * 64 + i], channel: c) } }
        let expected = referenceConv(bn, c: 4, h: 8, w: 8, weights: initializerValues(b, "w2"), bias: initializerValues(b, "b2"), cout: 3, k: 3, pad: 0)
        #expect(maxDifference(Array(r.executor.value(r.graph.layers[1].output)), expected) < 1e-4)
        // With padding it may not fold (padded zeros are not normalised): a depthwise layer stays.
        var padded = b
        padded.graph.node[padded.graph.node.firstIndex { $0.output == ["y"] }!].attribute = [attr("pads", ints: [1, 1, 1, 1])]
        #expect(try importAndRun(padded).graph.layers.count == 5)
    }

    /// GAP -> Flatten -> BN1d -> Gemm (folds forward) and Gemm -> BN1d (folds back).
    @Test func batchNormAroundGemm() throws {
        var b = ONNXBuilder()
        b.input("x", [1, 1, 8, 8])
        b.random("w", [4, 1, 3, 3])
        b.node("Conv", ["x", "w"], ["c"], [attr("pads", ints: [1, 1, 1, 1])])
        b.node("Relu", ["c"], ["r"])
        b.node("GlobalAveragePool", ["r"], ["g"])
        b.node("Flatten", ["g"], ["f"])
        Self.bnNode(&b, "f", "fbn", channels: 4)
        b.random("fw", [6, 4]); b.random("fb", [6])
        b.node("Gemm", ["fbn", "fw", "fb"], ["h"], [attr("transB", int: 1)])
        Self.bnNode(&b, "h", "logits", channels: 6)
        b.output("logits")
        let r = try importAndRun(b)
        #expect(r.graph.layers.count == 3, "\(r.graph.layers.map { $0.opType })")
        let g = r.executor.value(r.graph.layers[1].output)
        let fw = initializerValues(b, "fw"), fb = initializerValues(b, "fb")
        var expected = [Float](repeating: 0, count: 6)
        for o in 0..<6 {
            var acc = Double(fb[o])
            for k in 0..<4 { acc += Double(fw[o * 4 + k]) * Double(bnAffine(b, "fbn", g[k], channel: k)) }
            expected[o] = bnAffine(b, "logits", Float(acc), channel: o)
        }
        #expect(maxDifference(Array(r.executor.value(r.graph.final)), expected) < 1e-4)
    }

    /// BN straight on the input is part of the input normalisation.
    @Test func batchNormOnTheInputFoldsIntoTheNormalisation() throws {
        let b = classifier { b in
            Self.bnNode(&b, "x", "xn", channels: 1, positive: true)
            b.random("w", [4, 1, 3, 3]); b.node("Conv", ["xn", "w"], ["y"], [attr("pads", ints: [1, 1, 1, 1])])
        }
        let g = try importAndRun(b).graph
        #expect(g.layers.count == 3)
        let x: Float = 0.7
        #expect(abs((x - g.mean[0]) / g.std[0] - bnAffine(b, "xn", x, channel: 0)) < 1e-5)
        // A negative scale is no std: an ordinary per-channel layer instead.
        var negative = b
        let s = negative.graph.initializer.firstIndex { $0.name == "bn_sxn" }!
        negative.graph.initializer[s].rawData = [Float(-0.5)].withUnsafeBytes { Data($0) }
        let n = try importAndRun(negative).graph
        #expect(n.layers.count == 4 && n.mean == [0] && n.std == [1])
    }

    /// Mul by a per-channel constant: folded into the conv before, else a depthwise layer; other shapes refused.
    @Test func perChannelMulAndAdd() throws {
        let scale: [Float] = [0.5, -1, 2, 0.25], shift: [Float] = [0.1, 0.2, -0.3, 0]
        let folded = classifier { b in
            b.random("w", [4, 1, 3, 3]); b.node("Conv", ["x", "w"], ["c"], [attr("pads", ints: [1, 1, 1, 1])])
            b.initializer("s", [1, 4, 1, 1], scale); b.node("Mul", ["c", "s"], ["y"])
        }
        let rf = try importAndRun(folded)
        #expect(rf.graph.layers.count == 3)
        let after = classifier { b in
            b.random("w", [4, 1, 3, 3]); b.node("Conv", ["x", "w"], ["c"], [attr("pads", ints: [1, 1, 1, 1])])
            b.node("Relu", ["c"], ["r"])
            b.initializer("s", [4, 1, 1], scale); b.node("Mul", ["s", "r"], ["m"])
            b.initializer("t", [1, 4, 1, 1], shift); b.node("Add", ["m", "t"], ["y"])
        }
        let ra = try importAndRun(after)
        #expect(ra.graph.layers.count == 4, "Mul then Add should be one affine layer: \(ra.graph.layers.map { $0.opType })")
        let relu = ra.executor.value(ra.graph.layers[0].output), y = ra.executor.value(ra.graph.layers[1].output)
        var worst: Float = 0
        for c in 0..<4 { for i in 0..<64 { worst = max(worst, abs(y[c * 64 + i] - (relu[c * 64 + i] * scale[c] + shift[c]))) } }
        #expect(worst < 1e-6)
        let bad = classifier { b in
            b.random("w", [4, 1, 3, 3]); b.node("Conv", ["x", "w"], ["c"], [attr("pads", ints: [1, 1, 1, 1])])
            b.random("s", [1, 1, 8, 8]); b.node("Mul", ["c", "s"], ["y"], name: "spatial")
        }
        #expect(importError(bad).contains("does not broadcast per channel"), "\(importError(bad))")
    }

    // MARK: Pad, pools

    /// timm's TF "same" padding as the legacy exporter writes it: the pads computed from float scalars
    /// (Ceil, Mul, Div, Clip, Casts), joined (Unsqueeze, Concat, Shape of a constant) and cast to int64.
    @Test func padsComputedFromFloatConstantsFold() throws {
        let b = classifier { b in
            b.initializer("f", [], [0.4]); b.initializer("two", [], [2]); b.initializer("zero", [], [0])
            b.int64Initializer("axis0", [0]); b.int64Initializer("four", [4]); b.int64Initializer("first", [0])
            b.node("Ceil", ["f"], ["c"])                                     // 1.0
            b.node("Mul", ["c", "two"], ["m"]); b.node("Div", ["m", "two"], ["d"])
            b.node("Clip", ["d", "zero", ""], ["k"])
            b.node("Cast", ["k"], ["ki"], [attr("to", int: 7)]); b.node("Cast", ["ki"], ["kf"], [attr("to", int: 1)])
            b.node("Unsqueeze", ["kf", "axis0"], ["u"]); b.node("Concat", ["u", "u"], ["cat"], [attr("axis", int: 0)])  // [1.0, 1.0]
            b.node("Shape", ["cat"], ["shape"]); b.node("Gather", ["shape", "first"], ["n"], [attr("axis", int: 0)])
            b.node("Sub", ["four", "n"], ["zeros"]); b.node("ConstantOfShape", ["zeros"], ["z"])          // [0, 0]
            b.node("Cast", ["cat"], ["ci"], [attr("to", int: 7)])
            b.node("Concat", ["z", "ci", "z", "ci"], ["pads"], [attr("axis", int: 0)])               // [0, 0, 1, 1, 0, 0, 1, 1]
            b.node("Pad", ["x", "pads"], ["xp"])
            b.random("w", [4, 1, 3, 3]); b.node("Conv", ["xp", "w"], ["y"])
        }
        let g = try importAndRun(b).graph
        guard case .conv(let p) = g.layers[0].kind else { Issue.record("no conv"); return }
        let pads: [Int] = [p.padTop, p.padLeft, p.padBottom, p.padRight]
        #expect(pads == [1, 1, 1, 1])
        #expect(g.layers.count == 3)  // the conv, the pool and the Gemm: every constant folded away
    }

    @Test func explicitPadFoldsIntoTheConv() throws {
        for opset in [Int64(13), 18] {
            let b = classifier(opset: opset) { b in
                if opset >= 18 {
                    b.int64Initializer("p", [1, 2, 1, 0]); b.int64Initializer("ax", [2, 3])
                    b.node("Pad", ["x", "p", "", "ax"], ["xp"])
                } else {
                    b.int64Initializer("p", [0, 0, 1, 2, 0, 0, 1, 0])
                    b.node("Pad", ["x", "p"], ["xp"])
                }
                b.random("w", [4, 1, 3, 3]); b.node("Conv", ["xp", "w"], ["y"])
            }
            let g = try importAndRun(b).graph
            guard case .conv(let p) = g.layers[0].kind else { Issue.record("no conv"); continue }
            let pads: [Int] = [p.padTop, p.padLeft, p.padBottom, p.padRight]
            #expect(pads == [1, 2, 1, 0], "opset \(opset)")
            #expect(g.values[g.layers[0].output].shape == Shape(c: 4, h: 8, w: 8))
        }
        let tooMuch = classifier { b in
            b.int64Initializer("p", [0, 0, 3, 3, 0, 0, 3, 3]); b.node("Pad", ["x", "p"], ["xp"])
            b.random("w", [4, 1, 3, 3]); b.node("Conv", ["xp", "w"], ["y"])
        }
        #expect(importError(tooMuch).contains("not smaller than the kernel"))
        let reflect = classifier { b in
            b.int64Initializer("p", [0, 0, 1, 1, 0, 0, 1, 1]); b.node("Pad", ["x", "p"], ["xp"], [attr("mode", string: "reflect")])
            b.random("w", [4, 1, 3, 3]); b.node("Conv", ["xp", "w"], ["y"])
        }
        #expect(importError(reflect).contains("only constant (zero) padding"))
        // Before an AveragePool with padding of its own that skips padded positions, zeros that count do not fold;
        // with none of its own, they are count_include_pad's (a depthwise conv: averagePoolCountingPaddingAndReluAfterPools).
        let mixed = classifier { b in
            b.int64Initializer("p", [0, 0, 1, 1, 0, 0, 1, 1]); b.node("Pad", ["x", "p"], ["xp"])
            b.random("w", [4, 1, 3, 3]); b.node("Conv", ["xp", "w"], ["c"])
            b.node("Pad", ["c", "p"], ["cp"])
            b.node("AveragePool", ["cp"], ["y"], [attr("kernel_shape", ints: [3, 3]), attr("pads", ints: [1, 1, 1, 1])])
        }
        #expect(importError(mixed).contains("does not fold"), "\(importError(mixed))")
        let counted = classifier { b in
            b.int64Initializer("p", [0, 0, 1, 1, 0, 0, 1, 1]); b.node("Pad", ["x", "p"], ["xp"])
            b.random("w", [4, 1, 3, 3]); b.node("Conv", ["xp", "w"], ["c"])
            b.node("Pad", ["c", "p"], ["cp"]); b.node("AveragePool", ["cp"], ["y"], [attr("kernel_shape", ints: [3, 3])])
        }
        let explicit = classifier { b in
            b.int64Initializer("p", [0, 0, 1, 1, 0, 0, 1, 1]); b.node("Pad", ["x", "p"], ["xp"])
            b.random("w", [4, 1, 3, 3]); b.node("Conv", ["xp", "w"], ["c"])
            b.node("AveragePool", ["c"], ["y"], [attr("kernel_shape", ints: [3, 3]), attr("pads", ints: [1, 1, 1, 1]), attr("count_include_pad", int: 1)])
        }
        #expect(try maxDifference(finalLogits(counted), finalLogits(explicit)) == 0)
    }

    /// MaxPool ceil_mode as extra end padding, against the pool computed directly.
    @Test func maxPoolCeilMode() throws {
        let b = classifier { b in
            b.random("w", [4, 1, 3, 3]); b.node("Conv", ["x", "w"], ["c"])  // 6x6
            b.node("Relu", ["c"], ["r"])
            b.int64Initializer("p", [0, 0, 1, 1, 0, 0, 0, 0]); b.node("Pad", ["r", "p"], ["rp"])  // 7x7, zero pad before a max pool of values >= 0
            b.node("MaxPool", ["rp"], ["y"], [attr("kernel_shape", ints: [2, 2]), attr("strides", ints: [2, 2]), attr("ceil_mode", int: 1)])  // 4x4
        }
        let r = try importAndRun(b)
        let out = r.executor.value(r.graph.layers[1].output)
        #expect(r.graph.values[r.graph.layers[1].output].shape == Shape(c: 4, h: 4, w: 4))
        let relu = r.executor.value(r.graph.layers[0].output)
        var worst: Float = 0
        for c in 0..<4 {
            for oy in 0..<4 {
                for ox in 0..<4 {
                    var m: Float = 0  // the explicit zero pad
                    for ky in 0..<2 {
                        for kx in 0..<2 {
                            let y = oy * 2 + ky - 1, x = ox * 2 + kx - 1
                            if y >= 0 && y < 6 && x >= 0 && x < 6 { m = max(m, relu[(c * 6 + y) * 6 + x]) }
                        }
                    }
                    worst = max(worst, abs(out[(c * 4 + oy) * 4 + ox] - m))
                }
            }
        }
        #expect(worst == 0)
    }

    /// AveragePool counting its padding (PyTorch's default) is a depthwise conv of weights 1/9, padded taps 0;
    /// a ReLU after it and one after a MaxPool are clamps (the conv's, and a table).
    @Test func averagePoolCountingPaddingAndReluAfterPools() throws {
        let b = classifier { b in
            b.random("w", [4, 1, 3, 3]); b.node("Conv", ["x", "w"], ["c"])  // 6x6
            b.node("AveragePool", ["c"], ["a"], [attr("kernel_shape", ints: [3, 3]), attr("pads", ints: [1, 1, 1, 1]), attr("count_include_pad", int: 1)])
            b.node("Relu", ["a"], ["ar"])
            b.node("MaxPool", ["ar"], ["m"], [attr("kernel_shape", ints: [2, 2]), attr("strides", ints: [2, 2])])  // 3x3
            b.node("Relu", ["m"], ["y"])
        }
        let r = try importAndRun(b)
        guard case let .conv(p) = r.graph.layers[1].kind else { Issue.record("layer 1 is \(r.graph.layers[1].opType)"); return }
        #expect(p.groups == 4 && p.kh == 3 && p.padTop == 1 && p.weights.allSatisfy { $0 == 1 / Float(9) } && r.graph.layers[1].clampMin == 0)
        let x = r.executor.value(r.graph.layers[0].output), avg = r.executor.value(r.graph.layers[1].output)
        var worst: Float = 0
        for c in 0..<4 {
            for oy in 0..<6 {
                for ox in 0..<6 {
                    var sum: Float = 0  // padded positions are zeros, and count
                    for y in max(0, oy - 1)...min(5, oy + 1) { for xx in max(0, ox - 1)...min(5, ox + 1) { sum += x[(c * 6 + y) * 6 + xx] } }
                    worst = max(worst, abs(avg[(c * 6 + oy) * 6 + ox] - max(0, sum / 9)))
                }
            }
        }
        #expect(worst < 1e-5)
        let kinds = r.graph.layers.map { $0.opType }
        #expect(r.graph.layers.contains { if case .lut(.clamp(0, .infinity)) = $0.kind { return true } else { return false } }, "\(kinds)")
    }

    /// A dynamic batch axis imports as batch 1, with a note, and computes what the static model does.
    @Test func dynamicBatchAxisIsBatchOne() throws {
        var b = modelWith("Relu")
        b.graph.input = []
        b.input("x", [1, 1, 8, 8], dynamicAxis: 0)
        let graph = try ONNXImporter.importGraph(Onnx_ModelProto(serializedBytes: b.bytes()), options: .none)
        #expect(graph.notes.contains { $0.contains("dynamic batch axis 'N': imported with batch 1") }, "\(graph.notes)")
        #expect(try maxDifference(finalLogits(b), finalLogits(modelWith("Relu"))) == 0)
    }

    /// A dynamic height and width take --input-size's, with a note; a static one must match it.
    @Test func dynamicHeightAndWidthTakeTheInputSize() throws {
        var b = modelWith("Relu")
        b.graph.input = []
        b.input("x", [1, 1, 8, 8], dynamicAxis: 2)
        b.graph.input[0].type.tensorType.shape.dim[3].dimParam = "W"
        let proto = try Onnx_ModelProto(serializedBytes: b.bytes())
        let graph = try ONNXImporter.importGraph(proto, options: InputOptions(mean: [0], std: [1], height: 8, width: 8))
        #expect(graph.notes.contains { $0.contains("has a dynamic height or width: imported at 8x8 (--input-size)") }, "\(graph.notes)")
        #expect(try maxDifference(finalLogits(b, options: InputOptions(mean: [0], std: [1], height: 8, width: 8)), finalLogits(modelWith("Relu"))) == 0)
        let wide = try ONNXImporter.importGraph(proto, options: InputOptions(mean: [0], std: [1], height: 6, width: 10))
        #expect(wide.inputShape == Shape(c: 1, h: 6, w: 10))
        #expect(importError(modelWith("Relu"), options: InputOptions(mean: [0], std: [1], height: 8, width: 9))
            .contains("has width 8 in the model, not the 9 of --input-size"))
    }

    /// AveragePool ceil_mode with count_include_pad 0: the extra windows average their real positions only.
    @Test func averagePoolCeilMode() throws {
        let b = classifier { b in
            b.random("w", [4, 1, 3, 3]); b.node("Conv", ["x", "w"], ["c"])  // 6x6
            b.node("AveragePool", ["c"], ["y"], [attr("kernel_shape", ints: [4, 4]), attr("strides", ints: [4, 4]), attr("ceil_mode", int: 1)])  // 2x2
        }
        let r = try importAndRun(b)
        #expect(r.graph.values[r.graph.layers[1].output].shape == Shape(c: 4, h: 2, w: 2))
        let x = r.executor.value(r.graph.layers[0].output), out = r.executor.value(r.graph.layers[1].output)
        var worst: Float = 0
        for c in 0..<4 {
            for oy in 0..<2 {
                for ox in 0..<2 {
                    var sum = 0.0, n = 0.0
                    for y in (oy * 4)..<min(6, oy * 4 + 4) { for xx in (ox * 4)..<min(6, ox * 4 + 4) { sum += Double(x[(c * 6 + y) * 6 + xx]); n += 1 } }
                    worst = max(worst, abs(out[(c * 2 + oy) * 2 + ox] - Float(sum / n)))
                }
            }
        }
        #expect(worst < 1e-5)
    }

    /// [1, K] -> Unsqueeze / Reshape back to [1, K, 1, 1] -> Flatten -> Gemm, and Squeeze with attribute axes (opset 11).
    @Test func vectorViewsRoundTrip() throws {
        let reference = try finalLogits(modelWith("Relu"))
        for form in ["unsqueeze", "reshape", "squeeze-attribute"] {
            var b = ONNXBuilder()
            b.opset = form == "squeeze-attribute" ? 11 : 13
            b.input("x", [1, 1, 8, 8])
            b.random("w", [2, 1, 3, 3])
            b.node("Conv", ["x", "w"], ["c"], [attr("pads", ints: [1, 1, 1, 1])])
            b.node("Relu", ["c"], ["y"])
            b.node("GlobalAveragePool", ["y"], ["g"])
            switch form {
            case "unsqueeze":
                b.node("Flatten", ["g"], ["v"])
                b.int64Initializer("ax", [2, 3]); b.node("Unsqueeze", ["v", "ax"], ["u"])
                b.node("Flatten", ["u"], ["f"])
            case "reshape":
                b.node("Flatten", ["g"], ["v"])
                b.int64Initializer("s4", [1, 2, 1, 1]); b.node("Reshape", ["v", "s4"], ["u"])
                b.node("Flatten", ["u"], ["f"])
            default:
                b.node("Squeeze", ["g"], ["f"], [attr("axes", ints: [2, 3])])
            }
            b.random("fw", [3, 2])
            b.node("Gemm", ["f", "fw"], ["logits"], [attr("transB", int: 1)])
            b.output("logits")
            #expect(try finalLogits(b) == reference, "\(form)")
        }
    }

    // MARK: Refusals

    @Test func unsupportedOpsSayWhatToDo() {
        #expect(quantizeError(modelWith("Resize", name: "up"))?.description
                == "unsupported ONNX op 'Resize' (node 'up'): Resize is not supported; classifiers do not need it: remove it and export at the input size you will run")
        #expect(quantizeError(modelWith("LSTM"))?.description.contains("feed-forward") == true)
        #expect(quantizeError(modelWith("Transpose"))?.description.contains("Transpose of activations is not supported") == true)
        #expect(quantizeError(modelWith("LayerNormalization"))?.description.contains("deploy a network with BatchNorm") == true)
    }

    // MARK: External data

    /// The model with every initializer moved into `data` (at 16-byte-aligned offsets), as the dynamo exporter writes it.
    static func externalise(_ b: ONNXBuilder, location: String) -> (ONNXBuilder, Data) {
        var out = b
        var data = Data()
        for i in out.graph.initializer.indices where !out.graph.initializer[i].rawData.isEmpty {
            while data.count % 16 != 0 { data.append(0) }
            let raw = out.graph.initializer[i].rawData
            var entries: [Onnx_StringStringEntryProto] = []
            for (k, v) in [("location", location), ("offset", "\(data.count)"), ("length", "\(raw.count)")] {
                var e = Onnx_StringStringEntryProto(); e.key = k; e.value = v; entries.append(e)
            }
            data.append(raw)
            out.graph.initializer[i].rawData = Data()
            out.graph.initializer[i].externalData = entries
            out.graph.initializer[i].dataLocation = .external
        }
        return (out, data)
    }

    @Test func externalDataBesideTheModel() throws {
        let dir = TempDir()
        let (b, data) = Self.externalise(modelWith("Relu"), location: "m.onnx.data")
        b.write(dir.file("m.onnx"))
        try data.write(to: URL(fileURLWithPath: dir.file("m.onnx.data")))
        let float = try FloatModel(onnxPath: dir.file("m.onnx"), input: .none)
        modelWith("Relu").write(dir.file("inline.onnx"))
        let inline = try FloatModel(onnxPath: dir.file("inline.onnx"), input: .none)
        let pixels = [UInt8]((0..<64).map { UInt8($0 * 3) })
        #expect(float.run(pixels: pixels).final == inline.run(pixels: pixels).final)
    }

    @Test func hostileExternalDataLocations() throws {
        let root = TempDir()
        let dir = root.path + "/model"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let (_, data) = Self.externalise(modelWith("Relu"), location: "x")
        try data.write(to: URL(fileURLWithPath: root.file("outside.data")))
        try data.write(to: URL(fileURLWithPath: dir + "/inside.data"))
        try FileManager.default.createSymbolicLink(atPath: dir + "/link.data", withDestinationPath: root.file("outside.data"))
        func outcome(_ location: String, offset: String? = nil, length: String? = nil) -> String {
            var (b, _) = Self.externalise(modelWith("Relu"), location: location)
            for i in b.graph.initializer.indices {
                for j in b.graph.initializer[i].externalData.indices {
                    if b.graph.initializer[i].externalData[j].key == "offset", let o = offset { b.graph.initializer[i].externalData[j].value = o }
                    if b.graph.initializer[i].externalData[j].key == "length", let l = length { b.graph.initializer[i].externalData[j].value = l }
                }
            }
            b.write(dir + "/m.onnx")
            do { _ = try FloatModel(onnxPath: dir + "/m.onnx", input: .none); return "accepted" } catch { return error.description }
        }
        #expect(outcome("inside.data") == "accepted")
        #expect(outcome(root.file("outside.data")).contains("is not a plain relative path"))
        #expect(outcome("../outside.data").contains("contains '..'"))
        #expect(outcome("sub/../../outside.data").contains("contains '..'"))
        #expect(outcome("link.data").contains("resolves outside the model's directory"))
        #expect(outcome("missing.data").contains("does not exist next to the model"))
        #expect(outcome("inside.data", offset: "999999").contains("beyond the end"))
        #expect(outcome("inside.data", length: "999999").contains("runs past the end"))
        #expect(outcome("inside.data", offset: "-4").contains("is not a non-negative integer"))
        #expect(outcome("inside.data", length: "12").contains("raw bytes"), "a length that does not fit the dims")
    }
}
