import CSieveKernels

/// A blob read from a file into private read-only memory (sieve_map_file: a copy, so the file can
/// change or shrink without affecting it) and validated. Owns the memory; weights are used in place.
public final class ModelFile {
    public let model: Model
    private let address: UnsafeRawPointer?
    private let size: Int

    public init(path: String) throws(SieveError) {
        var size = 0
        var error: Int32 = 0
        let address = path.withCString { sieve_map_file($0, &size, &error) }
        if address == nil && error != 0 {
            throw .cannotOpen(path: path, errno: error, reason: String(cString: sieve_error_text(error)))
        }
        guard let address, size > 0 else { throw .fileTooSmall(size: 0) }
        do {
            self.model = try Model(bytes: UnsafeRawBufferPointer(start: address, count: size))
        } catch {
            sieve_unmap_file(address, size)
            throw error
        }
        self.address = address
        self.size = size
    }

    deinit { sieve_unmap_file(address, size) }
}
