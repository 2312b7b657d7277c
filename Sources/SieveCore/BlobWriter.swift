import CSieveKernels

/// Assembles a blob from section payloads: aligns each to 64 bytes, pads, adds the trailing
/// 64 zero bytes and fills in every CRC. The exact inverse of `Blob.init`.
public struct BlobWriter {
    private var payloads: [(kind: SectionKind, bytes: [UInt8])] = []

    public init() {}

    public mutating func add(_ kind: SectionKind, _ bytes: [UInt8]) { payloads.append((kind, bytes)) }

    public func write() -> [UInt8] {
        let tableBytes = payloads.count * BlobLayout.tableEntrySize
        var offset = roundUp(BlobLayout.headerSize + tableBytes, BlobLayout.alignment)
        var table = ByteWriter()
        var body = ByteWriter()
        for (kind, bytes) in payloads {
            table.u32(kind.rawValue); table.u32(0)
            table.u64(UInt64(offset)); table.u64(UInt64(bytes.count))
            table.u32(bytes.withUnsafeBytes { sieve_crc32c(0, $0.baseAddress, $0.count) }); table.u32(0)
            body.bytes.append(contentsOf: bytes)
            body.align(BlobLayout.alignment)
            offset = roundUp(offset + bytes.count, BlobLayout.alignment)
        }
        body.zeros(BlobLayout.alignment)
        let tablePadding = roundUp(BlobLayout.headerSize + tableBytes, BlobLayout.alignment) - BlobLayout.headerSize - tableBytes
        let fileSize = BlobLayout.headerSize + tableBytes + tablePadding + body.bytes.count

        var header = ByteWriter()
        let m = BlobLayout.magic
        header.bytes = [m.0, m.1, m.2, m.3, m.4, m.5, m.6, m.7]
        header.u32(BlobLayout.version); header.u32(UInt32(BlobLayout.headerSize))
        header.u64(UInt64(fileSize)); header.u32(UInt32(payloads.count))
        header.u32(table.bytes.withUnsafeBytes { sieve_crc32c(0, $0.baseAddress, $0.count) })
        header.u32(header.bytes.withUnsafeBytes { sieve_crc32c(0, $0.baseAddress, 32) })
        header.zeros(BlobLayout.headerSize - header.bytes.count)
        var file = header.bytes + table.bytes
        file.append(contentsOf: [UInt8](repeating: 0, count: tablePadding))
        file.append(contentsOf: body.bytes)
        return file
    }
}

@inline(__always)
public func roundUp(_ value: Int, _ alignment: Int) -> Int { (value + alignment - 1) / alignment * alignment }
