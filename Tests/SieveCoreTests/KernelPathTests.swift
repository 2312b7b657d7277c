import CAllocationCounter
import CSieveKernels
import SieveCore
import SieveTestSupport
import Testing

/// Every kernel path and thread count computes every op's output bit for bit as the scalar path on
/// one thread. (Random shapes, strides and -128 extremes are Tests/kernels/check_kernels.c's job.)
@Suite struct KernelPathTests {
    func pixels(_ model: Model, seed: UInt64) -> [UInt8] {
        var rng = SplitMix(seed: seed)
        return (0..<model.inputTensor.elementCount).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
    }

    /// Each op's output, running the ops one by one.
    func opOutputs(_ interpreter: Interpreter, image: [UInt8]) -> [[Int8]] {
        image.withUnsafeBytes { interpreter.setInput(pixels: $0) }
        return interpreter.model.ops.indices.map { i in
            interpreter.run(op: i)
            return Array(interpreter.tensor(Int(interpreter.model.ops[i].output)))
        }
    }

    @Test func everyPathAndThreadCountMatchesScalar() throws {
        let model = try load(TinyModel().blob()).get()
        let reference = try Interpreter(model: model, path: .scalar)
        #expect(KernelPath.available.first == .scalar)
        for seed: UInt64 in 1...3 {
            let image = pixels(model, seed: seed)
            let expected = opOutputs(reference, image: image)
            for path in KernelPath.available {
                for threads in [1, 2, 3] {
                    let interpreter = try Interpreter(model: model, path: path, threads: threads, smallestSplitOp: 0)
                    #expect(interpreter.path == path)
                    #expect(opOutputs(interpreter, image: image) == expected, "\(path.name), \(threads) threads")
                }
            }
        }
    }

    @Test func threadsMakeNoHeapAllocation() throws {
        let model = try load(TinyModel().blob()).get()
        let interpreter = try Interpreter(model: model, threads: 2, smallestSplitOp: 0)
        let image = pixels(model, seed: 5)
        interpreter.run()
        let count: Int64 = image.withUnsafeBytes { raw in
            allocation_counter_start()
            for _ in 0..<10 {
                interpreter.setInput(pixels: raw)
                _ = interpreter.classify()
            }
            return allocation_counter_stop()
        }
        #expect(count == 0)
    }

    @Test func badPathOrThreadCountIsAnError() throws {
        let model = try load(TinyModel().blob()).get()
        // Every case of the enum is a path the C side knows by name.
        #expect(KernelPath.allCases.count == Int(SIEVE_ISA_COUNT))
        for path in KernelPath.allCases { #expect(path.name != "unknown" && Int32(sieve_isa_named(path.name)) == path.rawValue) }
        #expect(throws: SieveError.invalidThreadCount(0)) { try Interpreter(model: model, threads: 0) }
        #expect(throws: SieveError.invalidThreadCount(65)) { try Interpreter(model: model, threads: 65) }
        // A path of the other architecture is never available.
        #if arch(x86_64)
        #expect(throws: SieveError.self) { try Interpreter(model: model, path: .neon) }
        #else
        #expect(throws: SieveError.self) { try Interpreter(model: model, path: .avx2) }
        #endif
    }
}
