/// `--labels FILE`: class names, one per line (UTF-8; a final newline and CR line ends are fine).
/// The count is checked against the model's classes when it is imported.
public enum ClassLabelFile {
    public static func load(path: String) throws(QuantizeError) -> [String] {
        let bytes = try readFile(path)
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw .invalidLabelData(path: path, reason: "not UTF-8 text (one class name per line)")
        }
        // Split on scalars: "\r\n" is one Character to String.
        var lines = text.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false).map { line -> String in
            var scalars = String.UnicodeScalarView(line)
            if scalars.last == "\r" { scalars.removeLast() }
            return String(scalars)
        }
        if lines.last == "" { lines.removeLast() }
        guard !lines.isEmpty else { throw .invalidLabelData(path: path, reason: "the file is empty (one class name per line)") }
        if let blank = lines.firstIndex(of: "") {
            throw .invalidLabelData(path: path, reason: "line \(blank + 1) is empty (one class name per line)")
        }
        return lines
    }
}
