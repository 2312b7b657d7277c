import CZlib
import Foundation

/// A stack of u8 images, each `height x width x channels` in HWC order (the order
/// `Interpreter.setInput(pixels:)` takes), read from an IDX or .npy file.
public struct ImageSet {
    public let count: Int
    public let height: Int
    public let width: Int
    public let channels: Int
    /// `count * height * width * channels` bytes, image after image, each HWC.
    public let pixels: [UInt8]

    public var imageSize: Int { height * width * channels }

    public init(count: Int, height: Int, width: Int, channels: Int, pixels: [UInt8]) {
        precondition(pixels.count == count * height * width * channels)
        self.count = count; self.height = height; self.width = width; self.channels = channels; self.pixels = pixels
    }

    /// Image `i`, HWC.
    public func image(_ i: Int) -> ArraySlice<UInt8> { pixels[(i * imageSize)..<((i + 1) * imageSize)] }

    /// Reads IDX (ubyte, `[N,H,W]` or `[N,H,W,C]`) or .npy (uint8, one image or many: `[H,W]`,
    /// `[N,H,W]`, `[H,W,C]`, `[C,H,W]`, `[N,H,W,C]`, `[N,C,H,W]`), either of them optionally gzipped,
    /// or, with `expect`, a folder of JPEG/PNG files (ImageFolder.swift; the first `limit` by name).
    /// `expect` (height, width, channels), when given, decides the .npy layout and is checked
    /// against the file's image size.
    /// `calibration` false: errors speak of images (evaluation, tuning), not calibration data.
    public static func load(path: String, expect: (height: Int, width: Int, channels: Int)? = nil,
                            calibration: Bool = true, limit: Int = Int.max) throws(QuantizeError) -> ImageSet {
        func fail(_ reason: String) -> QuantizeError {
            calibration ? .invalidCalibrationData(path: path, reason: reason) : .invalidImageData(path: path, reason: reason)
        }
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue {
            guard let e = expect else { throw fail("is a folder; folders of images are read for a model's input only") }
            return try loadFolder(path, expect: e, limit: limit, fail: fail)
        }
        var bytes = try readFile(path)
        if bytes.count >= 2 && bytes[0] == 0x1F && bytes[1] == 0x8B {
            do { bytes = try gunzipDeclared(bytes) } catch { throw fail(error.reason) }
        }
        let set: ImageSet
        if bytes.count >= 6 && Array(bytes[0..<6]) == [0x93] + Array("NUMPY".utf8) {
            set = try parseNPY(bytes, expect: expect, fail: fail)
        } else if bytes.count >= 4 && bytes[0] == 0 && bytes[1] == 0 {
            set = try parseIDX(bytes, fail: fail)
        } else {
            throw fail("not an IDX or .npy file (unknown magic \(hexBytes(bytes.prefix(4))))")
        }
        if let e = expect, (set.height, set.width, set.channels) != (e.height, e.width, e.channels) {
            throw fail("images are \(set.height)x\(set.width)x\(set.channels) (HxWxC), the model takes \(e.height)x\(e.width)x\(e.channels)")
        }
        return set
    }

    static func parseIDX(_ b: [UInt8], fail: (String) -> QuantizeError) throws(QuantizeError) -> ImageSet {
        guard b[2] == 0x08 else { throw fail("IDX element type 0x\(String(b[2], radix: 16)) is not unsigned byte (0x08)") }
        let ndim = Int(b[3])
        guard ndim == 3 || ndim == 4 else { throw fail("IDX file has \(ndim) dimensions; images need [N,H,W] or [N,H,W,C]") }
        guard b.count >= 4 + 4 * ndim else { throw fail("truncated IDX header") }
        var dims: [Int] = []
        for d in 0..<ndim {
            let o = 4 + 4 * d
            dims.append(Int(b[o]) << 24 | Int(b[o + 1]) << 16 | Int(b[o + 2]) << 8 | Int(b[o + 3]))
        }
        if ndim == 3 { dims.append(1) }
        return try makeSet(dims: dims, bytes: b, offset: 4 + 4 * ndim, nchw: false, fail: fail)
    }

