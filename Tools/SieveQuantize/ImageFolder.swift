import CImageDecode
import CSieveKernels
import Foundation
import SieveRun

extension ImageSet {
    /// The file names `loadFolder` reads: .jpg, .jpeg and .png (any case), sorted by name.
    static func imageFiles(in directory: String, fail: (String) -> QuantizeError) throws(QuantizeError) -> [String] {
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: directory) } catch {
            throw .cannotRead(path: directory, reason: (error as NSError).localizedDescription)
        }
        let images = names.filter { ["jpg", "jpeg", "png"].contains(($0 as NSString).pathExtension.lowercased()) }.sorted()
        guard !images.isEmpty else { throw fail("the folder holds no .jpg, .jpeg or .png files") }
        return images
    }

    /// The first `limit` JPEG/PNG files of `directory` (by name), each decoded by libjpeg-turbo or
    /// libpng and turned into the model's input size by sieve-run's own preprocessing
    /// (docs/FRAMES.md: the centred crop in the model's aspect ratio, the resize, RGB or luma), so calibration sees
    /// what the camera path feeds the model.
    static func loadFolder(_ directory: String, expect e: (height: Int, width: Int, channels: Int), limit: Int,
                           fail: (String) -> QuantizeError) throws(QuantizeError) -> ImageSet {
        guard e.channels == 1 || e.channels == 3 else {
            throw fail("the model takes \(e.channels) input channels; images from a folder give 1 (luma) or 3 (RGB)")
        }
        let files = try imageFiles(in: directory, fail: fail).prefix(max(1, limit))
        let size = e.height * e.width * e.channels
        var pixels = [UInt8](repeating: 0, count: files.count * size)
        // The preprocessing's table maps each channel value v to the int8 v - 128: pixels come back as v.
        let identity = (0..<(256 * e.channels)).map { Int8(truncatingIfNeeded: $0 % 256 - 128) }
        var input = [Int8](repeating: 0, count: size)
        for (n, name) in files.enumerated() {
            let path = (directory as NSString).appendingPathComponent(name)
            let bytes = try readFile(path)
            var decoded: UnsafeMutablePointer<UInt8>? = nil
            var width: Int32 = 0, height: Int32 = 0, channels: Int32 = 0
            var message = [CChar](repeating: 0, count: 256)
            let status = bytes.withUnsafeBufferPointer { b in
                sieve_decode_image(b.baseAddress, b.count, &decoded, &width, &height, &channels, &message, message.count)
            }
            guard status == 0, let frame = decoded else {
                throw .invalidCalibrationData(path: path, reason: "cannot decode: \(String(cString: message))")
            }
            defer { free(frame) }
            var options = RunOptions()
            options.format = channels == 1 ? Int32(SIEVE_FORMAT_GRAY8) : Int32(SIEVE_FORMAT_RGB24)
            options.width = width; options.height = height
            let preprocessor: Preprocessor
            do {
                preprocessor = try Preprocessor(options: options, inputTable: identity, width: Int32(e.width),
                                                height: Int32(e.height), channels: Int32(e.channels))
            } catch {
                throw .invalidCalibrationData(path: path, reason: "\(width)x\(height) image: \(error.message)")
            }
            input.withUnsafeMutableBufferPointer { preprocessor.run(frame: frame, into: $0.baseAddress!) }
            for i in 0..<size { pixels[n * size + i] = UInt8(truncatingIfNeeded: Int(input[i]) + 128) }
        }
        return ImageSet(count: files.count, height: e.height, width: e.width, channels: e.channels, pixels: pixels)
    }
}
