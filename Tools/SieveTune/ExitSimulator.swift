import SieveCore

/// Replays the runtime's exit rule (`ExitRule`) over an `ExitCache` with any thresholds, counting
/// MACs exactly as `Interpreter.classify` does.
public struct ExitSimulator {
    public let cache: ExitCache
    /// The blob's heads (tap, kind, ops); thresholds come from the setting being evaluated.
    public let heads: [HeadRecord]
    /// Backbone MACs before each head's first op; MACs of each head without / per class row.
    let backboneBefore: [Int]
    let headFixed: [Int]
    let headPerRow: [Int]
    /// All backbone MACs but the classifier's class rows, and those per row.
    let backboneFixed: Int
    let classifierPerRow: Int
    public let fullMACs: Int
    /// Per image: is the no-exit answer (final argmax over all classes) right?
    let referenceCorrect: [Bool]

    public struct Outcome {
        public var correct = 0
        public var macs = 0
        /// Images the no-exit network gets right and this setting wrong, and the reverse.
        public var lost = 0
        public var gained = 0
        /// Exits per head, then the final classifier last.
        public var exits: [Int]
        public let count: Int
        public var accuracy: Double { 100 * Double(correct) / Double(count) }
        public var meanMACs: Double { Double(macs) / Double(count) }
    }

    public init(model: Model, cache: ExitCache) {
        self.cache = cache
        heads = model.heads
        let classes = model.classCount
        var inHead = [Bool](repeating: false, count: model.ops.count)
        var fixed: [Int] = [], perRow: [Int] = []
        for head in model.heads {
            let range = Int(head.firstOp)..<Int(head.firstOp + head.opCount)
            for i in range { inHead[i] = true }
            let last = range.upperBound - 1
            fixed.append(range.dropLast().reduce(0) { $0 + model.macs(op: $1) })
            perRow.append(model.macs(op: last) / classes)
        }
        headFixed = fixed
        headPerRow = perRow
        backboneBefore = model.heads.map { head in (0..<Int(head.firstOp)).filter { !inHead[$0] }.reduce(0) { $0 + model.macs(op: $1) } }
        let classifier = model.ops.lastIndex { $0.output == model.info.outputTensor }!
        let classifierIsFC = model.ops[classifier].opKind == .fullyConnected
        classifierPerRow = classifierIsFC ? model.macs(op: classifier) / classes : 0
        backboneFixed = model.ops.indices.filter { !inHead[$0] }.reduce(0) { $0 + model.macs(op: $1) } - classifierPerRow * classes
        fullMACs = backboneFixed + classifierPerRow * classes
        let everyClass = [UInt8](repeating: 1, count: classes)
        referenceCorrect = (0..<cache.count).map { n in
            cache.finalLogits.withUnsafeBufferPointer { logits in
                ExitRule.best(logits.baseAddress! + n * classes, mask: everyClass, classes: classes) == Int(cache.labels[n])
            }
        }
    }

    /// Accuracy, MACs and exit histogram with these heads' kinds and thresholds.
    public func evaluate(_ setting: [HeadRecord]) -> Outcome {
        let k = cache.classes, hc = cache.headCount
        var outcome = Outcome(exits: [Int](repeating: 0, count: hc + 1), count: cache.count)
        var mask = [UInt8](repeating: 1, count: k)
        cache.headLogits.withUnsafeBufferPointer { headLogits in
        cache.finalLogits.withUnsafeBufferPointer { finalLogits in
        mask.withUnsafeMutableBufferPointer { mask in
            for n in 0..<cache.count {
                for c in 0..<k { mask[c] = 1 }
                var alive = k, macs = 0, answer = -1, exitAt = hc
                for h in 0..<hc where setting[h].threshold > 0 {
                    macs += headFixed[h] + headPerRow[h] * alive
                    let logits = headLogits.baseAddress! + (n * hc + h) * k
                    let verdict = ExitRule.decide(head: setting[h], logits: logits, mask: mask.baseAddress!, classes: k)
                    alive = verdict.alive
                    if verdict.exit {
                        answer = ExitRule.best(logits, mask: mask.baseAddress!, classes: k)
                        macs += backboneBefore[h]
                        exitAt = h
                        break
                    }
                }
                if answer < 0 {
                    macs += backboneFixed + classifierPerRow * alive
                    answer = ExitRule.best(finalLogits.baseAddress! + n * k, mask: mask.baseAddress!, classes: k)
                }
                outcome.exits[exitAt] += 1
                outcome.macs += macs
                let right = answer == Int(cache.labels[n])
                if right { outcome.correct += 1 }
                if right != referenceCorrect[n] { if right { outcome.gained += 1 } else { outcome.lost += 1 } }
            }
        }}}
        return outcome
    }
}
