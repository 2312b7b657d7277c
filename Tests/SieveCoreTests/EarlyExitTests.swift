import SieveTestSupport
import CAllocationCounter
import Testing
import SieveCore

@Suite struct EarlyExitTests {
    func interpreter(beta: Float = 0, kind: HeadKind = .exclusion, exitConfidence: Float = 0) throws -> Interpreter {
        var tiny = TinyModel()
        tiny.heads[0].kind = kind.rawValue
        tiny.heads[0].threshold = beta
        tiny.heads[0].exitConfidence = exitConfidence
        return try Interpreter(model: try load(tiny.blob()).get())
    }

    func setImage(_ i: Interpreter, seed: UInt64) {
        var rng = SplitMix(seed: seed)
        let pixels = (0..<i.input.count).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        pixels.withUnsafeBytes { i.setInput(pixels: $0) }
    }

    let convMACs = 6 * 6 * 4 * 9 * 2, headMACs = 4 * 3, classifierMACs = 36 * 3

    @Test func exitsOffRunsBackboneOnly() throws {
        let i = try interpreter(beta: 0.5)
        for seed in 0..<20 as Range<UInt64> {
            setImage(i, seed: seed)
            let result = i.classify(exits: false)
            i.run()
            #expect(result == Classification(answer: i.argmax(), exitHead: -1, survivorCount: 3, macs: convMACs + classifierMACs))
        }
    }

    @Test func headOffCostsNothing() throws {
        let i = try interpreter(beta: 0)
        setImage(i, seed: 1)
        #expect(i.classify().macs == convMACs + classifierMACs)
    }

    /// The exclusion rule against a transcription from the README over many random frames and betas.
    @Test func exclusionFollowsTheRule() throws {
        var exits = 0, finals = 0
        for beta in [Float(0.05), 0.3, 0.6, 0.9, 1.0] {
            let i = try interpreter(beta: beta)
            for seed in 0..<40 as Range<UInt64> {
                setImage(i, seed: seed * 7 + 1)
                i.run()  // every head, all rows: the scores the rule reads
                let p = Array(i.scores(head: 0))
                let top = p.indices.max { p[$0] < p[$1] || (p[$0] == p[$1] && $0 > $1) }!
                let keep = p.indices.filter { $0 == top || p[$0] > beta * p[top] }
                let final = i.argmax()
                let logits = Array(i.finalLogits)
                let result = i.classify()
                if keep.count == 1 {
                    exits += 1
                    #expect(result == Classification(answer: top, exitHead: 0, survivorCount: 1, macs: convMACs + headMACs))
                } else {
                    finals += 1
                    // The classifier ran only the surviving rows; its answer is the best survivor.
                    let expected = keep.max { logits[$0] < logits[$1] || (logits[$0] == logits[$1] && $0 > $1) }!
                    #expect(result.exitHead == -1 && result.survivorCount == keep.count && result.answer == expected)
                    #expect(result.macs == convMACs + headMACs + classifierMACs / 3 * keep.count)
                    #expect(keep.contains(final) ? result.answer == final : true)
                    #expect(Array(i.survivors) == (0..<3).map { keep.contains($0) ? 1 : 0 })
                }
            }
        }
        #expect(exits > 0 && finals > 0, "the test frames should exercise both outcomes")
    }

    @Test func confidenceHead() throws {
        var exits = 0, finals = 0
        for t in [Float(0.3), 0.35, 0.4, 0.6, 0.9] {
            let i = try interpreter(beta: t, kind: .confidence)
            for seed in 0..<30 as Range<UInt64> {
                setImage(i, seed: seed)
                i.run()
                let p = Array(i.scores(head: 0))
                let top = p.indices.max { p[$0] < p[$1] || (p[$0] == p[$1] && $0 > $1) }!
                let result = i.classify()
                if p[top] > t {
                    exits += 1
                    #expect(result == Classification(answer: top, exitHead: 0, survivorCount: 3, macs: convMACs + headMACs))
                } else {
                    finals += 1
                    #expect(result.exitHead == -1 && result.macs == convMACs + headMACs + classifierMACs)
                }
            }
        }
        #expect(exits > 0 && finals > 0)
    }

    @Test func classifyMakesNoHeapAllocation() throws {
        let i = try interpreter(beta: 0.6, exitConfidence: 0.9)
        setImage(i, seed: 5)
        _ = i.classify()
        allocation_counter_start()
        for _ in 0..<20 { _ = i.classify(); _ = i.classify(exits: false) }
        #expect(allocation_counter_stop() == 0)
    }
}
