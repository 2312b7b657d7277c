import CSieveKernels

/// The kernel paths, worst to best (docs/KERNELS.md); the raw value is the C side's `SIEVE_ISA_*`.
/// One binary carries every path of its architecture; `best` is the one this CPU runs fastest.
public enum KernelPath: Int32, CaseIterable {
    case scalar = 0, avx2 = 1, avx512vnni = 2, neon = 3, neondot = 4, i8mm = 5

    /// scalar, avx2, avx512vnni, neon, neondot, i8mm.
    public var name: String { String(cString: sieve_isa_name(rawValue)) }

    /// This build and this CPU can run it.
    public var isAvailable: Bool { sieve_isa_available(rawValue) != 0 }

    /// Every path this CPU can run, scalar first.
    public static var available: [KernelPath] { allCases.filter { $0.isAvailable } }

    /// The fastest path this CPU has.
    public static var best: KernelPath { KernelPath(rawValue: sieve_isa_best()) ?? .scalar }

    /// `path` if this CPU can run it; nil means `SIEVE_ISA` from the environment, else the best path.
    static func resolve(_ path: KernelPath?) throws(SieveError) -> KernelPath {
        let chosen: KernelPath
        if let path {
            chosen = path
        } else {
            let requested = sieve_isa_from_environment()
            if requested == -1 {
                chosen = best
            } else if let named = KernelPath(rawValue: requested) {
                chosen = named
            } else {
                throw .unknownKernelPath(names: availableNames)
            }
        }
        guard chosen.isAvailable else { throw .kernelPathUnavailable(name: chosen.name, names: availableNames) }
        return chosen
    }

    /// "scalar, avx2, ...": the paths this CPU can run, for messages.
    public static var availableNames: String {
        var text = ""
        for path in available { text += (text.isEmpty ? "" : ", ") + path.name }
        return text
    }
}

/// The route an op runs on within its path (docs/KERNELS.md): the path's own kernel, or on avx2 the
/// u8 x s8 route or Winograd F(2,3); the raw value is the C side's `SIEVE_ROUTE_*`.
public enum KernelRoute: Int32 {
    case main = 0, u8 = 1, winograd = 2

    /// "", "u8", "winograd": how `sieve bench` labels the op.
    public var name: String {
        switch self {
        case .main: return ""
        case .u8: return "u8"
        case .winograd: return "winograd"
        }
    }
}
