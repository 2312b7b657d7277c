import SieveCore

/// A copy of a loaded blob with new head records (thresholds, kinds) and lines appended to its
/// provenance; every other section is copied byte for byte and the CRCs are recomputed.
public func blobWithHeads(_ model: Model, heads: [HeadRecord], provenance extra: String) -> [UInt8] {
    precondition(heads.count == model.heads.count, "one record per head")
    var writer = BlobWriter()
    for entry in model.blob.table {
        let kind = SectionKind(rawValue: entry.kind)!
        switch kind {
        case .heads:
            var w = ByteWriter()
            for h in heads { h.encode(into: &w) }
            writer.add(kind, w.bytes)
        case .provenance:
            writer.add(kind, Array(model.provenance) + Array(extra.utf8))
        default:
            writer.add(kind, Array(model.blob.section(kind)))
        }
    }
    return writer.write()
}
