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

/// The exit decision at one head, shared by the interpreter and `sieve tune`'s simulation so both
/// decide identically (README "Early exit"):
/// All on the exact logits (ExactLogits.swift).
/// - Exclusion head (sigmoid scores p, beta = threshold): among the surviving classes, keep c iff
///   p_c > beta * max p; the top surviving class always stays. Once excluded, a class never returns.
///   One survivor left: exit with it. With `exitConfidence` set, also exit when the softmax over the
///   survivors' logits tops it.
/// - Confidence head (threshold t): softmax over the surviving classes; exit when its max > t.
/// - A head with threshold 0 is off: it is skipped and costs nothing.
/// - The final answer is the argmax of the final logits over the survivors.
public enum ExitRule {
    /// Updates `mask` (1 = alive) with one head's verdict on its exact logits; returns (exit now?, classes alive).
    @inline(__always)
    public static func decide(head: HeadRecord, logits: UnsafePointer<Float>,
                              mask: UnsafeMutablePointer<UInt8>, classes: Int) -> (exit: Bool, alive: Int) {
        if head.kind == HeadKind.exclusion.rawValue {
            let top = best(logits, mask: mask, classes: classes)
            let cut = head.threshold * sieve_sigmoid(logits[top])
            var alive = 0
            for c in 0..<classes where mask[c] != 0 {
                if c != top && !(sieve_sigmoid(logits[c]) > cut) { mask[c] = 0 } else { alive += 1 }
            }
            if alive == 1 { return (true, 1) }
            let confident = head.exitConfidence > 0 && softmaxMax(logits, mask: mask, classes: classes) > head.exitConfidence
            return (confident, alive)
        }
        var alive = 0
        for c in 0..<classes where mask[c] != 0 { alive += 1 }
        return (softmaxMax(logits, mask: mask, classes: classes) > head.threshold, alive)
    }

    /// The largest softmax probability over the surviving classes' logits.
    @inline(__always)
    public static func softmaxMax(_ logits: UnsafePointer<Float>, mask: UnsafePointer<UInt8>, classes: Int) -> Float {
        let top = logits[best(logits, mask: mask, classes: classes)]
        var total: Float = 0
        for c in 0..<classes where mask[c] != 0 { total += sieve_expf(logits[c] - top) }
        return 1 / total
    }

    /// The surviving class with the largest logit (the first on ties); the mask is never empty.
    @inline(__always)
    public static func best(_ logits: UnsafePointer<Float>, mask: UnsafePointer<UInt8>, classes: Int) -> Int {
        var top = -1
        for c in 0..<classes where mask[c] != 0 && (top < 0 || logits[c] > logits[top]) { top = c }
        return top
    }
}

extension Interpreter {
    /// Classifies the current input with the blob's exit thresholds. With `exits` false, runs the
    /// backbone and classifier only (the no-exit network: heads cost nothing). Allocates nothing.
    public func classify(exits: Bool = true) -> Classification {
        let classes = model.classCount
        let finalSource = logitSources[model.heads.count]
        classMask.update(repeating: 1, count: classes)
        var alive = classes
        var macs = 0
        var op = 0
        while op < opMACs.count {
            let h = headStartingAt[op]
            if h < 0 {
                if op == finalSource.firstReplacedOp { computeLogits(model.heads.count, rows: classMask) }
                if !replacedByFinalLogits[op] { run(op: op, rows: classMask) }
                macs += writesClassLogits[op] ? opMACs[op] / classes * alive : opMACs[op]
                op += 1
                continue
            }
            let head = model.heads[h]
            let end = op + Int(head.opCount)
            if !exits || head.threshold == 0 { op = end; continue }
            for i in op..<end {
                if i < logitSources[h].firstReplacedOp { run(op: i, rows: classMask) }
                macs += writesClassLogits[i] ? opMACs[i] / classes * alive : opMACs[i]
            }
            op = end
            computeLogits(h, rows: classMask)
            let logits = UnsafePointer(logitValues + h * classes)
            let verdict = ExitRule.decide(head: head, logits: logits, mask: classMask, classes: classes)
            alive = verdict.alive
            if verdict.exit {
                return Classification(answer: ExitRule.best(logits, mask: classMask, classes: classes), exitHead: h, survivorCount: alive, macs: macs)
            }
        }
        if finalSource.firstReplacedOp == opMACs.count { computeLogits(model.heads.count, rows: classMask) }
        let answer = ExitRule.best(UnsafePointer(logitValues + model.heads.count * classes), mask: classMask, classes: classes)
        return Classification(answer: answer, exitHead: -1, survivorCount: alive, macs: macs)
    }

    /// The surviving classes after the last `classify` (1 = alive).
    public var survivors: UnsafeBufferPointer<UInt8> { UnsafeBufferPointer(start: classMask, count: model.classCount) }
}
