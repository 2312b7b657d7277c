import Foundation

/// Loads tensors stored outside the .onnx file (the dynamo exporter's `model.onnx.data`) into
/// their `raw_data`, so the importer sees every initializer inline.
///
/// A model file is untrusted input: its locations are read only from the model's own directory.
/// Absolute paths, `..`, and anything that resolves (through symlinks included) outside that
/// directory are refused, and so are offsets and lengths outside the file.
struct ExternalDataLoader {
    let modelPath: String
    /// The model's directory with symlinks resolved: every data file must resolve inside it.
    private let directory: String
    private var files: [String: FileHandle] = [:]

    init(modelPath: String) {
        self.modelPath = modelPath
        let dir = (modelPath as NSString).deletingLastPathComponent
        directory = URL(fileURLWithPath: dir.isEmpty ? "." : dir).resolvingSymlinksInPath().path
    }

    private func fail(_ tensor: String, _ reason: String) -> QuantizeError {
        .invalidModel(reason: "initializer '\(tensor)' is stored in an external file, but \(reason)")
    }

    /// Every external initializer and Constant value of `model`, made inline.
    mutating func inline(_ model: inout Onnx_ModelProto) throws(QuantizeError) {
        defer { for handle in files.values { try? handle.close() } }
        for i in model.graph.initializer.indices where model.graph.initializer[i].dataLocation == .external {
            try load(&model.graph.initializer[i])
        }
        for n in model.graph.node.indices where model.graph.node[n].opType == "Constant" {
            for a in model.graph.node[n].attribute.indices where model.graph.node[n].attribute[a].t.dataLocation == .external {
                try load(&model.graph.node[n].attribute[a].t)
            }
        }
    }

    private mutating func load(_ t: inout Onnx_TensorProto) throws(QuantizeError) {
        var entries: [String: String] = [:]
        for e in t.externalData { entries[e.key] = e.value }
        guard let location = entries["location"], !location.isEmpty else { throw fail(t.name, "it names no 'location'") }
        let shown = sanitized(location)
        guard !location.hasPrefix("/"), !location.contains("\\"), !location.contains("\0") else {
            throw fail(t.name, "its location '\(shown)' is not a plain relative path: external data is read only from the model's own directory")
        }
        guard !location.split(separator: "/").contains("..") else {
            throw fail(t.name, "its location '\(shown)' contains '..': external data is read only from the model's own directory")
        }
        func number(_ key: String) throws(QuantizeError) -> Int? {
            guard let text = entries[key] else { return nil }
            guard let v = Int(text), v >= 0 else { throw fail(t.name, "its \(key) '\(sanitized(text))' is not a non-negative integer") }
            return v
        }
        let offset = try number("offset") ?? 0
        let length = try number("length")
        let handle = try open(location, tensor: t.name)
        let size: UInt64
        do { size = try handle.seekToEnd() } catch { throw fail(t.name, "'\(shown)' cannot be read: \(error.localizedDescription)") }
        guard UInt64(offset) <= size else { throw fail(t.name, "its offset \(offset) is beyond the end of '\(shown)' (\(size) bytes)") }
        let count = length ?? Int(size - UInt64(offset))
        guard UInt64(offset) + UInt64(count) <= size else {
            throw fail(t.name, "offset \(offset) + length \(count) runs past the end of '\(shown)' (\(size) bytes)")
        }
        guard count <= 1 << 30 else { throw fail(t.name, "its length \(count) is above the 1 GiB a tensor may hold") }
        let bytes: Data
        do {
            try handle.seek(toOffset: UInt64(offset))
            bytes = try handle.read(upToCount: count) ?? Data()
        } catch {
            throw fail(t.name, "'\(shown)' cannot be read: \(error.localizedDescription)")
        }
        guard bytes.count == count else { throw fail(t.name, "'\(shown)' gave \(bytes.count) of \(count) bytes") }
        t.rawData = bytes
        t.dataLocation = .default
        t.externalData = []
    }

    /// The data file at `location`, opened once, after checking that it resolves inside the model's directory.
    private mutating func open(_ location: String, tensor: String) throws(QuantizeError) -> FileHandle {
        if let h = files[location] { return h }
        let shown = sanitized(location)
        let path = directory + "/" + location
        let resolved = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
        guard resolved.hasPrefix(directory.hasSuffix("/") ? directory : directory + "/") else {
            throw fail(tensor, "'\(shown)' resolves outside the model's directory (\(sanitized(resolved))): external data is read only from there")
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: resolved, isDirectory: &isDirectory) else {
            throw fail(tensor, "'\(shown)' does not exist next to the model (keep the .onnx.data file beside the .onnx file)")
        }
        guard !isDirectory.boolValue, let attributes = try? FileManager.default.attributesOfItem(atPath: resolved),
              attributes[.type] as? FileAttributeType == .typeRegular else {
            throw fail(tensor, "'\(shown)' is not a regular file")
        }
        guard let handle = FileHandle(forReadingAtPath: resolved) else { throw fail(tensor, "'\(shown)' cannot be opened") }
        files[location] = handle
        return handle
    }
}
