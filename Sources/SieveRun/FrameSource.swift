import CSieveKernels

/// Whole frames from stdin, a file or a FIFO: one buffer read in turn, or (latest mode) a reader
/// thread that keeps only the newest frame. Buffers are allocated once, at start.
final class FrameSource {
    enum Next {
        case frame(UnsafePointer<UInt8>, index: Int)
        case end
    }

    let frameBytes: Int
    private let fd: Int32
    private let buffer: UnsafeMutablePointer<UInt8>?
    private let reader: OpaquePointer?
    private var framesRead = 0
    private var partialBytes = 0
    private(set) var errorNumber: Int32 = 0

    init(path: String, frameBytes: Int, latest: Bool) throws(RunError) {
        self.frameBytes = frameBytes
        let fd = path.withCString { sieve_open_input(matches(path, "-") ? nil : $0) }
        if fd < 0 && sieve_stop_signal() != 0 {
            // Stopped while waiting for a FIFO's writer: an empty stream (a summary, status 0).
            self.fd = -1
            self.reader = nil
            self.buffer = nil
            return
        }
        guard fd >= 0 else { throw .input(path: path, reason: String(cString: sieve_error_text(-fd))) }
        self.fd = fd
        if latest {
            var error: Int32 = 0
            guard let reader = sieve_latest_start(fd, Int64(frameBytes), 3, &error) else {
                sieve_close_input(fd)
                throw .input(path: path, reason: "cannot start the reader: " + String(cString: sieve_error_text(error)))
            }
            self.reader = reader
            self.buffer = nil
        } else {
            self.reader = nil
            guard let memory = sieve_alloc_bytes(Int64(frameBytes)) else {
                sieve_close_input(fd)
                throw .outOfMemory(bytes: frameBytes)
            }
            self.buffer = memory.assumingMemoryBound(to: UInt8.self)
        }
    }

    deinit {
        if let reader { sieve_latest_finish(reader) }
        sieve_free_aligned(buffer)
        if fd >= 0 { sieve_close_input(fd) }
    }

    func next() -> Next {
        if let reader {
            var index: Int64 = 0
            guard let frame = sieve_latest_take(reader, &index) else { return .end }
            return .frame(frame, index: Int(index))
        }
        guard let buffer, sieve_stop_signal() == 0 else { return .end }
        let n = sieve_read_full(fd, buffer, Int64(frameBytes))
        if n < 0 { errorNumber = Int32(-n); return .end }
        if n < Int64(frameBytes) { partialBytes = Int(n); return .end }
        framesRead += 1
        return .frame(UnsafePointer(buffer), index: framesRead - 1)
    }

    /// Complete frames read, dropped by the latest-frame reader, and the bytes of a trailing partial frame.
    var counts: (read: Int, dropped: Int, partialBytes: Int) {
        guard let reader else { return (framesRead, 0, partialBytes) }
        let c = sieve_latest_get_counts(reader)
        if c.error_number != 0 { errorNumber = c.error_number }
        return (Int(c.frames_read), Int(c.frames_dropped), Int(c.partial_bytes))
    }
}
