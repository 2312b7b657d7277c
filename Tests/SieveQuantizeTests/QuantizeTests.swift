import SieveTestSupport
import Foundation
import SieveCore
import Testing
@testable import SieveQuantize

/// The outcome of quantising a tiny model and running blob and float model side by side.
struct Comparison {
    var result: QuantizeResult
    var opKinds: [OpKind]
    var heads: [HeadRecord]
    /// Worst |int8 dequantised - float| of the final logits, in units of the output scale.
    var finalErrorLSB: Float
    /// The same for each head.
    var headErrorLSB: [Float]
    var outputRange: Float
    var outputScale: Float
    var provenance: String
    var info: ModelRecord
}

/// Quantises `builder`'s model on synthetic images, then runs the blob with SieveCore's interpreter
/// and the float executor on images and compares the final and head logits.
func quantizeAndCompare(_ builder: ONNXBuilder, h: Int, w: Int, c: Int = 1, method: CalibrationMethod = .minmax,
                        calibration: Int = 48) throws -> Comparison {
    let dir = TempDir()
    let onnx = dir.file("model.onnx"), calib = dir.file("calib.idx")
    builder.write(onnx)
    try Data(idxImages(count: calibration, h: h, w: w, c: c)).write(to: URL(fileURLWithPath: calib))
    let result = try quantizeModel(onnxPath: onnx, calibrationPath: calib,
                                   options: QuantizeOptions(method: method, count: calibration, sqnrCount: 12).input(normalisation(builder)))
    let memory = UnsafeMutableRawBufferPointer.allocate(byteCount: result.blob.count, alignment: 64)
    defer { memory.deallocate() }
    memory.copyBytes(from: result.blob)
    let model = try Model(bytes: UnsafeRawBufferPointer(memory))
    let interpreter = try Interpreter(model: model)
    let float = try FloatModel(onnxPath: onnx, input: normalisation(builder))
    let images = try ImageSet.load(path: calib)
    var finalError: Float = 0
    var headErrors = [Float](repeating: 0, count: model.heads.count)
    var lo = Float.infinity, hi = -Float.infinity
    for i in 0..<min(16, images.count) {
        let pixels = Array(images.image(i))
        pixels.withUnsafeBytes { interpreter.setInput(pixels: $0) }
        interpreter.run()
        let f = float.run(pixels: pixels)
        let out = model.outputTensor
        for (k, q) in interpreter.output.enumerated() {
            let d = out.scale * Float(Int32(q) - out.zeroPoint)
            finalError = max(finalError, abs(d - f.final[k]) / out.scale)
            lo = min(lo, f.final[k]); hi = max(hi, f.final[k])
        }
        for (hIndex, head) in model.heads.enumerated() {
            let t = model.tensors[Int(head.logitsTensor)]
            for (k, q) in interpreter.tensor(Int(head.logitsTensor)).enumerated() {
                let d = t.scale * Float(Int32(q) - t.zeroPoint)
                headErrors[hIndex] = max(headErrors[hIndex], abs(d - f.heads[hIndex][k]) / t.scale)
            }
        }
    }
    return Comparison(result: result, opKinds: model.ops.map { $0.opKind! }, heads: model.heads,
                      finalErrorLSB: finalError, headErrorLSB: headErrors, outputRange: hi - lo,
                      outputScale: model.outputTensor.scale,
                      provenance: String(decoding: model.provenance, as: UTF8.self), info: model.info)
}

@Suite struct QuantizeTests {
    /// Conv + BN + ReLU, a GAP/Flatten/Gemm exit head on it, and a second conv + GAP + Gemm backbone.
    static func convBNReLUModel() -> ONNXBuilder {
        var b = ONNXBuilder()
        b.input("x", [1, 3, 8, 8])
        b.random("w1", [4, 3, 3, 3])
        b.random("bn_scale", [4], scale: 1); b.random("bn_bias", [4]); b.random("bn_mean", [4], scale: 0.2)
        b.initializer("bn_var", [4], [0.5, 1.0, 1.5, 2.0])
        b.node("Conv", ["x", "w1"], ["c1"], [attr("kernel_shape", ints: [3, 3]), attr("pads", ints: [1, 1, 1, 1])])
        b.node("BatchNormalization", ["c1", "bn_scale", "bn_bias", "bn_mean", "bn_var"], ["bn1"], [attr("epsilon", float: 1e-3)])
        b.node("Relu", ["bn1"], ["r1"])
        // Exit head on r1.
        b.node("GlobalAveragePool", ["r1"], ["hg"])
        b.node("Flatten", ["hg"], ["hf"], [attr("axis", int: 1)])
        b.random("hw", [5, 4]); b.random("hb", [5])
        b.node("Gemm", ["hf", "hw", "hb"], ["head0"], [attr("transB", int: 1)])
        // Backbone.
        b.random("w2", [6, 4, 3, 3]); b.random("b2", [6])
        b.node("Conv", ["r1", "w2", "b2"], ["c2"], [attr("strides", ints: [2, 2]), attr("pads", ints: [1, 1, 1, 1])])
        b.node("Relu", ["c2"], ["r2"])
        b.node("GlobalAveragePool", ["r2"], ["g"])
        b.node("Flatten", ["g"], ["f"])
        b.random("fw", [5, 6]); b.random("fb", [5])
        b.node("Gemm", ["f", "fw", "fb"], ["logits"], [attr("transB", int: 1)])
        b.output("logits"); b.output("head0")
        return b
    }

