import ArgumentParser
import CSieveKernels
import SieveCore

/// `--isa NAME` as a kernel path: nil leaves the choice to SIEVE_ISA or the CPU.
func resolveKernelPath(_ name: String?) throws -> Int32? {
    guard let name else { return nil }
    let isa = sieve_isa_named(name)
    guard isa >= 0 else {
        throw ValidationError("--isa \(name) is no kernel path; this CPU has: \(KernelPath.available.map(KernelPath.name).joined(separator: ", "))")
    }
    return isa
}

/// The peak int8 MAC rate of a kernel path on this core, in GMAC/s (nil for scalar): the best of
/// 100 timings of the path's register-only multiply-accumulate loop, each about 2 ms. Short samples,
/// many of them, so that on a shared machine some run without being interrupted (20 ms samples
/// came out 3x low there).
enum PeakRate {
    static func measure(isa: Int32) -> Double? {
        guard sieve_peak_macs(isa, 1) > 0 else { return nil }
        var iterations: UInt64 = 64
        while true {
            let start = sieve_now_ns()
            _ = sieve_peak_macs(isa, iterations)
            if sieve_now_ns() - start >= 2_000_000 || iterations >= 1 << 40 { break }
            iterations *= 2
        }
        var best = 0.0
        for _ in 0..<100 {
            let start = sieve_now_ns()
            let macs = sieve_peak_macs(isa, iterations)
            best = max(best, Double(macs) / Double(sieve_now_ns() - start))
        }
        return best
    }
}
