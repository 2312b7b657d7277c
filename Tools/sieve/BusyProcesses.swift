import Foundation

/// Processes that keep CPU cores busy while `sieve bench --contend N` times, as a camera process
/// shares a board's cores with sieve-run. Each is a shell loop that never sleeps; all are killed
/// when the value is stopped (or the bench process exits: they watch their parent).
final class BusyProcesses {
    private var processes: [Process] = []

    init(count: Int) throws {
        // The loop checks every 100k iterations that its parent is alive, so a killed bench leaves none behind.
        let loop = "p=$PPID; while kill -0 $p 2>/dev/null; do i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done; done"
        for _ in 0..<count {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/bin/sh")
            process.arguments = ["-c", loop]
            try process.run()
            processes.append(process)
        }
    }

    func stop() {
        for process in processes where process.isRunning { kill(process.processIdentifier, SIGKILL) }
        for process in processes { process.waitUntilExit() }
        processes = []
    }

    deinit { stop() }
}