    static func parseNPY(_ b: [UInt8], expect: (height: Int, width: Int, channels: Int)?,
                         fail: (String) -> QuantizeError) throws(QuantizeError) -> ImageSet {
        guard b.count >= 10 else { throw fail("truncated .npy header") }
        let major = b[6]
        let headerLength: Int, start: Int
        switch major {
        case 1: headerLength = Int(b[8]) | Int(b[9]) << 8; start = 10
        case 2, 3:
            guard b.count >= 12 else { throw fail("truncated .npy header") }
            headerLength = Int(b[8]) | Int(b[9]) << 8 | Int(b[10]) << 16 | Int(b[11]) << 24; start = 12
        default: throw fail(".npy format version \(major) is not supported")
        }
        guard b.count >= start + headerLength else { throw fail("truncated .npy header") }
        guard let header = String(bytes: b[start..<(start + headerLength)], encoding: .utf8) else { throw fail(".npy header is not text") }
        func field(_ key: String) -> String? {
            guard let r = header.range(of: "'\(key)':") else { return nil }
            return String(header[r.upperBound...]).trimmingCharacters(in: .whitespaces)
        }
        guard let descr = field("descr"), let q = descr.dropFirst().firstIndex(of: "'") else { throw fail(".npy header has no 'descr'") }
        let dtype = String(descr[descr.index(after: descr.startIndex)..<q])
        guard ["|u1", "u1", "<u1", ">u1"].contains(dtype) else {
            throw fail(".npy dtype '\(dtype)' is not uint8")
        }
        if let fortran = field("fortran_order"), fortran.hasPrefix("True") { throw fail(".npy array is in Fortran order; save it C-contiguous") }
        guard let shapeText = field("shape"), shapeText.hasPrefix("("), let close = shapeText.firstIndex(of: ")") else {
            throw fail(".npy header has no 'shape'")
        }
        var dims: [Int] = []
        for part in shapeText[shapeText.index(after: shapeText.startIndex)..<close].split(separator: ",") {
            let t = part.trimmingCharacters(in: .whitespaces)
            if t.isEmpty { continue }
            guard let v = Int(t), v >= 0 else { throw fail(".npy shape \(shapeText[...close]) does not parse") }
            dims.append(v)
        }
        let offset = start + headerLength
        let layout = try npyLayout(dims, expect: expect, fail: fail)
        return try makeSet(dims: layout.dims, bytes: b, offset: offset, nchw: layout.channelMajor, fail: fail)
    }

    /// A .npy shape as [N, H, W, C] and whether its bytes are channel-major ([N,C,H,W] or [C,H,W]).
    /// With the model's input size the layout that matches it is taken (HWC before CHW when both
    /// do); a shape no layout matches is an error naming both sizes. Without it: [N,H,W] for three
    /// dimensions, and for four a last axis of 1...4 reads as channels.
    static func npyLayout(_ d: [Int], expect: (height: Int, width: Int, channels: Int)?,
                          fail: (String) -> QuantizeError) throws(QuantizeError) -> (dims: [Int], channelMajor: Bool) {
        let shape = "(" + d.map(String.init).joined(separator: ", ") + ")"
        guard let e = expect else {
            switch d.count {
            case 2: return ([1, d[0], d[1], 1], false)
            case 3: return (d + [1], false)
            case 4:
                let nchw = !(1...4).contains(d[3]) && (1...4).contains(d[1])
                return (nchw ? [d[0], d[2], d[3], d[1]] : d, nchw)
            default: throw fail(".npy array has \(d.count) dimensions, shape \(shape); images need [H,W], [N,H,W], [H,W,C], [C,H,W], [N,H,W,C] or [N,C,H,W]")
            }
        }
        // Candidate readings in order of preference: (name, [N,H,W,C], channel-major).
        var candidates: [(String, [Int], Bool)] = []
        switch d.count {
        case 2: candidates = [("HxW", [1, d[0], d[1], 1], false)]
        case 3: candidates = [("HxWxC", [1, d[0], d[1], d[2]], false), ("NxHxW", [d[0], d[1], d[2], 1], false),
                              ("CxHxW", [1, d[1], d[2], d[0]], true)]
        case 4: candidates = [("NxHxWxC", d, false), ("NxCxHxW", [d[0], d[2], d[3], d[1]], true)]
        default: throw fail(".npy array has \(d.count) dimensions, shape \(shape); images need [H,W], [N,H,W], [H,W,C], [C,H,W], [N,H,W,C] or [N,C,H,W]")
        }
        for (_, dims, channelMajor) in candidates where dims[1] == e.height && dims[2] == e.width && dims[3] == e.channels {
            return (dims, channelMajor)
        }
        let readings = candidates.map { "\($0.0) gives \($0.1[0]) of \($0.1[1])x\($0.1[2])x\($0.1[3])" }.joined(separator: ", ")
        throw fail(".npy shape \(shape) holds no \(e.height)x\(e.width)x\(e.channels) (HxWxC) images, the model's input (\(readings))")
    }