    @Test func convBNReLUWithHead() throws {
        let c = try quantizeAndCompare(Self.convBNReLUModel(), h: 8, w: 8, c: 3)
        #expect(c.opKinds == [.conv, .globalAveragePool, .fullyConnected, .conv, .globalAveragePool, .fullyConnected])
        #expect(c.heads.count == 1)
        #expect(c.heads.first.map { ($0.firstOp, $0.opCount, $0.tapTensor) } ?? (0, 0, 0) == (1, 2, 1))
        #expect(c.finalErrorLSB <= 3, "final logits off by \(c.finalErrorLSB) LSB")
        #expect(c.headErrorLSB.allSatisfy { $0 <= 3 }, "head logits off by \(c.headErrorLSB) LSB")
        #expect(c.outputRange > 10 * c.outputScale, "the test would not catch a wrong layout")
        #expect(c.result.top1Agreement > 0.9)
    }

    /// The folded conv equals Conv then BatchNormalization computed directly, in float.
    @Test func batchNormFoldingIsExact() throws {
        let b = Self.convBNReLUModel()
        let graph = try ONNXImporter.importGraph(Onnx_ModelProto(serializedBytes: b.bytes()), options: .none)
        let executor = FloatExecutor(graph: graph)
        let images = try ImageSet.parseIDX(idxImages(count: 1, h: 8, w: 8, c: 3)) { .invalidCalibrationData(path: "", reason: $0) }
        executor.run(pixels: images.image(0))
        let folded = executor.value(graph.layers[0].output)
        func initializer(_ name: String) -> [Float] {
            let t = b.graph.initializer.first { $0.name == name }!
            return t.rawData.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        }
        let w = initializer("w1"), scale = initializer("bn_scale"), shift = initializer("bn_bias")
        let mean = initializer("bn_mean"), variance = initializer("bn_var")
        let x = executor.value(graph.input)
        var worst: Float = 0
        for oc in 0..<4 {
            for oy in 0..<8 {
                for ox in 0..<8 {
                    var acc: Double = 0
                    for ci in 0..<3 {
                        for ky in 0..<3 {
                            for kx in 0..<3 {
                                let iy = oy - 1 + ky, ix = ox - 1 + kx
                                guard iy >= 0, iy < 8, ix >= 0, ix < 8 else { continue }
                                acc += Double(w[((oc * 3 + ci) * 3 + ky) * 3 + kx]) * Double(x[(ci * 8 + iy) * 8 + ix])
                            }
                        }
                    }
                    let bn = (acc - Double(mean[oc])) / (Double(variance[oc]) + 1e-3).squareRoot() * Double(scale[oc]) + Double(shift[oc])
                    worst = max(worst, abs(Float(max(bn, 0)) - folded[(oc * 8 + oy) * 8 + ox]))
                }
            }
        }
        #expect(worst < 1e-5, "folded conv differs by \(worst)")
    }

