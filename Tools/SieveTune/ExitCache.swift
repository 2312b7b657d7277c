import SieveCore
import SieveQuantize

/// Every head's and the classifier's exact logits for a set of labelled images, computed once by
/// the int8 runtime, so exit rules can be evaluated in milliseconds instead of re-running the net.
/// Row-limited logits equal the full ones on the surviving rows, so decisions replayed from
/// this cache are exactly the runtime's.
public struct ExitCache {
    public let count: Int
    public let classes: Int
    public let headCount: Int
    /// `[image][head][class]`.
    public let headLogits: [Float]
    /// `[image][class]`.
    public let finalLogits: [Float]
    public let labels: [UInt8]

    /// Runs the model over `indices` of `images`, one interpreter per core.
    public init(model: Model, images: ImageSet, labels: [UInt8], indices: [Int], progress: Bool = false) throws {
        classes = model.classCount
        headCount = model.heads.count
        count = indices.count
        let (k, hc) = (classes, headCount)
        let bar = Progress.make("caching head logits (\(indices.count) images)", enabled: progress)
        let chunks: [Result<([Float], [Float]), SieveError>] = parallelChunks(count: indices.count, progress: bar) { range in
            do throws(SieveError) {
                let interpreter = try Interpreter(model: model)
                var heads = [Float](), finals = [Float]()
                heads.reserveCapacity(range.indices.count * hc * k)
                finals.reserveCapacity(range.indices.count * k)
                for n in range.indices {
                    images.image(indices[n]).withUnsafeBytes { interpreter.setInput(pixels: $0) }
                    interpreter.run()
                    for h in model.heads.indices { heads += interpreter.logits(head: h) }
                    finals += interpreter.finalLogits
                    range.step()
                }
                return .success((heads, finals))
            } catch { return .failure(error) }
        }
        bar?.finish()
        var heads = [Float](), finals = [Float]()
        for chunk in chunks {
            let (h, f) = try chunk.get()
            heads += h; finals += f
        }
        headLogits = heads
        finalLogits = finals
        self.labels = indices.map { labels[$0] }
    }
}
