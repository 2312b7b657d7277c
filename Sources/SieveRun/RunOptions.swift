import CSieveKernels

/// sieve-run's command line. The board binary and the host CLI's `sieve run` parse the same words.
public struct RunOptions {
    public var model = ""
    public var format: Int32 = -1
    public var width: Int32 = 0, height: Int32 = 0
    public var stride: Int32 = 0
    public var input = "-"
    public var crop: (x: Int32, y: Int32, w: Int32, h: Int32)? = nil
    public var invert = false
    public var fullRange = false
    public var latest = false
    public var every = 1
    public var threads = 1
    public var exits = true
    /// Print the classifier's exact logits on every line (with `exits` off only).
    public var logits = false
    public var maxArena = 256 << 20
    public var help = false

    public static let usage = """
        usage: sieve-run MODEL.sieve --format FORMAT --size WxH [options]
        Reads raw frames from stdin (or --input PATH, a file or FIFO), classifies each and prints one
        JSON line per classified frame on stdout; a summary goes to stderr at the end.
          --format F        gray8, rgb24, bgr24, i420 (yuv420p), nv12, yuyv (yuy2)
          --size WxH        frame width and height in pixels
          --stride N        bytes per row of the first plane, for cameras that pad rows (default: none)
          --input PATH      read frames from PATH instead of stdin ('-' is stdin)
          --crop X,Y,W,H    the region to classify (default: the largest centred region
                            with the model's aspect ratio)
          --invert          invert pixel values (models trained on light-on-dark images)
          --full-range      YUV frames use full range 0-255 (default: limited, 16-235)
          --latest          keep only the newest frame when inference is slower than the camera
          --every N         classify every Nth frame (default 1)
          --threads N       threads per inference (default 1)
          --no-exits        run the whole network on every frame
          --logits          add the classifier's exact logits to each line (with --no-exits)
          --max-arena N     refuse models whose activation arena is above N bytes (K, M suffixes; default 256M)
          --help            this text
        """

    public init() {}

    public static func parse(_ words: [String]) throws(RunError) -> RunOptions {
        var options = RunOptions()
        var i = 0
        func value(_ name: String) throws(RunError) -> String {
            i += 1
            guard i < words.count else { throw .usage("\(name) needs a value") }
            return words[i]
        }
        while i < words.count {
            let word = words[i]
            if matches(word, "--help") || matches(word, "-h") {
                options.help = true
            } else if matches(word, "--format") {
                let name = try value(word)
                options.format = name.withCString { sieve_format_named($0) }
                guard options.format >= 0 else {
                    throw .usage("unknown frame format '\(name)' (expected gray8, rgb24, bgr24, i420, nv12 or yuyv)")
                }
            } else if matches(word, "--size") {
                let text = try value(word)
                let parts = split(text, on: UInt8(ascii: "x"))
                guard parts.count == 2, let w = positive(parts[0]), let h = positive(parts[1]) else {
                    throw .usage("--size must be WxH with positive numbers, got '\(text)'")
                }
                options.width = w
                options.height = h
            } else if matches(word, "--stride") {
                let text = try value(word)
                guard let s = positive(Array(text.utf8)) else { throw .usage("--stride must be a positive number, got '\(text)'") }
                options.stride = s
            } else if matches(word, "--input") {
                options.input = try value(word)
            } else if matches(word, "--crop") {
                let text = try value(word)
                let parts = split(text, on: UInt8(ascii: ","))
                guard parts.count == 4, let x = nonNegative(parts[0]), let y = nonNegative(parts[1]),
                      let w = positive(parts[2]), let h = positive(parts[3]) else {
                    throw .usage("--crop must be X,Y,W,H (X, Y >= 0; W, H > 0), got '\(text)'")
                }
                options.crop = (x, y, w, h)
            } else if matches(word, "--invert") {
                options.invert = true
            } else if matches(word, "--full-range") {
                options.fullRange = true
            } else if matches(word, "--latest") {
                options.latest = true
            } else if matches(word, "--every") {
                let text = try value(word)
                guard let n = positive(Array(text.utf8)) else { throw .usage("--every must be a positive number, got '\(text)'") }
                options.every = Int(n)
            } else if matches(word, "--threads") {
                let text = try value(word)
                guard let n = positive(Array(text.utf8)), n <= 64 else { throw .usage("--threads must be in 1...64, got '\(text)'") }
                options.threads = Int(n)
            } else if matches(word, "--max-arena") {
                let text = try value(word)
                guard let n = byteCount(Array(text.utf8)) else { throw .usage("--max-arena must be a byte count (e.g. 65536, 512K, 64M), got '\(text)'") }
                options.maxArena = n
            } else if matches(word, "--no-exits") {
                options.exits = false
            } else if matches(word, "--logits") {
                options.logits = true
            } else {
                if word.utf8.count > 1 && word.utf8.first == UInt8(ascii: "-") { throw .usage("unknown option '\(word)'") }
                guard options.model.isEmpty else { throw .usage("unexpected argument '\(word)' (the model is '\(options.model)')") }
                options.model = word
            }
            i += 1
        }
        if options.help { return options }
        guard !options.model.isEmpty else { throw .usage("no model given") }
        guard options.format >= 0 else { throw .usage("--format is required") }
        guard options.width > 0 else { throw .usage("--size is required") }
        guard !options.logits || !options.exits else {
            throw .usage("--logits needs --no-exits (an early exit skips the classifier)")
        }
        return options
    }
}

// Byte-level text helpers: comparing or splitting Strings by Character would pull Unicode
// tables (grapheme breaking, normalisation) into the board binary.

/// Whether a word is exactly this ASCII option.
func matches(_ word: String, _ option: StaticString) -> Bool {
    word.utf8.elementsEqual(UnsafeBufferPointer(start: option.utf8Start, count: option.utf8CodeUnitCount))
}

func split(_ text: String, on separator: UInt8) -> [[UInt8]] {
    var parts: [[UInt8]] = [[]]
    for b in text.utf8 {
        if b == separator { parts.append([]) } else { parts[parts.count - 1].append(b) }
    }
    return parts
}

/// A decimal number 0 ... 2^31 - 1 with nothing else around it.
func nonNegative(_ digits: [UInt8]) -> Int32? {
    guard !digits.isEmpty, digits.count <= 10 else { return nil }
    var n: Int64 = 0
    for b in digits {
        guard b >= 48 && b <= 57 else { return nil }
        n = n * 10 + Int64(b - 48)
    }
    return n <= Int64(Int32.max) ? Int32(n) : nil
}

/// A byte count: digits with an optional K or M (binary) suffix, at most 2^31 - 1 before it.
/// Computed in 64 bits; on a 32-bit target a count above Int.max is Int.max (no arena is larger).
func byteCount(_ text: [UInt8]) -> Int? {
    guard let last = text.last else { return nil }
    let unit: Int64 = last == UInt8(ascii: "K") ? 1 << 10 : (last == UInt8(ascii: "M") ? 1 << 20 : 1)
    guard let n = positive(unit == 1 ? text : Array(text.dropLast())) else { return nil }
    let bytes = Int64(n) * unit
    return bytes > Int64(Int.max) ? Int.max : Int(bytes)
}

func positive(_ digits: [UInt8]) -> Int32? {
    guard let n = nonNegative(digits), n > 0 else { return nil }
    return n
}
