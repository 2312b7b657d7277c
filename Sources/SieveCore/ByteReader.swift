/// Little-endian reads from a byte range whose bounds the caller checked: every read is also
/// bounds-checked here with a precondition, so a validation bug traps instead of reading outside.
public struct ByteReader {
    public let bytes: UnsafeRawBufferPointer

    public init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    @inline(__always)
    public func u32(_ offset: Int) -> UInt32 {
        precondition(offset >= 0 && offset + 4 <= bytes.count, "read out of bounds")
        return UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    @inline(__always)
    public func u64(_ offset: Int) -> UInt64 {
        precondition(offset >= 0 && offset + 8 <= bytes.count, "read out of bounds")
        return UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }

    @inline(__always)
    public func i32(_ offset: Int) -> Int32 { Int32(bitPattern: u32(offset)) }

    @inline(__always)
    public func f32(_ offset: Int) -> Float { Float(bitPattern: u32(offset)) }

    /// True when bytes `offset ..< offset + count` are all zero (reserved fields and padding).
    public func allZero(_ offset: Int, _ count: Int) -> Bool {
        for byte in slice(offset, count) where byte != 0 { return false }
        return true
    }

    public func slice(_ offset: Int, _ count: Int) -> UnsafeRawBufferPointer {
        precondition(offset >= 0 && count >= 0 && offset + count <= bytes.count, "slice out of bounds")
        return UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + count)])
    }
}

/// Little-endian appends, for the blob writer and tests.
public struct ByteWriter {
    public var bytes: [UInt8] = []

    public init() {}

    public mutating func u32(_ value: UInt32) {
        for i in 0..<4 { bytes.append(UInt8(truncatingIfNeeded: value >> (8 * UInt32(i)))) }
    }

    public mutating func u64(_ value: UInt64) {
        for i in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: value >> (8 * UInt64(i)))) }
    }

    public mutating func i32(_ value: Int32) { u32(UInt32(bitPattern: value)) }
    public mutating func f32(_ value: Float) { u32(value.bitPattern) }

    public mutating func zeros(_ count: Int) {
        for _ in 0..<count { bytes.append(0) }
    }

    /// Pads with zeros to the next multiple of `alignment`.
    public mutating func align(_ alignment: Int) {
        let rem = bytes.count % alignment
        if rem != 0 { zeros(alignment - rem) }
    }
}