    /// Depthwise (channel multiplier 2, stride 2), grouped conv, max pool and average pool with
    /// padding, then Flatten of a 2x2 map into Gemm (the NCHW -> NHWC column permutation).
    @Test func depthwiseGroupedPoolsAndFlatten() throws {
        var b = ONNXBuilder(seed: 11)
        b.input("x", [1, 2, 12, 12])
        b.random("dw", [4, 1, 3, 3]); b.random("dwb", [4], scale: 0.1)
        b.node("Conv", ["x", "dw", "dwb"], ["d"], [attr("group", int: 2), attr("strides", ints: [2, 2]), attr("pads", ints: [1, 1, 1, 1])])
        b.node("Relu", ["d"], ["dr"])
        b.random("gw", [6, 2, 3, 3]); b.random("gb", [6], scale: 0.1)
        b.node("Conv", ["dr", "gw", "gb"], ["g"], [attr("group", int: 2), attr("auto_pad", string: "SAME_UPPER")])
        b.node("Relu", ["g"], ["gr"])
        b.node("MaxPool", ["gr"], ["mp"], [attr("kernel_shape", ints: [3, 3]), attr("strides", ints: [2, 2]), attr("pads", ints: [1, 1, 1, 1])])
        b.node("AveragePool", ["mp"], ["ap"], [attr("kernel_shape", ints: [2, 2]), attr("pads", ints: [1, 1, 0, 0])])
        b.node("Flatten", ["ap"], ["f"])
        b.random("fw", [7, 6 * 3 * 3]); b.random("fb", [7])
        b.node("Gemm", ["f", "fw", "fb"], ["logits"], [attr("transB", int: 1)])
        b.output("logits")
        let c = try quantizeAndCompare(b, h: 12, w: 12, c: 2)
        #expect(c.opKinds == [.depthwiseConv, .conv, .maxPool, .averagePool, .fullyConnected])
        #expect(c.finalErrorLSB <= 3, "final logits off by \(c.finalErrorLSB) LSB")
        #expect(c.outputRange > 10 * c.outputScale)
    }

    /// A residual Add of two activations, Clip(0, 6) as ReLU6 (min/max as initializer inputs),
    /// and MatMul + Add of a bias as the classifier; metadata names the labels and normalisation.
    @Test func residualClipAndMatMul() throws {
        var b = ONNXBuilder(seed: 5)
        b.input("x", [1, 1, 8, 8])
        b.random("w1", [4, 1, 3, 3], scale: 1); b.random("b1", [4], scale: 0.2)
        b.node("Conv", ["x", "w1", "b1"], ["c1"], [attr("pads", ints: [1, 1, 1, 1])])
        b.initializer("zero", [], [0]); b.initializer("six", [], [6])
        b.node("Clip", ["c1", "zero", "six"], ["r1"])
        b.random("w2", [4, 4, 3, 3]); b.random("b2", [4], scale: 0.2)
        b.node("Conv", ["r1", "w2", "b2"], ["c2"], [attr("pads", ints: [1, 1, 1, 1])])
        b.node("Add", ["r1", "c2"], ["sum"])
        b.node("Relu", ["sum"], ["res"])
        b.node("GlobalAveragePool", ["res"], ["g"])
        b.int64Initializer("shape", [1, -1])
        b.node("Reshape", ["g", "shape"], ["f"])
        b.random("mw", [4, 3]); b.random("mb", [3])
        b.node("MatMul", ["f", "mw"], ["mm"])
        b.node("Add", ["mm", "mb"], ["logits"])
        b.output("logits")
        b.metadata = [("sieve.labels", "[\"cat\", \"dog\", \"bird\"]"), ("sieve.input_mean", "[0.5]"),
                      ("sieve.input_std", "[0.25]"), ("sieve.pixel_scale", "1/255")]
        let c = try quantizeAndCompare(b, h: 8, w: 8)
        #expect(c.opKinds == [.conv, .conv, .add, .globalAveragePool, .fullyConnected])
        #expect(c.finalErrorLSB <= 3, "final logits off by \(c.finalErrorLSB) LSB")
        #expect(c.info.mean.0 == 0.5 && c.info.std.0 == 0.25 && c.info.classCount == 3)
        // ReLU6: the first conv's clamp stops at 6 (its range reaches past 6 on these images or is cut there).
        let graph = try ONNXImporter.importGraph(Onnx_ModelProto(serializedBytes: b.bytes()), options: .none)
        #expect(graph.layers[0].clampMin == 0 && graph.layers[0].clampMax == 6)
        #expect(graph.layers[2].clampMin == 0 && graph.layers[2].clampMax == .infinity)
        #expect(graph.labels == ["cat", "dog", "bird"])
    }