    /// `dims` is [N, H, W, C]; with `nchw` the bytes are stored [N, C, H, W] and get transposed.
    static func makeSet(dims: [Int], bytes b: [UInt8], offset: Int, nchw: Bool, fail: (String) -> QuantizeError) throws(QuantizeError) -> ImageSet {
        let (n, h, w, c) = (dims[0], dims[1], dims[2], dims[3])
        guard n >= 1 else { throw fail("holds no images") }
        guard h >= 1, w >= 1, c >= 1, h <= 65535, w <= 65535, c <= 4 else {
            throw fail("image shape \(h)x\(w)x\(c) (HxWxC) is not an image of 1...4 channels")
        }
        let (size, o1) = n.multipliedReportingOverflow(by: h * w * c)
        guard !o1, size <= b.count - offset else {
            throw fail("truncated: the header declares \(n) images of \(h)x\(w)x\(c) bytes, the file holds \(b.count - offset) data bytes")
        }
        if !nchw { return ImageSet(count: n, height: h, width: w, channels: c, pixels: Array(b[offset..<(offset + size)])) }
        var out = [UInt8](repeating: 0, count: size)
        let plane = h * w
        for i in 0..<n {
            let base = offset + i * plane * c, dst = i * plane * c
            for ch in 0..<c { for p in 0..<plane { out[dst + p * c + ch] = b[base + ch * plane + p] } }
        }
        return ImageSet(count: n, height: h, width: w, channels: c, pixels: out)
    }
}

/// Reads a whole file. The error names the file and the OS's reason.
func readFile(_ path: String) throws(QuantizeError) -> [UInt8] {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { throw .cannotRead(path: path, reason: "no such file") }
    guard !isDirectory.boolValue else { throw .cannotRead(path: path, reason: "is a directory") }
    // A device or FIFO (/dev/zero) would be read forever: only regular files.
    guard let attributes = try? FileManager.default.attributesOfItem(atPath: path),
          attributes[.type] as? FileAttributeType == .typeRegular else { throw .cannotRead(path: path, reason: "not a regular file") }
    do {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        return [UInt8](data)
    } catch {
        throw .cannotRead(path: path, reason: (error as NSError).localizedDescription)
    }
}

func hexBytes<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
    bytes.map { String(format: "%02x", $0) }.joined(separator: " ")
}

struct GzipError: Error { let reason: String }

/// The most a gzipped image or label file may decompress to (a gzip bomb stops here).
let maxDecompressedBytes = 1 << 30

/// Inflates a gzipped IDX or .npy file, no further than its header declares: an IDX file's header
/// gives its size (trailing bytes are never inflated), any other file stops at
/// maxDecompressedBytes. A header declaring more than that is an error before anything large is
/// allocated.
func gunzipDeclared(_ input: [UInt8]) throws(GzipError) -> [UInt8] {
    let head = try gunzip(input, limit: 64).bytes
    var limit = maxDecompressedBytes
    if head.count >= 4 && head[0] == 0 && head[1] == 0 && head[2] == 0x08 && head.count >= 4 + 4 * Int(head[3]) {
        // The data bytes: the product of the dims (one byte each, element type 0x08).
        var data = 1
        var overflow = false
        for d in 0..<Int(head[3]) {
            let o = 4 + 4 * d
            let dim = Int(head[o]) << 24 | Int(head[o + 1]) << 16 | Int(head[o + 2]) << 8 | Int(head[o + 3])
            let (p, o1) = data.multipliedReportingOverflow(by: dim)
            if o1 || p > maxDecompressedBytes { overflow = true; break }
            data = p
        }
        guard !overflow, 4 + 4 * Int(head[3]) + data <= maxDecompressedBytes else {
            throw GzipError(reason: "the IDX header declares more than \(maxDecompressedBytes >> 30) GiB of data")
        }
        limit = 4 + 4 * Int(head[3]) + data
    }
    let (bytes, stopped) = try gunzip(input, limit: limit)
    if stopped && limit == maxDecompressedBytes {
        throw GzipError(reason: "decompresses to more than \(maxDecompressedBytes >> 30) GiB")
    }
    return bytes
}

