/// Where each tensor lives in the one activation arena.
///
/// Algorithm (greedy by size, as TFLite Micro's GreedyMemoryPlanner): a tensor is alive from
/// the op that writes it to the last op that reads it; the input, head logits and the output
/// stay alive for the whole run, so a run never clobbers its own input (running twice on one
/// input gives the same answer) and scores can be read after it. Tensors are
/// placed largest first, each at the lowest 64-aligned offset that overlaps no placed tensor
/// whose lifetime overlaps its own. Cost: O(T^2) for T tensors, once, at load.
/// Every buffer is rounded up to 64 bytes and the arena ends with 64 spare bytes, so a
/// kernel may over-read up to 64 bytes past any tensor.
public struct ArenaPlan {
    public let offsets: [Int]
    public let bytes: Int
    /// What the arena would need without reuse: the sum of every tensor's rounded size.
    public let unsharedBytes: Int

    public init(model: Model) {
        let count = model.tensors.count
        var first = [Int](repeating: Int.max, count: count)
        var last = [Int](repeating: -1, count: count)
        first[Int(model.info.inputTensor)] = -1
        for (i, op) in model.ops.enumerated() {
            first[Int(op.output)] = min(first[Int(op.output)], i)
            last[Int(op.output)] = max(last[Int(op.output)], i)
            for input in op.inputs { last[Int(input)] = max(last[Int(input)], i) }
        }
        let end = model.ops.count
        last[Int(model.info.outputTensor)] = end
        for head in model.heads { last[Int(head.logitsTensor)] = end }
        last[Int(model.info.inputTensor)] = end

        let sizes = model.tensors.map { roundUp($0.elementCount, BlobLayout.alignment) }
        let used = (0..<count).filter { first[$0] != Int.max }
        var order = used
        insertionSort(&order) { sizes[$0] != sizes[$1] ? sizes[$0] > sizes[$1] : $0 < $1 }
        var offsets = [Int](repeating: 0, count: count)
        var placed: [Int] = []
        var high = 0
        for t in order {
            // Candidate offsets: 0 and the end of every conflicting placed tensor; take the lowest that fits.
            let conflicts = placed.filter { first[$0] <= last[t] && first[t] <= last[$0] }
            var candidates = [0] + conflicts.map { offsets[$0] + sizes[$0] }
            insertionSort(&candidates, by: <)
            for start in candidates {
                let fits = conflicts.allSatisfy { start + sizes[t] <= offsets[$0] || offsets[$0] + sizes[$0] <= start }
                if fits { offsets[t] = start; break }
            }
            placed.append(t)
            high = max(high, offsets[t] + sizes[t])
        }
        self.offsets = offsets
        self.bytes = high + BlobLayout.alignment
        self.unsharedBytes = used.reduce(0) { $0 + sizes[$1] } + BlobLayout.alignment
    }
}

/// Sorts in place by a strict total order. The standard library's sort would bring two merge-sort
/// specialisations (3.4 KB) into the board binary; these arrays hold a model's tensors, sorted once
/// at load.
private func insertionSort(_ a: inout [Int], by less: (Int, Int) -> Bool) {
    guard a.count > 1 else { return }
    for i in 1..<a.count {
        let x = a[i]
        var j = i
        while j > 0 && less(x, a[j - 1]) { a[j] = a[j - 1]; j -= 1 }
        a[j] = x
    }
}
