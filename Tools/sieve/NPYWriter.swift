import Foundation

/// An int8 array as a NumPy .npy file (format 1.0, C order).
func npyFile(int8 values: [Int8], shape: [Int]) -> Data {
    npyFile(descr: "|i1", shape: shape) { data in values.withUnsafeBytes { data.append(contentsOf: $0) } }
}

/// A float32 array as a NumPy .npy file (little-endian, format 1.0, C order).
func npyFile(float32 values: [Float], shape: [Int]) -> Data {
    npyFile(descr: "<f4", shape: shape) { data in values.withUnsafeBytes { data.append(contentsOf: $0) } }
}

private func npyFile(descr: String, shape: [Int], body: (inout Data) -> Void) -> Data {
    let dims = shape.map(String.init).joined(separator: ", ") + (shape.count == 1 ? "," : "")
    var header = "{'descr': '\(descr)', 'fortran_order': False, 'shape': (\(dims)), }"
    // Magic (6) + version (2) + length (2) + header + newline is a multiple of 64.
    let unpadded = 10 + header.utf8.count + 1
    header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
    var data = Data([0x93] + Array("NUMPY".utf8) + [1, 0])
    data.append(contentsOf: [UInt8(header.utf8.count & 0xFF), UInt8(header.utf8.count >> 8)])
    data.append(contentsOf: Array(header.utf8))
    body(&data)
    return data
}
