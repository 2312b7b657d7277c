import Foundation

/// A file the tools write (`quantize -o`, `tune -o`, `eval --dump-*` and `--plot`), written so that
/// nothing else can be clobbered: the output must be a regular file or absent, and no input of the
/// command; the bytes go to a temporary file created with O_CREAT|O_EXCL (mkstemp, an unpredictable
/// name, never through a symlink) in the output's directory, are fsynced, then renamed over the
/// output. The temporary file is removed on every failure path, and on SIGINT or SIGTERM.
final class OutputFile {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    let path: String
    private let temporary: String
    private var fd: Int32
    private var slot: Int

    /// Checks the output against the inputs and creates its temporary file; call it before any
    /// long work, so a bad path fails at once.
    init(path: String, inputs: [String]) throws(Failure) {
        self.path = path
        var target = stat()
        if stat(path, &target) == 0 {
            guard (target.st_mode & S_IFMT) == S_IFREG else {
                throw Failure(description: "cannot write \(path): it exists and is not a regular file (only a regular file or a new name can be an output)")
            }
            for input in inputs {
                var source = stat()
                if stat(input, &source) == 0 && source.st_dev == target.st_dev && source.st_ino == target.st_ino {
                    throw Failure(description: "cannot write \(path): it is the input \(input)")
                }
            }
        } else if errno != ENOENT {
            throw Failure(description: "cannot write \(path): \(String(cString: strerror(errno)))")
        }
        let directory = (path as NSString).deletingLastPathComponent
        let name = (path as NSString).lastPathComponent
        var template = Array(((directory.isEmpty ? "" : directory + "/") + "." + name + ".XXXXXX").utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else {
            let reason = String(cString: strerror(errno))
            var isDirectory: ObjCBool = false
            if !FileManager.default.fileExists(atPath: directory.isEmpty ? "." : directory, isDirectory: &isDirectory) {
                throw Failure(description: "cannot write \(path): no directory \(directory)")
            }
            throw Failure(description: "cannot write \(path): \(reason) (creating a temporary file in \(directory.isEmpty ? "." : directory))")
        }
        self.fd = fd
        temporary = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        // mkstemp makes it 0600; an output gets the permissions a new file would.
        let mask = umask(0)
        umask(mask)
        fchmod(fd, 0o666 & ~mask)
        slot = OutputFile.register(temporary)
    }

    deinit { discard() }

    /// Writes everything, fsyncs and renames the temporary file over the output.
    func commit(_ bytes: UnsafeRawBufferPointer) throws(Failure) {
        defer { discard() }
        var done = 0
        while done < bytes.count {
            let n = Foundation.write(fd, bytes.baseAddress! + done, bytes.count - done)
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw Failure(description: "cannot write \(path): \(String(cString: strerror(errno)))") }
            done += n
        }
        guard fsync(fd) == 0 else { throw Failure(description: "cannot write \(path): \(String(cString: strerror(errno)))") }
        let status = close(fd)
        fd = -1
        guard status == 0 else { throw Failure(description: "cannot write \(path): \(String(cString: strerror(errno)))") }
        guard rename(temporary, path) == 0 else { throw Failure(description: "cannot write \(path): \(String(cString: strerror(errno)))") }
        OutputFile.unregister(slot)
        slot = -1
    }

    func commit(_ data: Data) throws(Failure) {
        try commit([UInt8](data))
    }

    func commit(_ bytes: [UInt8]) throws(Failure) {
        var failure: Failure? = nil
        bytes.withUnsafeBytes { raw in
            do throws(Failure) { try commit(raw) } catch { failure = error }
        }
        if let failure { throw failure }
    }

    /// Closes and removes the temporary file (nothing once committed).
    func discard() {
        if fd >= 0 { close(fd); fd = -1 }
        if slot >= 0 {
            unlink(temporary)
            OutputFile.unregister(slot)
            slot = -1
        }
    }

    /// Writes `data` to `path` at once (checks, temporary file, rename); for outputs made at the end.
    static func write(_ data: Data, to path: String, inputs: [String]) throws(Failure) {
        try OutputFile(path: path, inputs: inputs).commit(data)
    }

    // The temporary files a signal must remove: C strings in fixed slots, read by the handler
    // without allocating or locking (unlink is async-signal-safe).
    private static let slotCount = 16
    nonisolated(unsafe) private static let slots: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?> = {
        let slots = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>.allocate(capacity: slotCount)
        slots.initialize(repeating: nil, count: slotCount)
        for sig in [SIGINT, SIGTERM] {
            signal(sig) { received in
                for i in 0..<OutputFile.slotCount { if let name = OutputFile.slots[i] { unlink(name) } }
                signal(received, SIG_DFL)
                raise(received)
            }
        }
        return slots
    }()

    private static func register(_ name: String) -> Int {
        let table = slots
        for i in 0..<slotCount where table[i] == nil {
            table[i] = strdup(name)
            return i
        }
        return slotCount  // more outputs than slots: not removed on a signal (never happens: at most 4)
    }

    private static func unregister(_ slot: Int) {
        guard slot >= 0 && slot < slotCount, let name = slots[slot] else { return }
        slots[slot] = nil
        free(name)
    }
}
