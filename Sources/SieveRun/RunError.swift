import SieveCore

/// What can stop sieve-run before or while it runs, each a one-line message naming the problem.
public enum RunError: Error {
    case usage(String)
    /// The model file cannot be loaded or run: the runtime's own error, typed.
    case model(path: String, error: SieveError)
    case frame(String)
    case input(path: String, reason: String)
    case outOfMemory(bytes: Int)
    case output(reason: String)

    public var message: String {
        switch self {
        case let .usage(text): return text
        case let .model(path, error):
            // "cannot open PATH: ..." already names the file.
            if case .cannotOpen = error { return error.description }
            return "\(path): \(error.description)"
        case let .frame(text): return text
        case let .input(path, reason): return "cannot read frames from \(path): \(reason)"
        case let .outOfMemory(bytes): return "cannot allocate \(bytes) bytes"
        case let .output(reason): return "cannot write the answers to stdout: \(reason)"
        }
    }

    /// 2 for a command line that cannot be understood, 1 for everything else.
    public var exitCode: Int32 {
        if case .usage = self { return 2 }
        return 1
    }
}
