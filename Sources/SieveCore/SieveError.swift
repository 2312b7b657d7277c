/// Everything that can go wrong loading or running a model. Each case carries the
/// offending value and `description` says in one line what is wrong. Two errors are equal when
/// their cases and payloads are.
public enum SieveError: Error, Equatable, CustomStringConvertible {
    case cannotOpen(path: String, errno: Int32, reason: String)
    case fileTooSmall(size: Int)
    case badMagic
    case unsupportedVersion(UInt32)
    case fileSizeMismatch(declared: UInt64, actual: Int)
    case headerChecksumMismatch(expected: UInt32, actual: UInt32)
    case badSectionCount(UInt32)
    case sectionTableChecksumMismatch(expected: UInt32, actual: UInt32)
    case unknownSection(kind: UInt32)
    case duplicateSection(kind: UInt32)
    case missingSection(name: StaticText)
    case sectionOutOfBounds(kind: UInt32, offset: UInt64, size: UInt64, fileSize: Int)
    case sectionMisaligned(kind: UInt32, offset: UInt64)
    case sectionsOverlap(kind: UInt32, other: UInt32)
    case sectionChecksumMismatch(kind: UInt32, expected: UInt32, actual: UInt32)
    /// A reserved field or flag word that docs/FORMAT.md requires to be zero; `index` is the
    /// record's (-1: the field is not in a record).
    case reservedNotZero(field: StaticText, index: Int)
    case sectionPaddingNotZero(kind: UInt32)
    case trailerNotZero(bytes: Int)
    case sectionTooSmall(name: StaticText, needed: Int, actual: Int)
    case countOutOfRange(name: StaticText, value: UInt32)
    case invalidTensor(index: Int, reason: StaticText)
    case tensorIndexOutOfRange(op: Int, field: StaticText, index: UInt32)
    case invalidOp(index: Int, reason: StaticText)
    case unknownOpKind(index: Int, kind: UInt32)
    case dataOutOfBounds(op: Int, field: StaticText, offset: UInt32, size: UInt32)
    case invalidQuantization(op: Int, channel: Int, reason: StaticText)
    case invalidHead(index: Int, reason: StaticText)
    case invalidLabel(index: Int, reason: StaticText)
    case invalidModel(reason: StaticText)
    case arenaTooLarge(needed: Int, limit: Int)
    case outOfMemory(bytes: Int)
    case unknownKernelPath(names: String)
    case invalidThreadCount(Int)
    case cannotStartThreads(Int)
    case kernelPathUnavailable(name: String, names: String)

