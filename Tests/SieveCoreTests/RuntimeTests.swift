import SieveTestSupport
import CAllocationCounter
import Foundation
import CSieveKernels
import Testing
import SieveCore

@Suite struct RuntimeTests {
    @Test func requantizeRoundsHalfUp() {
        // M = 2^30, s = 31 is a multiplier of exactly 0.5: ties go towards +infinity.
        #expect(sieve_requantize(5, 1 << 30, 31) == 3)
        #expect(sieve_requantize(-5, 1 << 30, 31) == -2)
        #expect(sieve_requantize(4, 1 << 30, 31) == 2)
        #expect(sieve_requantize(Int32.max, Int32.max, 62) == 1)
        #expect(sieve_requantize(Int32.min, Int32.max, 32) == Int32.min / 2 + 1)
    }

    @Test func crc32cCheckValue() {
        #expect(Array("123456789".utf8).withUnsafeBytes { crc32c($0) } == 0xE306_9283)
    }

    func pixels(_ model: Model, seed: UInt64) -> [UInt8] {
        var rng = SplitMix(seed: seed)
        return (0..<model.inputTensor.elementCount).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
    }

    /// The interpreter's conv, pool and FC outputs equal a direct transcription of docs/FORMAT.md.
    @Test func matchesSpecTranscription() throws {
        let model = try load(TinyModel().blob()).get()
        let interpreter = try Interpreter(model: model)
        let image = pixels(model, seed: 1)
        image.withUnsafeBytes { interpreter.setInput(pixels: $0) }
        let x = Array(interpreter.input)
        #expect(x.contains(-128) || x.contains(127) || Set(x).count > 10)

        // CONV, op 0: run it alone and compare every output.
        interpreter.run(op: 0)
        let conv = model.ops[0]
        let w = model.pointer(conv.weights, as: Int8.self), b = model.pointer(conv.bias, as: Int32.self)
        let m = model.pointer(conv.multipliers, as: Int32.self), s = model.pointer(conv.shifts, as: Int32.self)
        let zpIn = Int64(model.tensors[0].zeroPoint), zpOut = Int64(model.tensors[1].zeroPoint)
        var expected: [Int8] = []
        for oy in 0..<6 { for ox in 0..<6 { for oc in 0..<4 {
            var acc = Int64(b[oc])
            for ky in 0..<3 { for kx in 0..<3 { for ci in 0..<2 {
                let iy = oy - 1 + ky, ix = ox - 1 + kx
                let v = (iy < 0 || iy >= 6 || ix < 0 || ix >= 6) ? zpIn : Int64(x[(iy * 6 + ix) * 2 + ci])
                acc += Int64(w[((oc * 3 + ky) * 3 + kx) * 2 + ci]) * v
            } } }
            let r = (acc * Int64(m[oc]) + (Int64(1) << (Int64(s[oc]) - 1))) >> Int64(s[oc])
            expected.append(Int8(max(Int64(conv.actMin), min(Int64(conv.actMax), r + zpOut))))
        } } }
        let got = Array(interpreter.tensor(1))
        #expect(got == expected)
        #expect(Set(got).count > 5, "test data should not saturate")

        // MAX_POOL, op 3.
        interpreter.run(op: 3)
        let pooled = Array(interpreter.tensor(4))
        for oy in 0..<3 { for ox in 0..<3 { for c in 0..<4 {
            let window = [(0, 0), (0, 1), (1, 0), (1, 1)].map { got[((2 * oy + $0.0) * 6 + 2 * ox + $0.1) * 4 + c] }
            #expect(pooled[(oy * 3 + ox) * 4 + c] == window.max()!)
        } } }
    }

    @Test func headScoresAreSigmoidsOfLogits() throws {
        let model = try load(TinyModel().blob()).get()
        let interpreter = try Interpreter(model: model)
        pixels(model, seed: 2).withUnsafeBytes { interpreter.setInput(pixels: $0) }
        interpreter.run()
        let logits = Array(interpreter.logits(head: 0))  // ExactLogitsTests checks them against the spec
        let scores = Array(interpreter.scores(head: 0))
        for i in 0..<3 {
            let z = Double(logits[i])
            #expect(abs(Double(scores[i]) - 1 / (1 + exp(-z))) < 1e-6)
        }
    }

    @Test func runMakesNoHeapAllocation() throws {
        let model = try load(TinyModel().blob()).get()
        let interpreter = try Interpreter(model: model)
        let image = pixels(model, seed: 3)
        interpreter.run()  // warm up anything lazy
        let count: Int64 = image.withUnsafeBytes { raw in
            allocation_counter_start()
            for _ in 0..<10 {
                interpreter.setInput(pixels: raw)
                interpreter.run()
                _ = interpreter.argmax()
                _ = interpreter.scores(head: 0)
            }
            return allocation_counter_stop()
        }
        #expect(count == 0)
        // The counter works: an array allocation is seen.
        allocation_counter_start()
        let array = [Int](repeating: Int(image[0]), count: 1000)
        #expect(allocation_counter_stop() >= 1)
        #expect(array.count == 1000)
    }

    @Test func arenaPlanNeverOverlapsLiveTensors() throws {
        let model = try load(TinyModel().blob()).get()
        let plan = ArenaPlan(model: model)
        #expect(plan.bytes < plan.unsharedBytes)
        #expect(plan.offsets.allSatisfy { $0 % 64 == 0 })
        // Running ops one by one, every input an op reads must still hold what its producer wrote.
        let interpreter = try Interpreter(model: model)
        pixels(model, seed: 4).withUnsafeBytes { interpreter.setInput(pixels: $0) }
        interpreter.run()
        let all = Array(interpreter.output)
        let head = Array(interpreter.tensor(3))
        // Re-run with a fresh arena, the whole graph at once: same results.
        let other = try Interpreter(model: model)
        pixels(model, seed: 4).withUnsafeBytes { other.setInput(pixels: $0) }
        other.run()
        #expect(Array(other.output) == all)
        #expect(Array(other.tensor(3)) == head)
    }

    /// The input stays intact through a run, so classifying again without setting it gives the same answer.
    @Test func runDoesNotClobberItsInput() throws {
        let model = try load(TinyModel().blob()).get()
        let interpreter = try Interpreter(model: model)
        pixels(model, seed: 9).withUnsafeBytes { interpreter.setInput(pixels: $0) }
        let before = Array(interpreter.input)
        interpreter.run()
        let first = Array(interpreter.output)
        #expect(Array(interpreter.input) == before)
        interpreter.run()
        #expect(Array(interpreter.output) == first)
    }

    @Test func callerArena() throws {
        let model = try load(TinyModel().blob()).get()
        let plan = ArenaPlan(model: model)
        let memory = UnsafeMutableRawBufferPointer.allocate(byteCount: plan.bytes, alignment: 64)
        defer { memory.deallocate() }
        let interpreter = try Interpreter(model: model, arena: memory)
        interpreter.run()
        let small = UnsafeMutableRawBufferPointer(rebasing: memory[0..<(plan.bytes - 64)])
        #expect(throws: SieveError.arenaTooLarge(needed: plan.bytes, limit: plan.bytes - 64)) { try Interpreter(model: model, arena: small) }
        #expect(throws: SieveError.arenaTooLarge(needed: plan.bytes, limit: 64)) { try Interpreter(model: model, maxArenaBytes: 64) }
    }

    @Test func missingFile() {
        #expect(throws: SieveError.cannotOpen(path: "/nonexistent/x.sieve", errno: 2, reason: "No such file or directory")) {
            try ModelFile(path: "/nonexistent/x.sieve")
        }
    }
}
