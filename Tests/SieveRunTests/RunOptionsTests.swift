import CAllocationCounter
import CSieveKernels
import Testing
@testable import SieveRun

@Suite struct RunOptionsTests {
    @Test func parsesEveryOption() throws {
        let o = try RunOptions.parse(["m.sieve", "--format", "yuv420p", "--size", "640x480", "--stride", "704", "--input", "/tmp/f",
                                      "--crop", "80,0,480,480", "--invert", "--full-range", "--latest", "--every", "3",
                                      "--threads", "2", "--no-exits", "--logits"])
        #expect(o.model == "m.sieve" && o.format == Int32(SIEVE_FORMAT_I420) && o.width == 640 && o.height == 480)
        #expect(o.stride == 704 && o.input == "/tmp/f" && o.crop! == (80, 0, 480, 480))
        #expect(o.invert && o.fullRange && o.latest && o.every == 3 && o.threads == 2 && !o.exits && o.logits)
    }

    @Test func badWordsAreUsageErrors() {
        let cases: [([String], String)] = [
            (["m.sieve", "--format", "h264", "--size", "1x1"], "unknown frame format 'h264'"),
            (["m.sieve", "--format", "gray8", "--size", "640"], "--size must be WxH"),
            (["m.sieve", "--format", "gray8", "--size", "0x10"], "--size must be WxH"),
            (["m.sieve", "--format", "gray8", "--size", "4x4", "--crop", "1,2,3"], "--crop must be X,Y,W,H"),
            (["m.sieve", "--format", "gray8", "--size", "4x4", "--every", "0"], "--every must be a positive number"),
            (["m.sieve", "--format", "gray8", "--size", "4x4", "--threads", "65"], "--threads must be in 1...64"),
            (["m.sieve", "--format", "gray8", "--size", "4x4", "--bogus"], "unknown option '--bogus'"),
            (["--format", "gray8", "--size", "4x4"], "no model given"),
            (["m.sieve", "--size", "4x4"], "--format is required"),
            (["m.sieve", "--format"], "--format needs a value"),
            (["m.sieve", "--format", "gray8", "--size", "4x4", "--logits"], "--logits needs --no-exits"),
        ]
        for (words, message) in cases {
            do {
                _ = try RunOptions.parse(words)
                Issue.record("\(words) parsed")
            } catch {
                #expect(error.message.hasPrefix(message), "\(words): \(error.message)")
                #expect(error.exitCode == 2)
            }
        }
    }

    /// One frame through the preprocessing: no heap allocation (the buffers are made at start).
    @Test func preprocessingAllocatesNothing() throws {
        var options = try RunOptions.parse(["m.sieve", "--format", "i420", "--size", "640x480"])
        options.invert = true
        let table = (0..<256).map { Int8(truncatingIfNeeded: $0 - 128) }
        let preprocessor = try Preprocessor(options: options, inputTable: table, width: 28, height: 28, channels: 1)
        let bytes = Int(sieve_frame_bytes(options.format, 640, 480, 0))
        #expect(bytes == 640 * 480 * 3 / 2)
        let frame = UnsafeMutablePointer<UInt8>.allocate(capacity: bytes)
        defer { frame.deallocate() }
        for i in 0..<bytes { frame[i] = UInt8(truncatingIfNeeded: i * 7) }
        let input = UnsafeMutablePointer<Int8>.allocate(capacity: 28 * 28)
        defer { input.deallocate() }
        preprocessor.run(frame: frame, into: input)
        allocation_counter_start()
        for _ in 0..<5 { preprocessor.run(frame: frame, into: input) }
        #expect(allocation_counter_stop() == 0)
    }

