/// Head extraction and op order (docs/FORMAT.md, HEADS): the backbone in ONNX order, each head's
/// ops right after the backbone op that writes its tap tensor.
extension Graph {
    /// Layers needed to compute value `v`.
    func ancestors(of v: Int) -> Set<Int> {
        var seen: Set<Int> = []
        var stack: [Int] = []
        if let p = values[v].producer { stack.append(p) }
        while let l = stack.popLast() {
            guard seen.insert(l).inserted else { continue }
            for input in layers[l].inputs { if let p = values[input].producer { stack.append(p) } }
        }
        return seen
    }

    /// Drops dead layers, finds each head's layers and tap, and reorders `layers` into execution order.
    mutating func schedule() throws(QuantizeError) {
        let backbone = ancestors(of: final)
        var taken = backbone
        var headLayers: [[Int]] = []
        for (h, head) in heads.enumerated() {
            let name = values[head.output].name
            let own = ancestors(of: head.output).subtracting(backbone)
            guard !own.isEmpty else {
                throw .invalidModel(reason: "head '\(name)' is computed entirely by the backbone; a head needs ops of its own")
            }
            guard own.isDisjoint(with: taken) else { throw .invalidModel(reason: "head '\(name)' shares ops with another head") }
            taken.formUnion(own)
            let ordered = own.sorted { (layers[$0].order, $0) < (layers[$1].order, $1) }  // a Concat's chain links share a node
            var external: Set<Int> = []
            for l in ordered { for input in layers[l].inputs where !own.contains(values[input].producer ?? -1) { external.insert(input) } }
            guard external.count == 1, let tap = external.first else {
                let names = external.map { "'\(values[$0].name)'" }.sorted().joined(separator: ", ")
                throw .invalidModel(reason: "head '\(name)' reads \(external.count) backbone tensors (\(names)); a head reads one tap tensor")
            }
            guard values[tap].producer != nil else {
                throw .invalidModel(reason: "head '\(name)' reads the graph input directly; a head must tap a tensor the backbone computes")
            }
            let first = ordered[0]
            if layers[first].inputs[0] != tap {
                guard layers[first].inputs.count == 2, layers[first].inputs[1] == tap else {
                    throw .invalidModel(reason: "head '\(name)': its first op '\(layers[first].node)' does not read the tap tensor '\(values[tap].name)'")
                }
                layers[first].inputs.swapAt(0, 1) // ADD is commutative
            }
            guard layers[ordered.last!].output == head.output else {
                throw .invalidModel(reason: "head '\(name)': its last op in ONNX order does not write the head output")
            }
            heads[h].tap = tap
            headLayers.append(ordered)
        }
        for (h, head) in heads.enumerated() {
            // A backbone op reading a head's tensors would make the head part of the backbone; ancestors() rules it out.
            assert(headLayers[h].allSatisfy { !backbone.contains($0) }, "head \(values[head.output].name) overlaps the backbone")
        }

        var order: [Int] = []
        var headStart = [Int](repeating: 0, count: heads.count)
        let backboneOrder = backbone.sorted { (layers[$0].order, $0) < (layers[$1].order, $1) }
        // Heads in tap order: stable on the metadata order for heads sharing a tap.
        for l in backboneOrder {
            order.append(l)
            for h in heads.indices where values[heads[h].tap].producer == l {
                headStart[h] = order.count
                order.append(contentsOf: headLayers[h])
            }
        }
        // Reindex layers and value producers.
        var newIndex = [Int](repeating: -1, count: layers.count)
        for (i, l) in order.enumerated() { newIndex[l] = i }
        layers = order.map { layers[$0] }
        for v in values.indices {
            if let p = values[v].producer { values[v].producer = newIndex[p] >= 0 ? newIndex[p] : nil }
        }
        for h in heads.indices {
            heads[h].firstLayer = headStart[h]
            heads[h].layerCount = headLayers[h].count
        }
        // Heads in op order, as the HEADS section requires.
        heads.sort { $0.firstLayer < $1.firstLayer }
    }
}
