import ArgumentParser

@main
struct Sieve: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sieve",
        abstract: "Quantise early-exit networks to int8 blobs, inspect, evaluate, tune and benchmark them.",
        version: "0.1.0",
        subcommands: [QuantizeCommand.self, RetrofitCommand.self, InspectCommand.self, EvalCommand.self, TuneCommand.self, BenchCommand.self, KernelsCommand.self, RunCommand.self]
    )
}
