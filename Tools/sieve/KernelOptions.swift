import ArgumentParser
import CSieveKernels
import SieveCore

/// `--isa` and `--threads`, shared by the commands that run a network (eval, bench).
struct KernelOptions: ParsableArguments {
    @Option(help: "Kernel path (scalar, avx2, avx512vnni, neon, neondot, i8mm); default: SIEVE_ISA, else the best this CPU has.")
    var isa: KernelPath?
    @Option(help: "Threads that split each large op (1...64).") var threads = 1

    func validate() throws {
        guard threads >= 1 && threads <= 64 else { throw ValidationError("--threads must be in 1...64") }
        if let isa, !isa.isAvailable {
            throw ValidationError("--isa \(isa.name) is not available on this CPU; it has: \(KernelPath.availableNames)")
        }
    }
}

extension KernelPath: ExpressibleByArgument {
    public init?(argument: String) {
        guard let path = KernelPath.allCases.first(where: { $0.name == argument }) else { return nil }
        self = path
    }

    public static var allValueStrings: [String] { allCases.map(\.name) }
}

/// The peak int8 MAC rate of a kernel path on this core, in GMAC/s (nil for scalar): the best of
/// 100 timings of the path's register-only multiply-accumulate loop, each about 2 ms. Short samples,
/// many of them, so that on a shared machine some run without being interrupted (20 ms samples
/// came out 3x low there).
enum PeakRate {
    static func measure(path: KernelPath) -> Double? {
        measure { sieve_peak_macs(path.rawValue, $0) }
    }

    /// The avx2 path's u8 x s8 route (ops whose weights fit it, such as `--weight-bits 7` blobs);
    /// nil on every other path.
    static func measureU8Route(path: KernelPath) -> Double? {
        measure { sieve_peak_macs_u8(path.rawValue, $0) }
    }

    private static func measure(_ loop: (UInt64) -> UInt64) -> Double? {
        guard loop(1) > 0 else { return nil }
        var iterations: UInt64 = 64
        while true {
            let start = sieve_now_ns()
            _ = loop(iterations)
            if sieve_now_ns() - start >= 2_000_000 || iterations >= 1 << 40 { break }
            iterations *= 2
        }
        var best = 0.0
        for _ in 0..<100 {
            let start = sieve_now_ns()
            let macs = loop(iterations)
            best = max(best, Double(macs) / Double(sieve_now_ns() - start))
        }
        return best
    }
}
