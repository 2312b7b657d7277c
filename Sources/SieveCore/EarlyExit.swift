import CSieveKernels

/// What classifying one frame did.
public struct Classification: Equatable {
    /// The class index.
    public var answer: Int
    /// The head the frame exited at, or -1 when it ran to the final classifier.
    public var exitHead: Int
    /// Classes still alive when the frame was decided (1 on an exclusion exit).
    public var survivorCount: Int
    /// Multiply-accumulates actually executed: backbone, heads run, classifier rows computed.
    public var macs: Int

    public init(answer: Int, exitHead: Int, survivorCount: Int, macs: Int) {
        self.answer = answer; self.exitHead = exitHead; self.survivorCount = survivorCount; self.macs = macs
    }
}

/// Early exit (README "Early exit"). Heads run in op order, right after their tap tensor.
/// - Exclusion head (sigmoid scores p, beta = threshold): among the surviving classes, keep c iff
///   p_c > beta * max p; the top surviving class always stays. Once excluded, a class never returns.
///   One survivor left: exit with it. With `exitConfidence` set, also exit when the softmax over the
///   survivors' logits tops it.
/// - Confidence head (threshold t): softmax over the surviving classes; exit when its max > t.
/// - A head with threshold 0 is off: it is skipped and costs nothing.
/// - The final answer is the argmax of the final logits over the survivors.
/// Head and classifier logits are computed only for surviving classes.
extension Interpreter {
    /// Classifies the current input. With `exits` false, runs the backbone and classifier only
    /// (the no-exit network: heads cost nothing). Allocates nothing.
    public func classify(exits: Bool = true) -> Classification {
        let classes = model.classCount
        classMask.update(repeating: 1, count: classes)
        var alive = classes
        var macs = 0
        var op = 0
        let opCount = opMACs.count
        while op < opCount {
            let h = headStartingAt[op]
            if h < 0 {
                run(op: op, rows: classMask)
                macs += writesClassLogits[op] ? opMACs[op] / classes * alive : opMACs[op]
                op += 1
                continue
            }
            let head = model.heads[h]
            let end = op + Int(head.opCount)
            if !exits || head.threshold == 0 { op = end; continue }
            for i in op..<end {
                run(op: i, rows: classMask)
                macs += writesClassLogits[i] ? opMACs[i] / classes * alive : opMACs[i]
            }
            op = end
            let logitsTensor = model.tensors[Int(head.logitsTensor)]
            let logits = UnsafePointer(tensor(Int(head.logitsTensor)).baseAddress!)
            if head.headKind == .exclusion {
                alive = exclude(logits: logits, scale: logitsTensor.scale, zeroPoint: logitsTensor.zeroPoint, beta: head.threshold)
                if alive == 1 { return Classification(answer: best(logits), exitHead: h, survivorCount: 1, macs: macs) }
                if head.exitConfidence > 0 && survivorSoftmaxMax(logits, scale: logitsTensor.scale) > head.exitConfidence {
                    return Classification(answer: best(logits), exitHead: h, survivorCount: alive, macs: macs)
                }
            } else if survivorSoftmaxMax(logits, scale: logitsTensor.scale) > head.threshold {
                return Classification(answer: best(logits), exitHead: h, survivorCount: alive, macs: macs)
            }
        }
        return Classification(answer: best(UnsafePointer(output.baseAddress!)), exitHead: -1, survivorCount: alive, macs: macs)
    }

    /// The surviving classes after the last `classify` (1 = alive).
    public var survivors: UnsafeBufferPointer<UInt8> { UnsafeBufferPointer(start: classMask, count: model.classCount) }

    /// Applies one exclusion head to the mask; returns how many classes survive.
    private func exclude(logits: UnsafePointer<Int8>, scale: Float, zeroPoint: Int32, beta: Float) -> Int {
        let classes = model.classCount
        sieve_sigmoid_scores(logits, Int32(classes), scale, zeroPoint, scratch)
        let top = best(logits)
        let cut = beta * scratch[top]
        var alive = 0
        for c in 0..<classes where classMask[c] != 0 {
            if c != top && !(scratch[c] > cut) { classMask[c] = 0 } else { alive += 1 }
        }
        return alive
    }

    /// The largest softmax probability over the surviving classes' logits.
    private func survivorSoftmaxMax(_ logits: UnsafePointer<Int8>, scale: Float) -> Float {
        let top = Int32(logits[best(logits)])
        var total: Float = 0
        for c in 0..<model.classCount where classMask[c] != 0 {
            total += sieve_expf(scale * Float(Int32(logits[c]) - top))
        }
        return 1 / total
    }

    /// The surviving class with the largest logit (the first on ties).
    private func best(_ logits: UnsafePointer<Int8>) -> Int {
        var top = -1
        for c in 0..<model.classCount where classMask[c] != 0 && (top < 0 || logits[c] > logits[top]) { top = c }
        return top
    }
}
