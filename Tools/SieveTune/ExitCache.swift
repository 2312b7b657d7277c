import SieveCore
import SieveQuantize

/// Every head's and the classifier's int8 logits for a set of labelled images, computed once by
/// the int8 runtime, so exit rules can be evaluated in milliseconds instead of re-running the net.
/// Row-limited logits equal the full ones on the surviving rows, so decisions replayed from
/// this cache are exactly the runtime's.
public struct ExitCache {
    public let count: Int
    public let classes: Int
    public let headCount: Int
    /// `[image][head][class]`.
    public let headLogits: [Int8]
    /// `[image][class]`.
    public let finalLogits: [Int8]
    public let labels: [UInt8]

    public init(model: Model, images: ImageSet, labels: [UInt8], indices: [Int], progress: ((Int) -> Void)? = nil) throws {
        let interpreter = try Interpreter(model: model)
        classes = model.classCount
        headCount = model.heads.count
        count = indices.count
        var heads = [Int8](repeating: 0, count: count * headCount * classes)
        var finals = [Int8](repeating: 0, count: count * classes)
        var truth: [UInt8] = []
        truth.reserveCapacity(count)
        for (n, i) in indices.enumerated() {
            images.image(i).withUnsafeBytes { interpreter.setInput(pixels: $0) }
            interpreter.run()
            for (h, head) in model.heads.enumerated() {
                for (c, v) in interpreter.tensor(Int(head.logitsTensor)).enumerated() { heads[(n * headCount + h) * classes + c] = v }
            }
            for (c, v) in interpreter.output.enumerated() { finals[n * classes + c] = v }
            truth.append(labels[i])
            if n % 250 == 0 { progress?(n) }
        }
        headLogits = heads
        finalLogits = finals
        self.labels = truth
    }
}
