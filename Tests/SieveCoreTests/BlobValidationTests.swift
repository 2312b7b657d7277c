import Testing
import SieveCore
import SieveTestSupport

/// Every way a blob can be wrong gets its own error, and none crashes.
@Suite struct BlobValidationTests {
    func expectError(_ bytes: [UInt8], _ expected: SieveError, sourceLocation: SourceLocation = #_sourceLocation) {
        switch load(bytes) {
        case .success: Issue.record("blob loaded, expected \(expected)", sourceLocation: sourceLocation)
        case let .failure(error): #expect(error == expected, sourceLocation: sourceLocation)
        }
    }

    /// Rewrites the blob with one section replaced, so the CRCs are right and deeper checks run.
    func rewritten(_ tiny: TinyModel, _ kind: SectionKind, _ change: (inout [UInt8]) -> Void) -> [UInt8] {
        var writer = BlobWriter()
        for (k, bytes) in tiny.sections() {
            var b = bytes
            if k == kind { change(&b) }
            writer.add(k, b)
        }
        return writer.write()
    }

    @Test func validBlobLoads() throws {
        let model = try load(TinyModel().blob()).get()
        #expect(model.ops.count == 5)
        #expect(model.heads.count == 1)
        #expect(Array(model.label(1)) == Array("dog".utf8))
        #expect(model.fullMACs == 6 * 6 * 4 * 9 * 2 + 4 * 3 + 36 * 3)
    }

    @Test func truncated() {
        let blob = TinyModel().blob()
        expectError(Array(blob.prefix(blob.count - 100)), .fileSizeMismatch(declared: UInt64(blob.count), actual: blob.count - 100))
        expectError(Array(blob.prefix(40)), .fileTooSmall(size: 40))
        expectError([], .fileTooSmall(size: 0))
    }

    @Test func badMagic() {
        var blob = TinyModel().blob()
        blob[0] = UInt8(ascii: "X")
        expectError(blob, .badMagic)
    }

    @Test func wrongVersion() {
        var blob = TinyModel().blob()
        blob[8] = 2
        expectError(blob, .unsupportedVersion(2))
    }

    @Test func headerChecksum() {
        var blob = TinyModel().blob()
        blob[24] ^= 0x10  // section_count, covered by the header CRC
        guard case .failure(.headerChecksumMismatch) = load(blob) else { Issue.record("expected a header CRC error"); return }
    }

    @Test func sectionChecksum() {
        var blob = TinyModel().blob()
        blob[blob.count - 200] ^= 0x01  // inside a section payload
        guard case let .failure(error) = load(blob), case .sectionChecksumMismatch = error else {
            Issue.record("expected a section CRC error"); return
        }
    }

    @Test func sectionOffsetOutOfRange() {
        // Point the first section far past the end, then fix both CRCs so the bounds check is what fires.
        var blob = TinyModel().blob()
        let entry = 64
        let bad: UInt64 = 1 << 40
        for i in 0..<8 { blob[entry + 8 + i] = UInt8(truncatingIfNeeded: bad >> (8 * UInt64(i))) }
        refreshCRCs(&blob)
        guard case .failure(.sectionOutOfBounds(kind: 1, offset: bad, size: _, fileSize: blob.count)) = load(blob) else {
            Issue.record("expected sectionOutOfBounds, got \(load(blob))"); return
        }
    }

    @Test func tensorIndexOutOfRange() {
        var tiny = TinyModel()
        tiny.ops[3].input0 = 99
        expectError(tiny.blob(), .tensorIndexOutOfRange(op: 3, field: "input0", index: 99))
    }

    @Test func tensorReadBeforeWritten() {
        var tiny = TinyModel()
        tiny.ops[0].input0 = 4  // the pool output, written later
        expectError(tiny.blob(), .tensorIndexOutOfRange(op: 0, field: "input0", index: 4))
    }

    @Test func dataOutOfRange() {
        var tiny = TinyModel()
        tiny.ops[4].weights.offset = 1 << 20
        expectError(tiny.blob(), .dataOutOfBounds(op: 4, field: "weights", offset: 1 << 20, size: tiny.ops[4].weights.size))
    }

    @Test func weightsOfWrongSize() {
        var tiny = TinyModel()
        tiny.ops[0].weights.size -= 1
        guard case .failure(.dataOutOfBounds(op: 0, field: _, offset: _, size: _)) = load(tiny.blob()) else {
            Issue.record("expected dataOutOfBounds"); return
        }
    }

    @Test func badRequantization() {
        var tiny = TinyModel()
        tiny.data.bytes[Int(tiny.ops[0].shifts.offset)] = 0  // shift 0 is outside 1...62
        expectError(tiny.blob(), .invalidQuantization(op: 0, channel: 0, reason: "shift is outside 1...62"))
    }

    @Test func inconsistentShape() {
        var tiny = TinyModel()
        tiny.tensors[4].h = 4  // a 2x2 stride-2 pool of 6 rows gives 3
        expectError(tiny.blob(), .invalidOp(index: 3, reason: "output height/width does not follow from input, kernel, stride and padding"))
    }

