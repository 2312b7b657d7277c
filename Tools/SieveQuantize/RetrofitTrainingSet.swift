import Foundation

/// The images and labels exit heads are fitted on: IDX or .npy images with an IDX or .npy label
/// file, or a folder of class folders (the sorted folder names are the classes).
public struct TrainingSet {
    public let images: ImageSet
    /// One class per image; nil when no labels were given and none are needed.
    public let labels: [Int]?
    /// The class folder names, when the images came from class folders.
    public let classNames: [String]?

    /// `limit`: use at most this many images (from class folders: an equal share of each class).
    /// `labelsNeeded: false`: images without a label file are accepted.
    public static func load(images path: String, labels labelPath: String?, expect: (height: Int, width: Int, channels: Int),
                            classes: Int, limit: Int = Int.max, labelsNeeded: Bool = true) throws(QuantizeError) -> TrainingSet {
        func fail(_ reason: String) -> QuantizeError { .invalidImageData(path: path, reason: reason) }
        let folders = try classFolders(path)
        if !folders.isEmpty {
            guard labelPath == nil else {
                throw fail("is a folder of class folders, whose names are the labels: drop --labels (or point --images at an IDX or .npy file)")
            }
            guard folders.count == classes else {
                throw fail("has \(folders.count) class folders (\(folders.prefix(12).map(sanitized).joined(separator: ", "))), the model has \(classes) classes")
            }
            let share = limit == Int.max ? Int.max : max(1, (limit + classes - 1) / classes)
            var pixels: [UInt8] = [], labels: [Int] = []
            for (k, name) in folders.enumerated() {
                let folder = (path as NSString).appendingPathComponent(name)
                let set = try ImageSet.loadFolder(folder, expect: expect, limit: share,
                                                  fail: { .invalidImageData(path: folder, reason: $0) })
                pixels += set.pixels
                labels += [Int](repeating: k, count: set.count)
            }
            let set = ImageSet(count: labels.count, height: expect.height, width: expect.width, channels: expect.channels, pixels: pixels)
            return TrainingSet(images: set, labels: labels, classNames: folders)
        }
        var set = try ImageSet.load(path: path, expect: expect, calibration: false)
        guard let labelPath = labelPath else {
            guard !labelsNeeded else {
                throw fail("needs --labels (IDX or .npy, one class per image), or give a folder of class folders, or fit to the network's own answers (--targets network)")
            }
            if limit < set.count { set = set.prefix(limit) }
            return TrainingSet(images: set, labels: nil, classNames: nil)
        }
        var labels = try loadLabels(labelPath)
        guard labels.count == set.count else {
            throw .invalidLabelData(path: labelPath, reason: "\(labels.count) labels for \(set.count) images in \(path)")
        }
        if let bad = labels.firstIndex(where: { $0 < 0 || $0 >= classes }) {
            throw .invalidLabelData(path: labelPath, reason: "label \(labels[bad]) (image \(bad)) is not a class of the model's \(classes) (0...\(classes - 1))")
        }
        if limit < set.count {
            set = set.prefix(limit)
            labels = Array(labels[0..<limit])
        }
        return TrainingSet(images: set, labels: labels, classNames: nil)
    }

    /// The sorted names of `path`'s subfolders that hold images; empty when `path` is not a folder
    /// or holds images itself.
    static func classFolders(_ path: String) throws(QuantizeError) -> [String] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else { return [] }
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: path) } catch {
            throw .cannotRead(path: path, reason: (error as NSError).localizedDescription)
        }
        return names.filter { name in
            var dir: ObjCBool = false
            return !name.hasPrefix(".") && FileManager.default.fileExists(atPath: (path as NSString).appendingPathComponent(name), isDirectory: &dir) && dir.boolValue
        }.sorted()
    }

    /// Labels from IDX or a 1-D .npy of unsigned or signed integers (numpy's default int64 too).
    static func loadLabels(_ path: String) throws(QuantizeError) -> [Int] {
        var b = try readFile(path)
        func fail(_ reason: String) -> QuantizeError { .invalidLabelData(path: path, reason: reason) }
        if b.count >= 2 && b[0] == 0x1F && b[1] == 0x8B {
            do { b = try gunzipDeclared(b) } catch { throw fail(error.reason) }
        }
        guard b.count >= 12, Array(b[0..<6]) == [0x93] + Array("NUMPY".utf8) else {
            return try LabelSet.load(path: path).map { Int($0) }
        }
        let start = b[6] == 1 ? 10 : 12
        let length = b[6] == 1 ? Int(b[8]) | Int(b[9]) << 8 : Int(b[8]) | Int(b[9]) << 8 | Int(b[10]) << 16 | Int(b[11]) << 24
        guard b.count >= start + length, let header = String(bytes: b[start..<(start + length)], encoding: .utf8) else {
            throw fail("truncated .npy header")
        }
        let types: [String: (size: Int, signed: Bool)] = ["|u1": (1, false), "|i1": (1, true), "<u2": (2, false), "<i2": (2, true),
                                                          "<u4": (4, false), "<i4": (4, true), "<u8": (8, false), "<i8": (8, true)]
        guard let type = types.first(where: { header.contains("'descr': '\($0.key)'") })?.value else {
            throw fail(".npy labels must be little-endian integers (uint8, int32, int64...)")
        }
        guard !header.contains("'fortran_order': True") else { throw fail(".npy labels must not be Fortran-ordered") }
        guard let open = header.range(of: "'shape':"), let lp = header[open.upperBound...].firstIndex(of: "("),
              let rp = header[lp...].firstIndex(of: ")") else { throw fail(".npy header has no 'shape'") }
        let dims = header[header.index(after: lp)..<rp].split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard dims.count == 1 else { throw fail(".npy labels must be 1-D") }
        let count = dims[0], data = start + length
        guard (b.count - data) / type.size >= count else { throw fail("truncated: \(count) labels declared, \(b.count - data) bytes present") }
        var out = [Int](repeating: 0, count: count)
        for i in 0..<count {
            var v: UInt64 = 0
            for byte in 0..<type.size { v |= UInt64(b[data + i * type.size + byte]) << (8 * byte) }
            if type.signed && type.size < 8 && v >> (8 * type.size - 1) & 1 == 1 { v |= ~0 << (8 * type.size) } // sign-extend
            out[i] = Int(Int64(bitPattern: v))
        }
        return out
    }
}

private extension ImageSet {
    /// The first `count` images.
    func prefix(_ count: Int) -> ImageSet {
        ImageSet(count: count, height: height, width: width, channels: channels, pixels: Array(pixels[0..<(count * imageSize)]))
    }
}