    /// Gemm with transB = 0 and MatMul + Add read their weights as [K, N]; Flatten of a 2x3 map is NCHW order.
    @Test func gemmAndMatMulSemantics() throws {
        let w: [Float] = (0..<24).map { Float($0 % 7) * 0.25 - 0.75 }   // [K = 6, N = 4]
        let bias: [Float] = [0.5, -0.25, 0.125, 1]
        for useMatMul in [false, true] {
            var b = ONNXBuilder()
            b.input("x", [1, 1, 2, 3])
            b.node("Flatten", ["x"], ["f"])
            b.initializer("w", [6, 4], w); b.initializer("b", [4], bias, asFloatData: true)
            if useMatMul {
                b.node("MatMul", ["f", "w"], ["mm"])
                b.node("Add", ["b", "mm"], ["logits"])
            } else {
                b.node("Gemm", ["f", "w", "b"], ["logits"])
            }
            b.output("logits")
            let graph = try ONNXImporter.importGraph(Onnx_ModelProto(serializedBytes: b.bytes()), options: .none)
            #expect(graph.layers.count == 1)
            let executor = FloatExecutor(graph: graph)
            let pixels: [UInt8] = [0, 51, 102, 153, 204, 255]
            executor.run(pixels: pixels)
            let out = Array(executor.value(graph.final))
            for n in 0..<4 {
                var expected = bias[n]
                for k in 0..<6 { expected += Float(pixels[k]) / 255 * w[k * 4 + n] }
                #expect(abs(out[n] - expected) < 1e-5, "\(useMatMul ? "MatMul" : "Gemm") output \(n): \(out[n]) vs \(expected)")
            }
        }
    }

    @Test func everyMethodAndProvenance() throws {
        for method in CalibrationMethod.allCases {
            let c = try quantizeAndCompare(Self.convBNReLUModel(), h: 8, w: 8, c: 3, method: method)
            #expect(c.finalErrorLSB <= 4, "\(method): final logits off by \(c.finalErrorLSB) LSB")
            let lines = c.provenance.split(separator: "\n").map(String.init)
            #expect(lines.contains("tool: sieve-quantize 0.1.0"))
            #expect(lines.contains("source: model.onnx"))
            #expect(lines.contains { $0.hasPrefix("calibration: \(method.rawValue)") && $0.hasSuffix("on 48 images from calib.idx") })
            #expect(lines.contains("weights: per-channel symmetric int8"))
            #expect(lines.filter { $0.hasPrefix("sqnr ") }.count == 6)
            #expect(lines.contains { $0.hasPrefix("sqnr logits: ") })
            let sha = lines.first { $0.hasPrefix("source_sha256: ") }?.dropFirst("source_sha256: ".count) ?? ""
            #expect(sha == Substring(SHA256.hex(Self.convBNReLUModel().bytes())))
            #expect(c.result.layers.count == 6 && c.result.layers.allSatisfy { $0.sqnr > 15 })
        }
    }
}

@Suite struct QuantizeArithmeticTests {
    @Test func fixedPointMultipliers() {
        #expect(fixedPointMultiplier(0.5)! == (1 << 30, 31))
        #expect(fixedPointMultiplier(1.0)! == (1 << 30, 30))
        #expect(fixedPointMultiplier(0.75)! == (3 << 29, 31))
        // Rounding up to 2^31 renormalises.
        #expect(fixedPointMultiplier(1.0 - 1e-12)! == (1 << 30, 30))
        // Largest expressible: shift 1.
        #expect(fixedPointMultiplier(Double(1 << 29))! == (1 << 30, 1))
        #expect(fixedPointMultiplier(Double(1 << 30)) == nil)
        // Tiny multipliers clamp to the smallest the format holds.
        #expect(fixedPointMultiplier(1e-20)! == (1 << 30, 62))
        for m in [0.001234, 0.3, 0.999, 3.7, 123.456] {
            let (q, s) = fixedPointMultiplier(m)!
            #expect(q >= 1 << 30)
            #expect(abs(Double(q) / pow(2, Double(s)) - m) / m < 1e-9)
        }
    }

