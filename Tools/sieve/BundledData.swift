import ArgumentParser
import Foundation

/// A file the repository bundles in data/, found from the sieve executable's own location
/// (REPO/.build/release/sieve or an install beside a data/ folder), never from the working
/// directory, so a default works wherever the command is run. Nil when there is none.
func bundledData(_ name: String) -> String? {
    var directory = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
    for _ in 0..<4 {
        let candidate = directory.appendingPathComponent("data").appendingPathComponent(name).path
        if FileManager.default.fileExists(atPath: candidate) { return candidate }
        directory = directory.deletingLastPathComponent()
    }
    return nil
}

/// `given`, else the bundled file `name`; with neither, a one-line error naming the option.
func pathOrBundled(_ given: String?, _ name: String, option: String) throws -> String {
    if let given { return given }
    if let found = bundledData(name) { return found }
    printError("error: pass \(option): no bundled \(name) in a data/ folder beside this sieve executable")
    throw ExitCode.failure
}
