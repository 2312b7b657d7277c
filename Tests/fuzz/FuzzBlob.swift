// libFuzzer target: a blob's bytes -> load and validate -> run one frame with exits. Must reject
// or answer, never crash, hang or touch memory it should not (built with ASan; Tools/fuzz.sh).
// An input whose first byte is odd has its CRC-32Cs recomputed first, so that mutations reach the
// validation behind the checksums instead of stopping at them.
import CSieveKernels

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzBlob(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard size > 1 else { return 0 }
    let bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: size - 1, alignment: 64)
    defer { bytes.deallocate() }
    bytes.copyMemory(from: UnsafeRawBufferPointer(start: data + 1, count: size - 1))
    if data[0] & 1 == 1 { fixChecksums(bytes) }
    guard let model = try? Model(bytes: UnsafeRawBufferPointer(bytes)),
          let interpreter = try? Interpreter(model: model, maxArenaBytes: 16 << 20, path: .best) else { return 0 }
    for i in 0..<interpreter.input.count { interpreter.input[i] = Int8(truncatingIfNeeded: i &* 37) }
    _ = interpreter.classify()
    return 0
}

/// Rewrites every in-bounds section's CRC, the table's and the header's (docs/FORMAT.md offsets).
func fixChecksums(_ b: UnsafeMutableRawBufferPointer) {
    guard b.count >= 64 else { return }
    let count = Int(b.load(fromByteOffset: 24, as: UInt32.self))
    guard (1...16).contains(count), 64 + 32 * count <= b.count else { return }
    for s in 0..<count {
        let entry = 64 + 32 * s
        let offset = b.load(fromByteOffset: entry + 8, as: UInt64.self), length = b.load(fromByteOffset: entry + 16, as: UInt64.self)
        guard offset <= UInt64(b.count), length <= UInt64(b.count) - offset else { continue }
        b.storeBytes(of: sieve_crc32c(0, b.baseAddress! + Int(offset), Int(length)), toByteOffset: entry + 24, as: UInt32.self)
    }
    b.storeBytes(of: sieve_crc32c(0, b.baseAddress! + 64, 32 * count), toByteOffset: 28, as: UInt32.self)
    b.storeBytes(of: sieve_crc32c(0, b.baseAddress!, 32), toByteOffset: 32, as: UInt32.self)
}
