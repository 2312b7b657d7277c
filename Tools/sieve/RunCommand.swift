import ArgumentParser
import SieveRun

/// `sieve run`: the device loop (sieve-run) on the host, with the same options.
struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Classify raw camera frames from stdin or a FIFO, one JSON line per frame (as sieve-run on the board).",
        discussion: RunOptions.usage)

    @Argument(parsing: .captureForPassthrough, help: "MODEL.sieve --format FORMAT --size WxH [options]; see below.")
    var words: [String] = []

    func run() throws {
        let status = SieveRunMain.run(words)
        if status != 0 { throw ExitCode(status) }
    }
}
