import CCrypto

/// SHA-256 (OpenSSL libcrypto), for the PROVENANCE section's `source_sha256`.
enum SHA256 {
    static func hash(_ message: [UInt8]) -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: Int(SHA256_DIGEST_LENGTH))
        message.withUnsafeBufferPointer { input in
            digest.withUnsafeMutableBufferPointer { out in _ = CCrypto.SHA256(input.baseAddress, input.count, out.baseAddress) }
        }
        return digest
    }

    static func hex(_ message: [UInt8]) -> String {
        hash(message).map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }
}
