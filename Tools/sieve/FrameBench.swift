import ArgumentParser
import CSieveKernels
import SieveCore
import SieveRun

/// Times sieve-run's preprocessing of one camera frame. Each frame shows a bench image, enlarged to
/// the frame's height and centred on a grey frame of the chosen size and format (luma from the
/// image's first channel, neutral chroma); the frames are drawn once, before any timing. A timed
/// frame is first copied into the buffer preprocessing reads, as sieve-run's read of a frame from
/// its pipe does, so what runs before it is the network and that copy, as in sieve-run.
final class FrameBench {
    let name: String
    private let preprocessor: Preprocessor
    private let frames: [[UInt8]]
    private var buffer: [UInt8]
    private let input: UnsafeMutablePointer<Int8>
    private var times: [Double] = []

    /// `pictures`: up to 16 of them are drawn as frames (each in the model's input shape, H x W x C).
    init(size: String, format formatName: String, interpreter: Interpreter, pictures: [ArraySlice<UInt8>]) throws {
        let options = try RunOptions.parse(["bench", "--format", formatName, "--size", size])
        let bytes = Int(sieve_frame_bytes(options.format, options.width, options.height, 0))
        name = "\(size) \(String(cString: sieve_format_name(options.format)))"
        do { preprocessor = try Preprocessor(options: options, interpreter: interpreter) } catch { throw ValidationError(error.message) }
        let tensor = interpreter.model.inputTensor
        let shape = (height: Int(tensor.h), width: Int(tensor.w), channels: Int(interpreter.model.info.inputChannels))
        let grey = [UInt8](repeating: 128, count: bytes)
        frames = pictures.prefix(16).map {
            FrameBench.draw($0, shape: shape, on: grey, format: options.format, width: Int(options.width), height: Int(options.height))
        }
        buffer = grey
        input = interpreter.input.baseAddress!
    }

    /// Copies frame `index` (modulo the number drawn) into the read buffer and preprocesses it; keeps
    /// the time of the preprocessing when `counted`.
    func time(frame index: Int, counted: Bool) {
        let frame = frames.isEmpty ? nil : frames[index % frames.count]
        buffer.withUnsafeMutableBytes { to in frame?.withUnsafeBytes { to.copyMemory(from: $0) } }
        let start = sieve_now_ns()
        buffer.withUnsafeBufferPointer { preprocessor.run(frame: $0.baseAddress!, into: input) }
        let us = Double(sieve_now_ns() - start) / 1000
        if counted { times.append(us) }
    }

    var median: Double { times.isEmpty ? 0 : LatencyStats(times).p50 }

    /// `grey` with the picture's first channel in every pixel of the frame's first plane it covers
    /// (packed formats: each channel), a square as high as the frame, centred.
    private static func draw(_ picture: ArraySlice<UInt8>, shape: (height: Int, width: Int, channels: Int), on grey: [UInt8],
                             format: Int32, width: Int, height: Int) -> [UInt8] {
        var frame = grey
        let side = min(width, height), x0 = (width - side) / 2, y0 = (height - side) / 2
        let perPixel = format == Int32(SIEVE_FORMAT_RGB24) || format == Int32(SIEVE_FORMAT_BGR24) ? 3 : (format == Int32(SIEVE_FORMAT_YUYV) ? 2 : 1)
        for y in 0..<side {
            for x in 0..<side {
                let v = picture[picture.startIndex + ((y * shape.height / side) * shape.width + x * shape.width / side) * shape.channels]
                let at = ((y0 + y) * width + x0 + x) * perPixel
                if perPixel == 3 { frame[at] = v; frame[at + 1] = v; frame[at + 2] = v } else { frame[at] = v }
            }
        }
        return frame
    }
}
