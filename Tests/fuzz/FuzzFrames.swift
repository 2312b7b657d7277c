// libFuzzer target: sieve-run's command-line words and one frame. The input's text up to the
// first NUL is split on spaces into words (format, size, stride, crop...); RunOptions must parse
// or refuse them, the frame size must be validated, and the preprocessing must read only the
// frame's bytes (the rest of the input, or a zero-padded copy of exactly sieve_frame_bytes).
import CSieveKernels

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzFrames(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    var end = 0
    while end < size && data[end] != 0 && end < 256 { end += 1 }
    var words: [String] = ["model.sieve"]
    var word: [UInt8] = []
    for i in 0..<end {
        if data[i] == 32 { if !word.isEmpty { words.append(String(decoding: word, as: UTF8.self)); word = [] } } else { word.append(data[i]) }
    }
    if !word.isEmpty { words.append(String(decoding: word, as: UTF8.self)) }
    guard let options = try? RunOptions.parse(words), !options.help else { return 0 }
    guard options.width <= 4096, options.height <= 4096 else { return 0 }  // keep each run small
    // A stride of megabytes makes a frame of gigabytes that the byte loop below fills for minutes.
    guard sieve_frame_bytes(options.format, options.width, options.height, options.stride) <= 64 << 20 else { return 0 }
    let table = (0..<768).map { Int8(truncatingIfNeeded: $0) }
    for channels: Int32 in [1, 3] {
        guard let preprocessor = try? Preprocessor(options: options, inputTable: table, width: 28, height: 20, channels: channels) else { return 0 }
        let bytes = Int(sieve_frame_bytes(options.format, options.width, options.height, options.stride))
        let frame = UnsafeMutablePointer<UInt8>.allocate(capacity: bytes)
        defer { frame.deallocate() }
        let payload = size - min(size, end + 1)
        for i in 0..<bytes { frame[i] = payload > 0 ? data[end + 1 + i % payload] : UInt8(truncatingIfNeeded: i) }
        let input = UnsafeMutablePointer<Int8>.allocate(capacity: 28 * 20 * Int(channels))
        defer { input.deallocate() }
        preprocessor.run(frame: frame, into: input)
    }
    return 0
}
