import SieveTestSupport
import SieveCore
import Testing

/// CONCAT (three inputs, one identity table), MUL (per-channel broadcast) and LUT in a hand-built
/// blob: each op's output equals a transcription of docs/FORMAT.md, and the arena keeps every input
/// of a multi-input op apart from the others and from its output.
@Suite struct ElementwiseRuntimeTests {
    static let lutTable: [Int8] = (0..<256).map { Int8(truncatingIfNeeded: ($0 * 97 + 31) % 256) }
    static let concatTables: [Int8] = (0..<256).map { Int8(truncatingIfNeeded: ($0 * 13 + 5) % 256) }
        + (0..<256).map { Int8($0 - 128) }                                    // identity: a plain copy
        + (0..<256).map { Int8(truncatingIfNeeded: 255 - $0) }

    /// 0 input 4x4x2 -> 1 conv 1x1 4x4x3 -> 2 LUT -> 3 GAP 1x1x3 -> 4 MUL(2, 3) -> 5 CONCAT(4, 1, 2) 4x4x9
    /// -> 6 GAP -> 7 FC logits. Tensor 2's last reader is the CONCAT, as its third input.
    static func model() -> TinyModel {
        var m = TinyModel()
        m.tensors = [
            TensorRecord(h: 4, w: 4, c: 2, scale: 0.02, zeroPoint: -3),
            TensorRecord(h: 4, w: 4, c: 3, scale: 0.05, zeroPoint: -20),
            TensorRecord(h: 4, w: 4, c: 3, scale: 0.04, zeroPoint: 7),
            TensorRecord(h: 1, w: 1, c: 3, scale: 0.04, zeroPoint: 7),
            TensorRecord(h: 4, w: 4, c: 3, scale: 0.03, zeroPoint: -9),
            TensorRecord(h: 4, w: 4, c: 9, scale: 0.06, zeroPoint: 2),
            TensorRecord(h: 1, w: 1, c: 9, scale: 0.06, zeroPoint: 2),
            TensorRecord(h: 1, w: 1, c: 3, scale: 0.1, zeroPoint: 0),
        ]
        var conv = OpRecord(kind: .conv)
        conv.input0 = 0; conv.output = 1
        conv.kernelH = 1; conv.kernelW = 1; conv.strideH = 1; conv.strideW = 1; conv.groups = 1
        conv.weights = m.addArray(int8: [50, -70, 90, 20, -30, 110])
        conv.bias = m.addArray(int32: [300, -500, 100])
        conv.multipliers = m.addArray(int32: [1 << 30, 1_500_000_000, 1_900_000_000])
        conv.shifts = m.addArray(int32: [37, 37, 38])
        var lut = OpRecord(kind: .lut)
        lut.input0 = 1; lut.output = 2; lut.weights = m.addArray(int8: lutTable)
        var gap = OpRecord(kind: .globalAveragePool)
        gap.input0 = 2; gap.output = 3
        var mul = OpRecord(kind: .mul)
        mul.input0 = 2; mul.input1 = 3; mul.output = 4; mul.actMin = -100; mul.actMax = 120
        mul.multipliers = m.addArray(int32: [1_700_000_000]); mul.shifts = m.addArray(int32: [38])
        var concat = OpRecord(kind: .concat)
        concat.input0 = 4; concat.input1 = 1; concat.input2 = 2; concat.output = 5
        concat.weights = m.addArray(int8: concatTables)
        var gap2 = OpRecord(kind: .globalAveragePool)
        gap2.input0 = 5; gap2.output = 6
        var fc = OpRecord(kind: .fullyConnected)
        fc.input0 = 6; fc.output = 7
        fc.weights = m.addArray(int8: (0..<27).map { Int8(truncatingIfNeeded: $0 * 29 % 255 - 127) })
        fc.bias = m.addArray(int32: [10, -10, 0]); fc.multipliers = m.addArray(int32: [1 << 30, 1 << 30, 1 << 30])
        fc.shifts = m.addArray(int32: [36, 36, 36])
        m.ops = [conv, lut, gap, mul, concat, gap2, fc]
        m.heads = []
        m.info.tensorCount = 8; m.info.opCount = 7; m.info.headCount = 0; m.info.outputTensor = 7
        return m
    }

