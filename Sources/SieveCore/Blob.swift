import CSieveKernels

/// The container layer of a blob: header, section table and per-section CRC-32C, all checked
/// before any section is handed out (docs/FORMAT.md, "File layout").
public struct Blob {
    public let bytes: UnsafeRawBufferPointer
    /// Payload of each section kind, indexed by `SectionKind.rawValue`.
    public private(set) var sections: [UnsafeRawBufferPointer?]
    /// (kind, offset, size) in file order, for `sieve inspect`.
    public private(set) var table: [(kind: UInt32, offset: UInt64, size: UInt64)] = []

    public init(bytes: UnsafeRawBufferPointer) throws(SieveError) {
        self.bytes = bytes
        self.sections = [UnsafeRawBufferPointer?](repeating: nil, count: SectionKind.allCases.count + 1)
        let fileSize = bytes.count
        guard fileSize >= BlobLayout.headerSize + BlobLayout.tableEntrySize else { throw .fileTooSmall(size: fileSize) }
        let r = ByteReader(bytes)
        let m = BlobLayout.magic
        let expected: [UInt8] = [m.0, m.1, m.2, m.3, m.4, m.5, m.6, m.7]
        for i in 0..<8 where bytes[i] != expected[i] { throw .badMagic }
        let version = r.u32(8)
        guard version == BlobLayout.version else { throw .unsupportedVersion(version) }
        let headerCRC = sieve_crc32c(0, bytes.baseAddress, 32)
        guard r.u32(32) == headerCRC else { throw .headerChecksumMismatch(expected: r.u32(32), actual: headerCRC) }
        guard r.u32(12) == UInt32(BlobLayout.headerSize) else { throw .invalidModel(reason: "header_size is not 64") }
        guard r.allZero(36, 28) else { throw .reservedNotZero(field: "header bytes 36..<64", index: -1) }
        let declared = r.u64(16)
        guard declared == UInt64(fileSize) else { throw .fileSizeMismatch(declared: declared, actual: fileSize) }
        let count = r.u32(24)
        guard count >= 1 && count <= BlobLayout.maxSections else { throw .badSectionCount(count) }
        let tableBytes = Int(count) * BlobLayout.tableEntrySize
        guard BlobLayout.headerSize + tableBytes <= fileSize else { throw .fileTooSmall(size: fileSize) }
        let tableCRC = sieve_crc32c(0, bytes.baseAddress! + BlobLayout.headerSize, tableBytes)
        guard r.u32(28) == tableCRC else { throw .sectionTableChecksumMismatch(expected: r.u32(28), actual: tableCRC) }
        let dataStart = UInt64(BlobLayout.headerSize + tableBytes)

        for i in 0..<Int(count) {
            let e = BlobLayout.headerSize + i * BlobLayout.tableEntrySize
            let kind = r.u32(e), offset = r.u64(e + 8), size = r.u64(e + 16), crc = r.u32(e + 24)
            guard let section = SectionKind(rawValue: kind) else { throw .unknownSection(kind: kind) }
            guard sections[Int(kind)] == nil else { throw .duplicateSection(kind: kind) }
            guard r.u32(e + 4) == 0 && r.u32(e + 28) == 0 else { throw .reservedNotZero(field: "section table entry", index: i) }
            guard offset % UInt64(BlobLayout.alignment) == 0 else { throw .sectionMisaligned(kind: kind, offset: offset) }
            guard offset >= dataStart, size <= UInt64(fileSize), offset <= UInt64(fileSize) - size else {
                throw .sectionOutOfBounds(kind: kind, offset: offset, size: size, fileSize: fileSize)
            }
            for other in table where offset < other.offset + other.size && other.offset < offset + size {
                throw .sectionsOverlap(kind: kind, other: other.kind)
            }
            let payload = r.slice(Int(offset), Int(size))
            let actual = sieve_crc32c(0, payload.baseAddress, payload.count)
            guard actual == crc else { throw .sectionChecksumMismatch(kind: kind, expected: crc, actual: actual) }
            sections[Int(section.rawValue)] = payload
            table.append((kind, offset, size))
        }
        for kind in SectionKind.allCases where sections[Int(kind.rawValue)] == nil { throw .missingSection(name: StaticText(kind.name)) }
        try Blob.checkPadding(r, table: table)
    }

    /// Zero bytes after each payload up to the next multiple of 64, and at least 64 zero bytes
    /// after the last section: kernels may read 64 bytes past any array.
    private static func checkPadding(_ r: ByteReader, table: [(kind: UInt32, offset: UInt64, size: UInt64)]) throws(SieveError) {
        var lastEnd = 0
        for entry in table {
            let end = Int(entry.offset + entry.size)
            let padded = min(BlobLayout.roundUp(end), r.bytes.count)
            guard r.allZero(end, padded - end) else { throw .sectionPaddingNotZero(kind: entry.kind) }
            lastEnd = max(lastEnd, end)
        }
        let tail = r.bytes.count - lastEnd
        guard tail >= BlobLayout.alignment && r.allZero(lastEnd, tail) else { throw .trailerNotZero(bytes: tail) }
    }

    public func section(_ kind: SectionKind) -> UnsafeRawBufferPointer { sections[Int(kind.rawValue)]! }
}

/// CRC-32C of a byte range (docs/FORMAT.md).
public func crc32c(_ bytes: UnsafeRawBufferPointer) -> UInt32 { sieve_crc32c(0, bytes.baseAddress, bytes.count) }
