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
/// decide identically (docs/EARLY-EXIT.md):
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
    /// How `execute` walks the plan.
    enum Walk {
        /// Every op, every head's logits and scores on all rows; no exit (`run()`).
        case everyOp
        /// Classify: heads decide, exact logits stand in for the ops they replace.
        case exitsOn
        /// Classify with the backbone and classifier only: every head segment skipped.
        case exitsOff
    }

    /// Classifies the current input with the blob's exit thresholds. With `exits` false, runs the
    /// backbone and classifier only (the no-exit network: heads cost nothing). Allocates nothing.
    public func classify(exits: Bool = true) -> Classification {
        execute(exits ? .exitsOn : .exitsOff)
    }

    /// The one executor: walks the execution plan. Counts the MACs a classification performs
    /// (the rows of class logits for surviving classes only).
    func execute(_ walk: Walk) -> Classification {
        beginFrame()
        let classes = model.classCount
        let steps = executionPlan.steps
        classMask.update(repeating: 1, count: classes)
        var alive = classes
        var macs = 0
        var s = 0
        while s < steps.count {
            switch steps[s] {
            case let .op(index, opMACs, classRows, replaced):
                if !replaced || walk == .everyOp { run(op: index) }
                macs += classRows ? opMACs / classes * alive : opMACs
            case let .enterHead(h, skipTo):
                if walk == .exitsOff || (walk == .exitsOn && model.heads[h].threshold == 0) { s = skipTo; continue }
            case let .logits(source):
                computeLogits(source, rows: walk == .everyOp ? nil : UnsafePointer(classMask))
            case let .exit(h):
                if walk == .everyOp { computeScores(head: h); break }
                let logits = UnsafePointer(logitValues + h * classes)
                let verdict = ExitRule.decide(head: model.heads[h], logits: logits, mask: classMask, classes: classes)
                alive = verdict.alive
                if verdict.exit {
                    return Classification(answer: ExitRule.best(logits, mask: classMask, classes: classes), exitHead: h,
                                          survivorCount: alive, macs: macs)
                }
            }
            s += 1
        }
        let answer = ExitRule.best(UnsafePointer(logitValues + model.heads.count * classes), mask: classMask, classes: classes)
        return Classification(answer: answer, exitHead: -1, survivorCount: alive, macs: macs)
    }

    /// The surviving classes after the last `classify` (1 = alive).
    public var survivors: UnsafeBufferPointer<UInt8> { UnsafeBufferPointer(start: classMask, count: model.classCount) }
}