    /// Depthwise multipliers keep few significant bits, so that the x86 kernels requantise with one
    /// 32-bit multiply (docs/KERNELS.md): M still in [2^30, 2^31), its low bits zero, within 2^-12 of
    /// the real multiplier, and small enough that every accumulator times M without its zero bits
    /// stays below 2^31.
    @Test func shortMultipliers() throws {
        #expect(fixedPointMultiplier(0.75, significantBits: 12)! == (3 << 29, 31))
        #expect(fixedPointMultiplier(1.0 - 1e-6, significantBits: 12)! == (1 << 30, 30))  // rounds up, renormalises
        for m in [0.001234, 0.3, 0.999, 3.7, 123.456] {
            let (q, s) = fixedPointMultiplier(m, significantBits: 12)!
            #expect(q >= 1 << 30 && q.trailingZeroBitCount >= 19)
            #expect(abs(Double(q) / pow(2, Double(s)) - m) / m <= 1.0 / 4096)
        }
        #expect(shortMultiplierBits(weightSum: 500) == 13)    // 128 * 500 < 2^16
        #expect(shortMultiplierBits(weightSum: 9 * 127) == 12)  // never fewer than 12
        #expect(shortMultiplierBits(weightSum: 0) == 22)
        #expect(shortMultiplierBits(weightSum: 144 * 40) == nil)  // a 1x1 conv over 144 channels keeps 31 bits

        var rng = SplitMix(seed: 11)
        let cout = 40, taps = 9
        let weights = (0..<(cout * taps)).map { _ in 2 * rng.uniform() - 1 }
        let bias = (0..<cout).map { _ in rng.uniform() - 0.5 }
        let inQ = QParams(scale: 0.03, zeroPoint: -20), outQ = QParams(scale: 0.04, zeroPoint: 5)
        let builder = BlobBuilder(graph: Graph(), qparams: [:])
        let short = try builder.quantizeChannels(name: "dw", weights: weights, bias: bias, cout: cout, perChannel: taps,
                                                 inQ: inQ, outQ: outQ, shortMultipliers: true)
        let full = try builder.quantizeChannels(name: "dw", weights: weights, bias: bias, cout: cout, perChannel: taps, inQ: inQ, outQ: outQ)
        #expect(short.weights == full.weights && short.bias == full.bias && short.shifts == full.shifts)
        for c in 0..<cout {
            let bound = Int(abs(short.bias[c])) + 128 * short.weights[(c * taps)..<((c + 1) * taps)].reduce(0) { $0 + abs(Int($1)) }
            let zeros = min(Int(short.multipliers[c].trailingZeroBitCount), 30)
            let m = Int(short.multipliers[c]) >> zeros
            #expect(bound * m + (1 << (Int(short.shifts[c]) - zeros - 1)) < 1 << 31, "channel \(c): bound \(bound), m \(m)")
            #expect(abs(Double(short.multipliers[c]) / Double(full.multipliers[c]) - 1) <= 1.0 / 4096)
        }
    }

    @Test func activationParams() {
        let relu = QParams(min: 0, max: 2.55)
        #expect(relu.zeroPoint == -128 && abs(relu.scale - 0.01) < 1e-7)
        let signed = QParams(min: -1, max: 1)
        #expect(signed.zeroPoint == 0 || signed.zeroPoint == -1)
        // The range always includes 0.
        let positive = QParams(min: 1, max: 3)
        #expect(positive.zeroPoint == -128 && abs(positive.scale - 3 / 255) < 1e-7)
        let negative = QParams(min: -3, max: -1)
        #expect(negative.zeroPoint == 127)
        let zero = QParams(min: 0, max: 0)
        #expect(zero.scale > 0)
    }

    @Test func histogramRanges() {
        var values: [Float] = (0..<10000).map { Float($0) / 10000 }
        values.append(100) // one outlier
        var h = Histogram(min: 0, max: 100)
        values.withUnsafeBufferPointer { h.add($0) }
        let (lo, hi) = h.percentileRange(99.99)
        #expect(lo == 0 && hi < 2, "percentile keeps the outlier: \(hi)")
        // MSE clips the far tails of a Gaussian (the optimum for 8 bits is near 4 sigma) but keeps its body.
        var rng = SplitMix(seed: 1)
        var gauss: [Float] = []
        for _ in 0..<100_000 {
            let u1 = max(rng.uniform(), 1e-7), u2 = rng.uniform()
            let r = (-2 * log(u1)).squareRoot()
            gauss += [r * cos(2 * .pi * u2), r * sin(2 * .pi * u2)]
        }
        var g = Histogram(min: gauss.min()!, max: gauss.max()!)
        gauss.withUnsafeBufferPointer { g.add($0) }
        let (mlo, mhi) = g.mseRange()
        #expect(mhi > 3 && mhi < Double(gauss.max()!) - 0.3, "mse range \(mlo)...\(mhi), max \(gauss.max()!)")
        #expect(mlo < -3 && mlo > Double(gauss.min()!) + 0.3, "mse range \(mlo)...\(mhi), min \(gauss.min()!)")
    }

    @Test func sha256() {
        #expect(SHA256.hex([]) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256.hex(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        let long = Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)
        #expect(SHA256.hex(long) == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
    }
}