    /// The default crop keeps the model's aspect ratio: the centred square only for a square model.
    @Test func defaultCropKeepsTheModelsAspectRatio() throws {
        let cases: [((Int32, Int32, Int32, Int32), (Int32, Int32, Int32, Int32))] = [
            ((640, 480, 224, 224), (80, 0, 480, 480)),
            ((640, 480, 128, 96), (0, 0, 640, 480)),
            ((640, 480, 96, 128), (140, 0, 360, 480)),
            ((480, 640, 128, 96), (0, 140, 480, 360)),
            ((1920, 1080, 320, 240), (240, 0, 1440, 1080)),
            ((101, 50, 3, 1), (0, 8, 101, 34)),       // 101 / 3 = 33.7 rows, rounded to 34
            ((1, 1000, 1000, 1), (0, 499, 1, 1)),     // never below one pixel
        ]
        for ((fw, fh, mw, mh), want) in cases {
            let got = Preprocessor.centredCrop(frameWidth: fw, frameHeight: fh, modelWidth: mw, modelHeight: mh)
            #expect(got == want, "frame \(fw)x\(fh), model \(mw)x\(mh)")
        }
        // The same bytes as the explicit crop, and not those of the centred square.
        func input(_ arguments: [String]) throws -> [Int8] {
            let options = try RunOptions.parse(["m.sieve", "--format", "gray8", "--size", "64x48"] + arguments)
            let table = (0..<256).map { Int8(truncatingIfNeeded: $0 - 128) }
            let preprocessor = try Preprocessor(options: options, inputTable: table, width: 32, height: 24, channels: 1)
            var frame = [UInt8](repeating: 0, count: 64 * 48)
            for i in 0..<frame.count { frame[i] = UInt8(truncatingIfNeeded: (i % 64) * 4) }
            var out = [Int8](repeating: 0, count: 32 * 24)
            frame.withUnsafeBufferPointer { f in out.withUnsafeMutableBufferPointer { preprocessor.run(frame: f.baseAddress!, into: $0.baseAddress!) } }
            return out
        }
        #expect(try input([]) == input(["--crop", "0,0,64,48"]))
        #expect(try input([]) != input(["--crop", "8,0,48,48"]))
    }

    @Test func cropOutsideTheFrameIsAnError() throws {
        let options = try RunOptions.parse(["m.sieve", "--format", "gray8", "--size", "100x80", "--crop", "50,0,60,60"])
        #expect(throws: RunError.self) {
            try Preprocessor(options: options, inputTable: [Int8](repeating: 0, count: 256), width: 28, height: 28, channels: 1)
        }
        let odd = try RunOptions.parse(["m.sieve", "--format", "i420", "--size", "101x80"])
        #expect(throws: RunError.self) {
            try Preprocessor(options: odd, inputTable: [Int8](repeating: 0, count: 256), width: 28, height: 28, channels: 1)
        }
    }

    @Test func cropSumsBeyond32BitsAreErrors() throws {
        for crop in ["2147483647,0,1,1", "0,2147483647,1,1", "1,1,2147483647,1", "1,1,1,2147483647"] {
            let options = try RunOptions.parse(["m.sieve", "--format", "gray8", "--size", "28x28", "--crop", crop])
            #expect(throws: RunError.self) {
                try Preprocessor(options: options, inputTable: [Int8](repeating: 0, count: 256), width: 28, height: 28, channels: 1)
            }
        }
    }

    @Test func maxArenaAboveTwoGigabytesParses() throws {
        #expect(try RunOptions.parse(["m.sieve", "--format", "gray8", "--size", "28x28", "--max-arena", "2048M"]).maxArena == 1 << 31)
        #expect(try RunOptions.parse(["m.sieve", "--format", "gray8", "--size", "28x28", "--max-arena", "2147483647M"]).maxArena
                == 2147483647 << 20)
    }

    @Test func labelsAreEscapedAsJSON() {
        let line = LineBuffer(capacity: 64)
        let raw: [UInt8] = [UInt8(ascii: "a"), 0x22, 0x5c, 0x0a, 0x00, 0x7f, 0xc3, 0xa9]
        raw.withUnsafeBytes { line.append(jsonEscaping: $0) }
        let text = String(decoding: line.contents, as: UTF8.self)
        #expect(text == "a\\\"\\\\\\u000a\\u0000\\u007f\u{e9}")
    }

    @Test func logitsReadBackAsTheSameFloats() {
        let line = LineBuffer(capacity: 256)
        let values: [Float] = [0, -1.5, 3.1415927, 1e-30, -123456.79, Float(1).nextDown, -.infinity]
        values.withUnsafeBufferPointer { line.append($0) }
        let words = String(decoding: line.contents, as: UTF8.self).split(separator: ",")
        #expect(words.count == values.count && words.last == "null")
        for (word, value) in zip(words.dropLast(), values.dropLast()) { #expect(Float(word) == value, "\(word)") }
        let short = LineBuffer(capacity: 10)  // stops at a whole value
        values.withUnsafeBufferPointer { short.append($0) }
        #expect(String(decoding: short.contents, as: UTF8.self) == "0,-1.5")
    }
}
