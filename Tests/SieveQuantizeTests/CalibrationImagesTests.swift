import Foundation
import Testing
@testable import SieveQuantize

/// .npy calibration files in every common layout, and folders of JPEG/PNG images.
@Suite struct CalibrationImagesTests {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().path + "/calib-images"

    /// A version 1.0 .npy of uint8 `values` with `shape`.
    func npy(_ shape: [Int], _ values: [UInt8]) -> [UInt8] {
        let dims = shape.count == 1 ? "\(shape[0])," : shape.map(String.init).joined(separator: ", ")
        var header = "{'descr': '|u1', 'fortran_order': False, 'shape': (\(dims)), }"
        while (10 + header.count + 1) % 64 != 0 { header += " " }
        header += "\n"
        return [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.count & 255), UInt8(header.count >> 8)] + Array(header.utf8) + values
    }

    /// The error `body` throws, as text; nil when it throws none.
    func errorText(_ body: () throws -> Void) -> String? {
        do { try body(); return nil } catch { return "\(error)" }
    }

    func load(_ bytes: [UInt8], expect: (Int, Int, Int)?) throws -> ImageSet {
        let dir = TempDir()
        let path = dir.file("x.npy")
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return try ImageSet.load(path: path, expect: expect.map { (height: $0.0, width: $0.1, channels: $0.2) })
    }

    /// Pixel (y, x, c) of image n in HWC order, for a value pattern no two positions share mod 251.
    func value(_ n: Int, _ y: Int, _ x: Int, _ c: Int) -> UInt8 { UInt8((n * 97 + y * 31 + x * 7 + c * 3) % 251) }

    func hwc(n: Int, h: Int, w: Int, c: Int) -> [UInt8] {
        var v: [UInt8] = []
        for i in 0..<n { for y in 0..<h { for x in 0..<w { for ch in 0..<c { v.append(value(i, y, x, ch)) } } } }
        return v
    }

    func chw(n: Int, h: Int, w: Int, c: Int) -> [UInt8] {
        var v: [UInt8] = []
        for i in 0..<n { for ch in 0..<c { for y in 0..<h { for x in 0..<w { v.append(value(i, y, x, ch)) } } } }
        return v
    }

    @Test func oneHWCImageIsOneImage() throws {
        // Before: read as 8 images of 6x3.
        let set = try load(npy([8, 6, 3], hwc(n: 1, h: 8, w: 6, c: 3)), expect: (8, 6, 3))
        #expect(set.count == 1 && set.height == 8 && set.width == 6 && set.channels == 3)
        #expect(set.pixels == hwc(n: 1, h: 8, w: 6, c: 3))
    }

    @Test func layoutsGiveTheSameHWCPixels() throws {
        let expected = hwc(n: 2, h: 5, w: 4, c: 3)
        let nhwc = try load(npy([2, 5, 4, 3], expected), expect: (5, 4, 3))
        let nchw = try load(npy([2, 3, 5, 4], chw(n: 2, h: 5, w: 4, c: 3)), expect: (5, 4, 3))
        #expect(nhwc.count == 2 && nhwc.pixels == expected)
        #expect(nchw.count == 2 && nchw.pixels == expected)
        let one = try load(npy([3, 5, 4], chw(n: 1, h: 5, w: 4, c: 3)), expect: (5, 4, 3))
        #expect(one.count == 1 && one.pixels == hwc(n: 1, h: 5, w: 4, c: 3))
    }

    @Test func grayLayouts() throws {
        let single = try load(npy([5, 4], hwc(n: 1, h: 5, w: 4, c: 1)), expect: (5, 4, 1))
        #expect(single.count == 1 && single.pixels == hwc(n: 1, h: 5, w: 4, c: 1))
        let many = try load(npy([3, 5, 4], hwc(n: 3, h: 5, w: 4, c: 1)), expect: (5, 4, 1))
        #expect(many.count == 3 && many.pixels == hwc(n: 3, h: 5, w: 4, c: 1))
        let last = try load(npy([5, 4, 1], hwc(n: 1, h: 5, w: 4, c: 1)), expect: (5, 4, 1))
        #expect(last.count == 1)
    }

    @Test func aMismatchingSizeNamesBoth() throws {
        let text = errorText { _ = try load(npy([5, 7, 3], hwc(n: 1, h: 5, w: 7, c: 3)), expect: (8, 6, 3)) }
        #expect(text?.contains("(5, 7, 3)") == true && text?.contains("8x6x3") == true, "\(text ?? "accepted")")
        #expect(throws: QuantizeError.self) { try load(npy([2, 5, 7, 3], hwc(n: 2, h: 5, w: 7, c: 3)), expect: (8, 6, 3)) }
        #expect(throws: QuantizeError.self) { try load(npy([2, 2, 5, 7, 3], hwc(n: 4, h: 5, w: 7, c: 3)), expect: (5, 7, 3)) }
    }

    @Test func folderIsReadByNameThroughThePreprocessing() throws {
        let set = try ImageSet.load(path: Self.folder, expect: (height: 8, width: 8, channels: 3))
        #expect(set.count == 4)
        func pixel(_ n: Int, _ i: Int) -> [UInt8] { Array(set.image(n)[(set.image(n).startIndex + i * 3)..<(set.image(n).startIndex + i * 3 + 3)]) }
        // a-solid.png: a constant resizes to itself exactly.
        for i in 0..<64 { #expect(pixel(0, i) == [200, 100, 50]) }
        // b-centre-square.png, 60x20: only the centred 20x20 (all white) is kept.
        for i in 0..<64 { #expect(pixel(1, i) == [255, 255, 255]) }
        // c-solid.jpg: (30, 160, 220) through JPEG, within its loss.
        for i in 0..<64 { for (v, e) in zip(pixel(2, i), [30, 160, 220]) { #expect(abs(Int(v) - e) <= 3) } }
        // d-transparent.png: alpha 0 composites onto black.
        for i in 0..<64 { #expect(pixel(3, i) == [0, 0, 0]) }
        let limited = try ImageSet.load(path: Self.folder, expect: (height: 8, width: 8, channels: 3), limit: 2)
        #expect(limited.count == 2 && limited.pixels == Array(set.pixels[0..<(2 * 64 * 3)]))
    }

    @Test func folderForALumaModel() throws {
        let set = try ImageSet.load(path: Self.folder, expect: (height: 4, width: 4, channels: 1), limit: 1)
        // docs/FRAMES.md: (77 R + 150 G + 29 B + 128) / 256 = 124 for (200, 100, 50).
        #expect(set.pixels == [UInt8](repeating: 124, count: 16))
    }

    @Test func undecodableFileIsNamed() throws {
        let dir = TempDir()
        try Data([0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3]).write(to: URL(fileURLWithPath: dir.file("broken.jpg")))
        let text = errorText { _ = try ImageSet.load(path: dir.path, expect: (height: 8, width: 8, channels: 3)) }
        #expect(text?.contains("broken.jpg") == true, "\(text ?? "accepted")")
        let empty = TempDir()
        #expect(throws: QuantizeError.self) { try ImageSet.load(path: empty.path, expect: (height: 8, width: 8, channels: 3)) }
    }
}
