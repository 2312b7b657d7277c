import ArgumentParser
import CSieveKernels
import SieveCore
import SieveRun

/// Times sieve-run's preprocessing of one camera frame: each bench image, 16x enlarged, centred on
/// a grey frame of the chosen size and format (luma from the image, neutral chroma).
final class FrameBench {
    let name: String
    private let preprocessor: Preprocessor
    private let frame: [UInt8]
    private let input: UnsafeMutablePointer<Int8>
    private let format: Int32, width: Int, height: Int
    private var times: [Double] = []

    init(size: String, format formatName: String, interpreter: Interpreter) throws {
        let options = try RunOptions.parse(["bench", "--format", formatName, "--size", size])
        let bytes = Int(sieve_frame_bytes(options.format, options.width, options.height, 0))
        name = "\(size) \(String(cString: sieve_format_name(options.format)))"
        do { preprocessor = try Preprocessor(options: options, interpreter: interpreter) } catch { throw ValidationError(error.message) }
        format = options.format
        width = Int(options.width)
        height = Int(options.height)
        frame = [UInt8](repeating: 128, count: bytes)
        input = interpreter.input.baseAddress!
    }

    /// Preprocesses a frame showing `image` (28x28 luma); keeps the time when `counted`.
    func time<Image: Collection>(image: Image, counted: Bool) where Image.Element == UInt8, Image.Index == Int {
        var copy = frame
        paint(image, into: &copy)
        let start = sieve_now_ns()
        copy.withUnsafeBufferPointer { preprocessor.run(frame: $0.baseAddress!, into: input) }
        let us = Double(sieve_now_ns() - start) / 1000
        if counted { times.append(us) }
    }

    var median: Double { times.isEmpty ? 0 : LatencyStats(times).p50 }

    /// The image's luma into every pixel of the frame's first plane it covers (packed formats: each channel).
    private func paint<Image: Collection>(_ image: Image, into frame: inout [UInt8]) where Image.Element == UInt8, Image.Index == Int {
        let side = min(width, height), x0 = (width - side) / 2, y0 = (height - side) / 2
        let perPixel = format == Int32(SIEVE_FORMAT_RGB24) || format == Int32(SIEVE_FORMAT_BGR24) ? 3 : (format == Int32(SIEVE_FORMAT_YUYV) ? 2 : 1)
        for y in 0..<side {
            for x in 0..<side {
                let v = image[image.startIndex + (y * 28 / side) * 28 + x * 28 / side]
                let at = ((y0 + y) * width + x0 + x) * perPixel
                if perPixel == 3 { frame[at] = v; frame[at + 1] = v; frame[at + 2] = v } else { frame[at] = v }
            }
        }
    }
}
