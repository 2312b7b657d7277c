import Foundation
import SieveTestSupport
import Testing
import SieveCore

/// Exact logits (docs/FORMAT.md, "Exact logits") against the spec transcribed in Double.
@Suite struct ExactLogitsTests {
    /// z_o = acc_o * (M_o / 2^s_o) * scale / pixels, acc_o = pixels * bias_o + sum_c w[o][c] * S_c.
    func expected(_ model: Model, fc: Int, input: [Int8], pixels: Int) -> [Float] {
        let op = model.ops[fc]
        let out = model.tensors[Int(op.output)]
        let channels = input.count / pixels
        var sums = [Int64](repeating: 0, count: channels)
        for (i, v) in input.enumerated() { sums[i % channels] += Int64(v) }
        let w = model.pointer(op.weights, as: Int8.self), b = model.pointer(op.bias, as: Int32.self)
        let m = model.pointer(op.multipliers, as: Int32.self), s = model.pointer(op.shifts, as: Int32.self)
        return (0..<Int(out.c)).map { o in
            var acc = Int64(pixels) * Int64(b[o])
            for c in 0..<channels { acc += Int64(w[o * channels + c]) * sums[c] }
            return Float(Double(acc) * scalbn(Double(m[o]), -Int(s[o])) * Double(out.scale) / Double(pixels))
        }
    }

    func setRandomFrame(_ interpreter: Interpreter, _ rng: inout SplitMix) {
        let pixels = (0..<interpreter.input.count).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        pixels.withUnsafeBytes { interpreter.setInput(pixels: $0) }
    }

    @Test func headAndFinalFollowTheSpec() throws {
        let model = try load(TinyModel().blob()).get()
        let interpreter = try Interpreter(model: model)
        var rng = SplitMix(seed: 11)
        for _ in 0..<20 {
            setRandomFrame(interpreter, &rng)
            interpreter.run(op: 0)
            let tap = Array(interpreter.tensor(1))      // the conv output the head pools
            interpreter.run(op: 3)
            let pooled = Array(interpreter.tensor(4))   // the classifier's input
            interpreter.run()
            #expect(Array(interpreter.logits(head: 0)) == expected(model, fc: 2, input: tap, pixels: 36))
            #expect(Array(interpreter.finalLogits) == expected(model, fc: 4, input: pooled, pixels: 1))
        }
    }

    /// The int8 logits are the exact ones rounded (plus, for the head, the pool's rounding): they stay close.
    @Test func int8LogitsAreTheExactOnesRounded() throws {
        let model = try load(TinyModel().blob()).get()
        let interpreter = try Interpreter(model: model)
        var rng = SplitMix(seed: 3)
        for _ in 0..<20 {
            setRandomFrame(interpreter, &rng)
            interpreter.run()
            let t = model.tensors[5]
            let q = Array(interpreter.output)
            for (c, z) in interpreter.finalLogits.enumerated() where q[c] > -128 && q[c] < 127 {
                #expect(abs(Double(t.scale) * Double(Int32(q[c]) - t.zeroPoint) - Double(z)) <= Double(t.scale) / 2 * 1.0001)
            }
        }
    }

    /// TinyModel's conv (4 channels) as the classes, its global average pool writing the logits (as in
    /// SqueezeNet, whose classifier is a conv): input -> CONV -> GLOBAL_AVERAGE_POOL (final).
    func pooledLogitsModel() throws -> Model {
        var tiny = TinyModel()
        tiny.tensors = Array(tiny.tensors[0...2])
        tiny.ops = Array(tiny.ops[0...1])
        tiny.heads = []
        tiny.labels = ["cat", "dog", "bird", "fish"]
        tiny.info.tensorCount = 3; tiny.info.opCount = 2; tiny.info.headCount = 0
        tiny.info.classCount = 4; tiny.info.outputTensor = 2
        return try load(tiny.blob()).get()
    }

    /// Logits written by a global average pool are its input's channel means before int8 rounding:
    /// scale * (S_c / pixels - zero_point), in Double, rounded to Float once.
    @Test func poolLogitsAreTheExactMeans() throws {
        let model = try pooledLogitsModel()
        let interpreter = try Interpreter(model: model)
        let t = model.tensors[1]
        var rng = SplitMix(seed: 5)
        var differsFromInt8 = 0
        for _ in 0..<20 {
            setRandomFrame(interpreter, &rng)
            interpreter.run()
            let map = Array(interpreter.tensor(1))
            let expected = (0..<4).map { c -> Float in
                let sum = stride(from: c, to: map.count, by: 4).reduce(0) { $0 + Int(map[$1]) }
                return Float(Double(t.scale) * (Double(sum) / 36 - Double(t.zeroPoint)))
            }
            #expect(Array(interpreter.finalLogits) == expected)
            let q = Array(interpreter.output)
            for c in 0..<4 {
                let rounded = Double(t.scale) * Double(Int32(q[c]) - t.zeroPoint)
                #expect(abs(rounded - Double(expected[c])) <= Double(t.scale) / 2 * 1.0001)
                if Float(rounded) != expected[c] { differsFromInt8 += 1 }
            }
        }
        #expect(differsFromInt8 > 0)  // the rounding the exact means skip
    }
}