    public var description: String {
        switch self {
        case let .cannotOpen(path, errno, reason):
            // Sieve's own numbers (SIEVE_E*, from 100000) are no errno worth showing.
            return errno >= 100_000 ? "cannot open \(path): \(reason)" : "cannot open \(path): \(reason) (errno \(errno))"
        case let .fileTooSmall(size): return "blob truncated: \(size) bytes is smaller than the 64-byte header and table"
        case .badMagic: return "not a Sieve blob: bad magic (expected SIEVEBLB)"
        case let .unsupportedVersion(v): return "unsupported blob format version \(v) (this runtime reads version 1)"
        case let .fileSizeMismatch(declared, actual): return "blob truncated or padded: header declares \(declared) bytes, file has \(actual)"
        case let .headerChecksumMismatch(e, a): return "blob header CRC-32C mismatch: stored \(hex(e)), computed \(hex(a))"
        case let .badSectionCount(n): return "blob declares \(n) sections (allowed 1...16)"
        case let .sectionTableChecksumMismatch(e, a): return "blob section table CRC-32C mismatch: stored \(hex(e)), computed \(hex(a))"
        case let .unknownSection(kind): return "blob has an unknown section kind \(kind)"
        case let .duplicateSection(kind): return "blob has section kind \(kind) twice"
        case let .missingSection(name): return "blob has no \(name) section"
        case let .sectionOutOfBounds(kind, offset, size, fileSize): return "section kind \(kind) at offset \(offset) size \(size) runs past the end of the \(fileSize)-byte file"
        case let .sectionMisaligned(kind, offset): return "section kind \(kind) at offset \(offset) is not 64-byte aligned"
        case let .sectionsOverlap(kind, other): return "sections kind \(kind) and kind \(other) overlap"
        case let .sectionChecksumMismatch(kind, e, a): return "section kind \(kind) CRC-32C mismatch: stored \(hex(e)), computed \(hex(a)) (corrupt blob)"
        case let .reservedNotZero(field, index):
            return index < 0 ? "\(field) are not zero (reserved: a blob from a newer or broken writer)"
                : "\(field) \(index): reserved bytes are not zero (a blob from a newer or broken writer)"
        case let .sectionPaddingNotZero(kind): return "section kind \(kind) is not followed by zero bytes up to the next multiple of 64"
        case let .trailerNotZero(bytes): return "blob does not end with 64 zero bytes after its last section (\(bytes) bytes follow it, not all zero or too few)"
        case let .sectionTooSmall(name, needed, actual): return "\(name) section holds \(actual) bytes, its records need \(needed)"
        case let .countOutOfRange(name, value): return "\(name) is \(value), out of range"
        case let .invalidTensor(index, reason): return "tensor \(index): \(reason)"
        case let .tensorIndexOutOfRange(op, field, index): return "op \(op): \(field) tensor index \(index) is out of range or not yet computed"
        case let .invalidOp(index, reason): return "op \(index): \(reason)"
        case let .unknownOpKind(index, kind): return "op \(index): unknown op kind \(kind)"
        case let .dataOutOfBounds(op, field, offset, size): return "op \(op): \(field) data at offset \(offset) size \(size) is misaligned, the wrong size, or outside the DATA section"
        case let .invalidQuantization(op, channel, reason): return "op \(op) channel \(channel): \(reason)"
        case let .invalidHead(index, reason): return "head \(index): \(reason)"
        case let .invalidLabel(index, reason): return "label \(index): \(reason)"
        case let .invalidModel(reason): return "model: \(reason)"
        case let .arenaTooLarge(needed, limit): return "model needs a \(needed)-byte arena, above the \(limit)-byte limit"
        case let .outOfMemory(bytes): return "cannot allocate \(bytes) bytes"
        case let .invalidThreadCount(n): return "thread count \(n) is out of range (1...64)"
        case let .cannotStartThreads(n): return "cannot start \(n - 1) worker threads"
        case let .unknownKernelPath(names): return "SIEVE_ISA names no kernel path; this CPU has: \(names)"
        case let .kernelPathUnavailable(name, names): return "kernel path \(name) is not available on this CPU; it has: \(names)"
        }
    }

}

/// A field or reason named by a string literal: no allocation when the error is made, and
/// comparable (StaticString is not Equatable), so `SieveError` compares by case and payload.
public struct StaticText: Equatable, CustomStringConvertible, ExpressibleByStringLiteral {
    public let text: StaticString

    public init(stringLiteral text: StaticString) { self.text = text }
    public init(_ text: StaticString) { self.text = text }

    public var description: String { text.description }

    public static func == (lhs: StaticText, rhs: StaticText) -> Bool {
        let a = UnsafeBufferPointer(start: lhs.text.utf8Start, count: lhs.text.utf8CodeUnitCount)
        let b = UnsafeBufferPointer(start: rhs.text.utf8Start, count: rhs.text.utf8CodeUnitCount)
        return a.elementsEqual(b)
    }
}

func hex(_ value: UInt32) -> String {
    let digits: StaticString = "0123456789abcdef"
    var text = "0x"
    var shift: UInt32 = 28
    while true {
        let nibble = Int((value >> shift) & 0xF)
        text.append(Character(Unicode.Scalar(digits.utf8Start[nibble])))
        if shift == 0 { break }
        shift -= 4
    }
    return text
}
