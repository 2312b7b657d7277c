import Foundation

/// Class labels, one u8 per image, from IDX (`[N]` ubyte, e.g. `t10k-labels-idx1-ubyte.gz`) or a 1-D
/// uint8 .npy, either optionally gzipped.
public enum LabelSet {
    public static func load(path: String) throws(QuantizeError) -> [UInt8] {
        var b = try readFile(path)
        func fail(_ reason: String) -> QuantizeError { .invalidLabelData(path: path, reason: reason) }
        if b.count >= 2 && b[0] == 0x1F && b[1] == 0x8B {
            do { b = try gunzipDeclared(b) } catch { throw fail(error.reason) }
        }
        if b.count >= 6 && Array(b[0..<6]) == [0x93] + Array("NUMPY".utf8) {
            guard b.count >= 10 else { throw fail("truncated .npy header") }
            let start = b[6] == 1 ? 10 : 12
            let length = b[6] == 1 ? Int(b[8]) | Int(b[9]) << 8 : Int(b[8]) | Int(b[9]) << 8 | Int(b[10]) << 16 | Int(b[11]) << 24
            guard b.count >= start + length, let header = String(bytes: b[start..<(start + length)], encoding: .utf8) else {
                throw fail("truncated .npy header")
            }
            guard header.contains("u1'") else { throw fail(".npy labels must be uint8") }
            guard let open = header.range(of: "'shape':"), let lp = header[open.upperBound...].firstIndex(of: "("),
                  let rp = header[lp...].firstIndex(of: ")") else { throw fail(".npy header has no 'shape'") }
            let dims = header[header.index(after: lp)..<rp].split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard dims.count == 1 else { throw fail(".npy labels must be 1-D, got shape (\(dims.map(String.init).joined(separator: ", ")))") }
            guard b.count - start - length >= dims[0] else { throw fail("truncated: \(dims[0]) labels declared, \(b.count - start - length) bytes present") }
            return Array(b[(start + length)..<(start + length + dims[0])])
        }
        guard b.count >= 8, b[0] == 0, b[1] == 0 else { throw fail("not an IDX or .npy file (unknown magic \(hexBytes(b.prefix(4))))") }
        guard b[2] == 0x08 else { throw fail("IDX element type 0x\(String(b[2], radix: 16)) is not unsigned byte (0x08)") }
        guard b[3] == 1 else { throw fail("IDX labels must have 1 dimension, this file has \(b[3])") }
        let n = Int(b[4]) << 24 | Int(b[5]) << 16 | Int(b[6]) << 8 | Int(b[7])
        guard b.count - 8 >= n else { throw fail("truncated: \(n) labels declared, \(b.count - 8) bytes present") }
        return Array(b[8..<(8 + n)])
    }
}