/// Inflates a gzip (or zlib) stream with zlib, at most `limit` bytes: `stopped` says the stream
/// held more.
func gunzip(_ input: [UInt8], limit: Int = Int.max) throws(GzipError) -> (bytes: [UInt8], stopped: Bool) {
    var stream = z_stream()
    guard inflateInit2_(&stream, 15 + 32, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
        throw GzipError(reason: "cannot initialise zlib")
    }
    defer { inflateEnd(&stream) }
    var output = [UInt8](repeating: 0, count: max(1, min(max(1 << 16, input.count * 4), limit)))
    var produced = 0
    var status: Int32 = Z_OK
    var stopped = false
    input.withUnsafeBufferPointer { inBuf in
        stream.next_in = UnsafeMutablePointer(mutating: inBuf.baseAddress!)
        stream.avail_in = UInt32(inBuf.count)
        while true {
            if produced == limit { stopped = true; break }
            if produced == output.count {
                output.append(contentsOf: [UInt8](repeating: 0, count: min(output.count, limit - output.count)))
            }
            status = output.withUnsafeMutableBufferPointer { outBuf -> Int32 in
                stream.next_out = outBuf.baseAddress! + produced
                stream.avail_out = UInt32(min(outBuf.count - produced, Int(UInt32.max)))
                let before = stream.avail_out
                let r = inflate(&stream, Z_NO_FLUSH)
                produced += Int(before - stream.avail_out)
                return r
            }
            if status == Z_STREAM_END || (status != Z_OK && status != Z_BUF_ERROR) { break }
            if status == Z_BUF_ERROR && stream.avail_in == 0 { break }
        }
    }
    if stopped {
        // The limit was reached: whether the stream had ended exactly there does not matter.
        return (Array(output[0..<produced]), status != Z_STREAM_END)
    }
    switch status {
    case Z_STREAM_END: return (Array(output[0..<produced]), false)
    case Z_BUF_ERROR: throw GzipError(reason: "truncated gzip stream (after \(produced) decompressed bytes)")
    case Z_DATA_ERROR: throw GzipError(reason: "corrupt gzip data")
    case Z_MEM_ERROR: throw GzipError(reason: "out of memory while decompressing")
    default: throw GzipError(reason: "zlib error \(status)")
    }
}

/// Compresses to the gzip format with zlib (tests write gzipped IDX files with it).
func gzipCompress(_ input: [UInt8]) -> [UInt8] {
    var stream = z_stream()
    guard deflateInit2_(&stream, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY,
                        zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else { return [] }
    defer { deflateEnd(&stream) }
    var output = [UInt8](repeating: 0, count: Int(deflateBound(&stream, UInt(input.count))) + 64)
    var input = input
    let produced = input.withUnsafeMutableBufferPointer { inBuf in
        output.withUnsafeMutableBufferPointer { outBuf -> Int in
            stream.next_in = inBuf.baseAddress
            stream.avail_in = UInt32(inBuf.count)
            stream.next_out = outBuf.baseAddress
            stream.avail_out = UInt32(outBuf.count)
            _ = deflate(&stream, Z_FINISH)
            return outBuf.count - Int(stream.avail_out)
        }
    }
    return Array(output[0..<produced])
}

extension ImageSet {
    /// Deterministic pictures for timing a model no bundled images fit: smooth gradients with a
    /// seeded pattern on top, different in every image.
    public static func synthetic(count: Int, height: Int, width: Int, channels: Int) -> ImageSet {
        var pixels = [UInt8](repeating: 0, count: count * height * width * channels)
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        var i = 0
        for n in 0..<count {
            for y in 0..<height {
                for x in 0..<width {
                    for c in 0..<channels {
                        state = state &* 6364136223846793005 &+ 1442695040888963407
                        let ramp = (x * 255 / max(width, 1) + y * 255 / max(height, 1) + n * 37 + c * 85) & 255
                        pixels[i] = UInt8(truncatingIfNeeded: ramp + Int(state >> 60))
                        i += 1
                    }
                }
            }
        }
        return ImageSet(count: count, height: height, width: width, channels: channels, pixels: pixels)
    }
}
