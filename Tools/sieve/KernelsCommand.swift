import ArgumentParser
import CSieveKernels
import SieveCore

struct KernelsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kernels",
        abstract: "The kernel paths this CPU can run, and the one Sieve picks.",
        discussion: "SIEVE_ISA=<name> or --isa <name> (eval, bench) forces a path; an unavailable one is an error.")

    @Flag(help: "Print one JSON object: available (names, scalar first) and chosen.") var json = false

    struct Report: Encodable { let available: [String], chosen: String }

    func run() throws {
        let available = KernelPath.available.map(\.name)
        let chosen = KernelPath.best.name
        if json { try printJSON(Report(available: available, chosen: chosen)); return }
        for name in available { print(name == chosen ? "\(name) (picked)" : name) }
    }
}