    @Test func opsFollowTheSpec() throws {
        let model = try load(Self.model().blob()).get()
        let interpreter = try Interpreter(model: model)
        var rng = SplitMix(seed: 11)
        let pixels = (0..<32).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        pixels.withUnsafeBytes { interpreter.setInput(pixels: $0) }
        var seen: [[Int8]] = [Array(interpreter.input)]
        for op in 0..<model.ops.count {
            interpreter.run(op: op)
            seen.append(Array(interpreter.tensor(op + 1)))   // tensor k is op k - 1's output
        }
        let t = model.tensors
        #expect(seen[2] == seen[1].map { Self.lutTable[Int($0) + 128] }, "LUT: out = T[q + 128]")
        var mul: [Int8] = []
        for (i, q) in seen[2].enumerated() {
            let y = seen[3][i % 3]
            let product = Int64((Int32(q) - t[2].zeroPoint) * (Int32(y) - t[3].zeroPoint))
            let r = Int32(truncatingIfNeeded: (product * 1_700_000_000 + (1 << 37)) >> 38) + t[4].zeroPoint
            mul.append(Int8(max(-100, min(120, r))))
        }
        #expect(seen[4] == mul, "MUL: rq((q0 - zp0) * (q1 - zp1)) + zp, clamped, input1 broadcast")
        var concat: [Int8] = []
        for p in 0..<16 {
            for c in 0..<3 { concat.append(Self.concatTables[Int(seen[4][p * 3 + c]) + 128]) }
            for c in 0..<3 { concat.append(seen[1][p * 3 + c]) }
            for c in 0..<3 { concat.append(Self.concatTables[512 + Int(seen[2][p * 3 + c]) + 128]) }
        }
        #expect(seen[5] == concat, "CONCAT: each input's channels in turn through its table")
        #expect(Set(seen[5]).count > 20, "the test would not notice a wrong layout")
    }

    @Test func arenaKeepsEveryInputOfAnOpApart() throws {
        let model = try load(Self.model().blob()).get()
        let plan = ArenaPlan(model: model)
        for op in model.ops {
            let used = (op.inputs + [op.output]).map { Int($0) }
            for a in used {
                for b in used where a < b {
                    let ra = plan.offsets[a]..<(plan.offsets[a] + model.tensors[a].elementCount)
                    let rb = plan.offsets[b]..<(plan.offsets[b] + model.tensors[b].elementCount)
                    #expect(!ra.overlaps(rb), "tensors \(a) and \(b) share memory while op \(op.opKind!.name) reads or writes both")
                }
            }
        }
    }

    /// The model with its LUT given three tables, one per channel (docs/FORMAT.md, LUT with table groups).
    static let groupTables: [Int8] = lutTable + concatTables[0..<256] + concatTables[512..<768]
    static func groupedModel(map: [UInt8] = [2, 0, 1], groups: UInt32 = 3) -> TinyModel {
        var m = model()
        m.ops[1].groups = groups
        m.ops[1].weights = m.addArray(int8: groupTables + map.map { Int8(bitPattern: $0) })
        return m
    }

    @Test func groupedLUTReadsEachChannelsTableOnEveryPath() throws {
        let model = try load(Self.groupedModel().blob()).get()
        var rng = SplitMix(seed: 12)
        let pixels = (0..<32).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        for path in KernelPath.available {
            let interpreter = try Interpreter(model: model, path: path)
            pixels.withUnsafeBytes { interpreter.setInput(pixels: $0) }
            interpreter.run(op: 0)
            interpreter.run(op: 1)
            let input = Array(interpreter.tensor(1)), output = Array(interpreter.tensor(2))
            let table = [2, 0, 1]
            #expect(output == input.enumerated().map { i, q in Self.groupTables[256 * table[i % 3] + Int(q) + 128] },
                    "\(path): out = T[map[c]][q + 128]")
            #expect(Set(output).count > 10, "the test would not notice a wrong table")
        }
    }

    @Test func groupedLUTWithABadMapOrTableCountIsRefused() throws {
        let cases: [(TinyModel, String)] = [
            (Self.groupedModel(map: [2, 3, 1]), "names a table"),
            (Self.groupedModel(groups: 1), "lut groups"),
            (Self.groupedModel(groups: 17), "lut groups"),
        ]
        for (m, words) in cases {
            guard case .failure(let error) = load(m.blob()) else { Issue.record("loaded: \(words)"); continue }
            #expect("\(error)".contains(words), "\(error)")
        }
        var short = Self.groupedModel()
        short.ops[1].weights = short.addArray(int8: Self.groupTables)   // no channel map
        guard case .failure(let error) = load(short.blob()) else { Issue.record("loaded without its map"); return }
        #expect("\(error)".contains("weights"), "\(error)")
        var other = Self.model()
        other.ops[3].groups = 2   // groups on a MUL
        guard case .failure(let mulError) = load(other.blob()) else { Issue.record("loaded a MUL with groups"); return }
        #expect("\(mulError)".contains("groups"), "\(mulError)")
    }

    @Test func concatReadsAnInputWrittenLaterIsRefused() throws {
        var m = Self.model()
        m.ops[4].input2 = 6   // written by the op after the concat
        guard case .failure(let error) = load(m.blob()) else { Issue.record("loaded"); return }
        #expect("\(error)".contains("input2"), "\(error)")
    }
}