    @Test func headReadingOutsideItself() {
        var tiny = TinyModel()
        tiny.ops[4].input0 = 2  // the final FC reads the head's pooled tensor
        tiny.tensors[4] = tiny.tensors[4]
        guard case .failure = load(tiny.blob()) else { Issue.record("expected an error"); return }
    }

    @Test func unknownOpKind() {
        var tiny = TinyModel()
        tiny.ops[1].kind = 42
        expectError(tiny.blob(), .unknownOpKind(index: 1, kind: 42))
    }

    @Test func badLabel() {
        var tiny = TinyModel()
        tiny.labels[2] = "bi\"rd"
        expectError(tiny.blob(), .invalidLabel(index: 2, reason: "contains a control character, quote or backslash"))
    }

    @Test func shortSection() {
        let blob = rewritten(TinyModel(), .ops) { $0.removeLast(10) }
        expectError(blob, .sectionTooSmall(name: "OPS", needed: 5 * 128, actual: 5 * 128 - 10))
    }

    @Test func missingSection() {
        var writer = BlobWriter()
        for (k, bytes) in TinyModel().sections() where k != .heads { writer.add(k, bytes) }
        expectError(writer.write(), .missingSection(name: "HEADS"))
    }

    @Test func errorsReadWell() {
        #expect(SieveError.badMagic.description == "not a Sieve blob: bad magic (expected SIEVEBLB)")
        #expect(SieveError.sectionChecksumMismatch(kind: 6, expected: 0xDEADBEEF, actual: 1).description
                == "section kind 6 CRC-32C mismatch: stored 0xdeadbeef, computed 0x00000001 (corrupt blob)")
    }

    /// Errors compare by case and payload, not by their text.
    @Test func errorsCompareByCase() {
        #expect(SieveError.invalidOp(index: 1, reason: "bad stride") == .invalidOp(index: 1, reason: "bad stride"))
        #expect(SieveError.invalidOp(index: 1, reason: "bad stride") != .invalidOp(index: 1, reason: "bad strides"))
        #expect(SieveError.invalidOp(index: 1, reason: "x") != .invalidOp(index: 2, reason: "x"))
        #expect(SieveError.invalidOp(index: 3, reason: "x") != .invalidTensor(index: 3, reason: "x"))
    }

    /// 1000 random bit flips, truncations and splices: each loads and runs to an answer on every
    /// kernel path, or is rejected with an error. Never crashes (Tools/test-sanitizers.sh runs this
    /// under AddressSanitizer too).
    @Test func randomMutationsNeverCrash() throws {
        let original = TinyModel().blob()
        var rng = SplitMix(seed: 7)
        var answered = 0, rejected = 0
        for round in 0..<1000 {
            var blob = original
            switch round % 3 {
            case 0: for _ in 0...(rng.next() % 4) { blob[Int(rng.next() % UInt64(blob.count))] ^= UInt8(1 << (rng.next() % 8)) }
            case 1: blob.removeLast(Int(rng.next() % UInt64(blob.count)))
            default:
                let a = Int(rng.next() % UInt64(blob.count)), b = Int(rng.next() % UInt64(blob.count))
                blob.replaceSubrange(min(a, b)..<max(a, b), with: original[(0)..<(max(a, b) - min(a, b))])
            }
            // Half the time repair the CRCs so mutations reach the structural checks.
            if round % 2 == 0 && blob.count >= 64 + 32 { refreshCRCs(&blob) }
            guard case let .success(model) = load(blob) else { rejected += 1; continue }
            for path in KernelPath.available {
                guard let interpreter = try? Interpreter(model: model, path: path) else { continue }
                let answer = interpreter.classify()
                #expect(answer.answer >= 0 && answer.answer < model.classCount)
            }
            answered += 1
        }
        #expect(answered + rejected == 1000 && answered > 0 && rejected > 0, "\(answered) answered, \(rejected) rejected")
    }
}

/// Recomputes the section, table and header CRCs in place, as far as the blob allows.
func refreshCRCs(_ blob: inout [UInt8]) {
    func u32(_ o: Int) -> UInt32 { UInt32(blob[o]) | UInt32(blob[o + 1]) << 8 | UInt32(blob[o + 2]) << 16 | UInt32(blob[o + 3]) << 24 }
    func u64(_ o: Int) -> UInt64 { UInt64(u32(o)) | UInt64(u32(o + 4)) << 32 }
    func put(_ v: UInt32, _ o: Int) { for i in 0..<4 { blob[o + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt32(i))) } }
    let count = Int(min(u32(24), 16))
    guard 64 + 32 * count <= blob.count else { return }
    for i in 0..<count {
        let e = 64 + 32 * i
        let offset = u64(e + 8), size = u64(e + 16)
        if size <= UInt64(blob.count), offset <= UInt64(blob.count) - size {
            put(blob[Int(offset)..<Int(offset + size)].withUnsafeBytes { crc32c($0) }, e + 24)
        }
    }
    put(blob[64..<(64 + 32 * count)].withUnsafeBytes { crc32c($0) }, 28)
    put(blob[0..<32].withUnsafeBytes { crc32c($0) }, 32)
}
