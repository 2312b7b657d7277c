/// Where everything an interpreter touches while running lives, in its one allocation planned at
/// load: the activation arena (unless the caller brings its own), the weights packed for the
/// kernel path, each thread's kernel scratch, the exact logits, the head scores, a folded pool's
/// channel sums and the class mask. Every region starts on a 64-byte boundary, and kernels may
/// over-read 64 bytes past each (the arena plan already ends with them; the others are rounded up).
struct Workspace {
    /// Byte offsets into the allocation; `arena` is nil when the caller supplies the arena.
    let arena: Int?
    let packed: Int
    /// Each op's packed weights, relative to `packed` (sizes 0 take no room).
    let packedOffsets: [Int]
    let scratch: Int
    let scratchStride: Int
    let logits: Int
    let scores: Int
    let sums: Int
    let mask: Int
    let bytes: Int

    /// - Parameters:
    ///   - arenaBytes: the activation arena's size, nil when the caller supplies it.
    ///   - packedSizes: each op's packed weight bytes on the kernel path.
    ///   - scratchBytes: the largest op's kernel scratch, for each of `threads` threads.
    init(arenaBytes: Int?, packedSizes: [Int], scratchBytes: Int, threads: Int, model: Model, sumsCount: Int) {
        var end = 0
        func region(_ size: Int) -> Int {
            defer { end += BlobLayout.roundUp(size) }
            return end
        }
        arena = arenaBytes.map { region($0) }
        var offsets: [Int] = []
        var packedBytes = 0
        for size in packedSizes {
            offsets.append(packedBytes)
            packedBytes += BlobLayout.roundUp(size)
        }
        packedOffsets = offsets
        packed = region(packedBytes)
        scratchStride = BlobLayout.roundUp(scratchBytes)
        scratch = region(scratchStride * threads)
        logits = region((model.heads.count + 1) * model.classCount * MemoryLayout<Float>.size)
        scores = region(max(1, model.heads.count * model.classCount) * MemoryLayout<Float>.size)
        sums = region(sumsCount * MemoryLayout<Int32>.size)
        mask = region(model.classCount)
        bytes = end
    }
}
