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
    public var help = false

    public static let usage = """
        usage: sieve-run MODEL.sieve --format FORMAT --size WxH [options]
        Reads raw frames from stdin (or --input PATH, a file or FIFO), classifies each and prints one
        JSON line per classified frame on stdout; a summary goes to stderr at the end.
          --format F        gray8, rgb24, bgr24, i420 (yuv420p), nv12, yuyv (yuy2)
          --size WxH        frame width and height in pixels
          --stride N        bytes per row of the first plane, for cameras that pad rows (default: none)
          --input PATH      read frames from PATH instead of stdin ('-' is stdin)
          --crop X,Y,W,H    the region to classify (default: the centred square)
          --invert          invert pixel values (models trained on light-on-dark images)
          --full-range      YUV frames use full range 0-255 (default: limited, 16-235)
          --latest          keep only the newest frame when inference is slower than the camera
          --every N         classify every Nth frame (default 1)
          --threads N       threads per inference (default 1)
          --no-exits        run the whole network on every frame
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
            switch word {
            case "--help", "-h": options.help = true
            case "--format":
                let name = try value(word)
                options.format = name.withCString { sieve_format_named($0) }
                guard options.format >= 0 else {
                    throw .usage("unknown frame format '\(name)' (expected gray8, rgb24, bgr24, i420, nv12 or yuyv)")
                }
            case "--size":
                let text = try value(word)
                let parts = split(text, on: "x")
                guard parts.count == 2, let w = positive(parts[0]), let h = positive(parts[1]) else {
                    throw .usage("--size must be WxH with positive numbers, got '\(text)'")
                }
                options.width = w
                options.height = h
            case "--stride":
                let text = try value(word)
                guard let s = positive(text) else { throw .usage("--stride must be a positive number, got '\(text)'") }
                options.stride = s
            case "--input": options.input = try value(word)
            case "--crop":
                let text = try value(word)
                let parts = split(text, on: ",")
                guard parts.count == 4, let x = nonNegative(parts[0]), let y = nonNegative(parts[1]),
                      let w = positive(parts[2]), let h = positive(parts[3]) else {
                    throw .usage("--crop must be X,Y,W,H (X, Y >= 0; W, H > 0), got '\(text)'")
                }
                options.crop = (x, y, w, h)
            case "--invert": options.invert = true
            case "--full-range": options.fullRange = true
            case "--latest": options.latest = true
            case "--every":
                let text = try value(word)
                guard let n = positive(text) else { throw .usage("--every must be a positive number, got '\(text)'") }
                options.every = Int(n)
            case "--threads":
                let text = try value(word)
                guard let n = positive(text), n <= 64 else { throw .usage("--threads must be in 1...64, got '\(text)'") }
                options.threads = Int(n)
            case "--no-exits": options.exits = false
            default:
                if word.hasPrefix("-") && word != "-" { throw .usage("unknown option '\(word)'") }
                guard options.model.isEmpty else { throw .usage("unexpected argument '\(word)' (the model is '\(options.model)')") }
                options.model = word
            }
            i += 1
        }
        if options.help { return options }
        guard !options.model.isEmpty else { throw .usage("no model given") }
        guard options.format >= 0 else { throw .usage("--format is required") }
        guard options.width > 0 else { throw .usage("--size is required") }
        return options
    }
}

func split(_ text: String, on separator: Character) -> [String] {
    var parts: [String] = [""]
    for c in text {
        if c == separator { parts.append("") } else { parts[parts.count - 1].append(c) }
    }
    return parts
}

/// A decimal number 0 ... 2^31 - 1 with nothing else around it.
func nonNegative(_ text: String) -> Int32? {
    guard !text.isEmpty, text.utf8.count <= 10 else { return nil }
    var n: Int64 = 0
    for b in text.utf8 {
        guard b >= 48 && b <= 57 else { return nil }
        n = n * 10 + Int64(b - 48)
    }
    return n <= Int64(Int32.max) ? Int32(n) : nil
}

func positive(_ text: String) -> Int32? {
    guard let n = nonNegative(text), n > 0 else { return nil }
    return n
}
