import CSieveKernels

/// A byte buffer allocated once, for the JSON line of each frame and the summary: appending never
/// allocates while the text fits (the capacity is sized at start for the longest line).
final class LineBuffer {
    private let bytes: UnsafeMutablePointer<UInt8>
    private let capacity: Int
    private(set) var count = 0

    init(capacity: Int) {
        self.capacity = capacity
        bytes = UnsafeMutablePointer<UInt8>.allocate(capacity: capacity)
    }

    deinit { bytes.deallocate() }

    var contents: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: bytes, count: count) }

    /// Writes the contents to a file descriptor: 0, or -errno (-EPIPE: the reader went away).
    func write(to fd: Int32) -> Int32 { sieve_write_all(fd, bytes, count) }

    func clear() { count = 0 }

    func append(_ byte: UInt8) {
        guard count < capacity else { return }
        bytes[count] = byte
        count += 1
    }

    func append(_ text: StaticString) {
        let p = text.utf8Start
        for i in 0..<text.utf8CodeUnitCount { append(p[i]) }
    }

    func append(text: String) {
        for b in text.utf8 { append(b) }
    }

    func append(bytes raw: UnsafeRawBufferPointer) {
        for b in raw { append(b) }
    }

    /// Bytes as the inside of a JSON string: `"`, `\\` and control bytes escaped (\\u00XX), other
    /// bytes as they are (labels are validated UTF-8 at load; this keeps any line valid JSON).
    func append(jsonEscaping raw: UnsafeRawBufferPointer) {
        for b in raw {
            if b == UInt8(ascii: "\"") || b == UInt8(ascii: "\\") {
                append(UInt8(ascii: "\\")); append(b)
            } else if b < 0x20 || b == 0x7f {
                let hex: StaticString = "0123456789abcdef"
                append("\\u00")
                append(hex.utf8Start[Int(b >> 4)]); append(hex.utf8Start[Int(b & 15)])
            } else {
                append(b)
            }
        }
    }

    func append(_ value: Int) {
        if value < 0 { append(UInt8(ascii: "-")) }
        var magnitude = value.magnitude
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var n = 0
        withUnsafeMutableBytes(of: &digits) { d in
            repeat {
                d[n] = UInt8(48 + magnitude % 10)
                magnitude /= 10
                n += 1
            } while magnitude > 0
            while n > 0 { n -= 1; append(d[n]) }
        }
    }

    /// Floats, comma-separated, with 9 significant digits (they read back the same); null if not finite.
    func append(_ values: UnsafeBufferPointer<Float>) {
        count += Int(sieve_format_floats(bytes + count, capacity - count, values.baseAddress, Int32(values.count)))
    }

    /// Nanoseconds as microseconds with one decimal.
    func append(microsecondsFromNanoseconds ns: UInt64) {
        let tenths = Int((ns + 50) / 100)
        append(tenths / 10)
        append(UInt8(ascii: "."))
        append(tenths % 10)
    }
}
