import CSieveKernels

/// Choosing the kernel path (docs/KERNELS.md) and packing each op's weights for it.
public enum KernelPath {
    /// The path's name: scalar, avx2, avx512vnni, neon, neondot, i8mm.
    public static func name(_ isa: Int32) -> String { String(cString: sieve_isa_name(isa)) }

    /// Every path this CPU can run, scalar first.
    public static var available: [Int32] { (0..<Int32(SIEVE_ISA_COUNT)).filter { sieve_isa_available($0) != 0 } }

    /// `isa` if this CPU can run it; nil means `SIEVE_ISA` from the environment, else the best path.
    static func resolve(_ isa: Int32?) throws(SieveError) -> Int32 {
        let chosen: Int32
        if let isa {
            chosen = isa
        } else {
            let requested = sieve_isa_from_environment()
            if requested == -2 { throw .unknownKernelPath(names: availableNames) }
            chosen = requested == -1 ? sieve_isa_best() : requested
        }
        guard sieve_isa_available(chosen) != 0 else { throw .kernelPathUnavailable(name: name(chosen), names: availableNames) }
        return chosen
    }

    static var availableNames: String {
        var text = ""
        for isa in available { text += (text.isEmpty ? "" : ", ") + name(isa) }
        return text
    }

    static func roundUp(_ bytes: Int) -> Int { (bytes + BlobLayout.alignment - 1) / BlobLayout.alignment * BlobLayout.alignment }
}
