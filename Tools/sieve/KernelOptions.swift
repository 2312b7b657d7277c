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
/// five timings of the path's register-only multiply-accumulate loop, each about 20 ms.
enum PeakRate {
    static func measure(isa: Int32) -> Double? {
        guard sieve_peak_macs(isa, 1) > 0 else { return nil }
        var iterations: UInt64 = 1000
        var best = 0.0
        for _ in 0..<12 {
            let start = sieve_now_ns()
            let macs = sieve_peak_macs(isa, iterations)
            let ns = Double(sieve_now_ns() - start)
            if ns < 20_000_000 { iterations *= 2; continue }
            best = max(best, Double(macs) / ns)
            if best > 0 && iterations > 0 { break }
        }
        for _ in 0..<4 {
            let start = sieve_now_ns()
            let macs = sieve_peak_macs(isa, iterations)
            best = max(best, Double(macs) / Double(sieve_now_ns() - start))
        }
        return best
    }
}
