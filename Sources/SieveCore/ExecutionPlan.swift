/// What running a frame does, in order: a flat list of steps built once from a validated model.
/// One executor walks it (`Interpreter.execute`); classifying with exits off is the same plan with
/// each head's segment skipped, and running every op (for inspection and tuning) is the same plan
/// with nothing skipped. `sieve inspect` prints it.
public struct ExecutionPlan {
    public enum Step: Equatable {
        /// Run op `index` (`macs` multiply-accumulates). `classRows`: it writes class logits, so a
        /// classification counts only the surviving classes' rows of it. `replaced`: exact logits
        /// computed earlier in the plan stand for its output, so a classification skips it.
        case op(index: Int, macs: Int, classRows: Bool, replaced: Bool)
        /// Head `head`'s segment starts here; with exits off or the head's threshold 0, continue at step `skipTo`.
        case enterHead(head: Int, skipTo: Int)
        /// Compute the exact logits of `source` (head `source`, or the classifier when it equals the head count).
        case logits(source: Int)
        /// Decide head `head`'s exit from its logits (the rule of ExitRule).
        case exit(head: Int)
    }

    /// How one head's or the classifier's logits are computed (docs/FORMAT.md, "Exact logits").
    public struct LogitSource: Equatable {
        /// The op that writes the logits tensor, and the tensor.
        public let writer: Int
        public let tensor: Int
        /// The writer is fully connected: its accumulators are dequantised without int8 rounding.
        /// Otherwise the int8 logits tensor is dequantised (a pool's means read) once the writer has run.
        public let exact: Bool
        /// A global average pool right before the writer, folded in as exact channel sums.
        public let foldsPool: Bool
        /// The writer is a global average pool whose channel means are read before their int8
        /// rounding, once it has run (its input is still intact then; at most 2^24 pixels).
        public var poolMeans = false
        /// The first op the exact computation replaces (the pool or the writer); one past the writer when not exact.
        public var firstReplaced: Int { exact ? (foldsPool ? writer - 1 : writer) : writer + 1 }
    }

    public let steps: [Step]
    /// Per head, then the classifier.
    public let sources: [LogitSource]

    public init(model: Model) {
        var sources: [LogitSource] = []
        for head in model.heads {
            let last = Int(head.firstOp + head.opCount) - 1
            sources.append(ExecutionPlan.source(model, writer: last, earliest: Int(head.firstOp), tensor: Int(head.logitsTensor)))
        }
        let output = Int(model.info.outputTensor)
        let writer = model.ops.lastIndex { Int($0.output) == output }!
        // A pool folds into the classifier only when nothing else reads its output.
        let pooled = writer > 0 ? model.ops[writer - 1].output : 0
        let poolIsPrivate = writer > 0 && !model.heads.contains { $0.tapTensor == pooled }
            && !model.ops.indices.contains { $0 != writer && model.ops[$0].inputs.contains(pooled) }
        sources.append(ExecutionPlan.source(model, writer: writer, earliest: poolIsPrivate ? writer - 1 : writer, tensor: output))
        self.sources = sources
        self.steps = ExecutionPlan.schedule(model, sources)
    }

    /// The source for logits written by op `writer`: exact when it is fully connected, with a global
    /// average pool right before it (not before `earliest`) folded in.
    private static func source(_ model: Model, writer: Int, earliest: Int, tensor: Int) -> LogitSource {
        let fc = model.ops[writer]
        guard fc.opKind == .fullyConnected else {
            let tap = model.tensors[Int(fc.input0)]
            return LogitSource(writer: writer, tensor: tensor, exact: false, foldsPool: false,
                               poolMeans: fc.opKind == .globalAveragePool && tap.h * tap.w <= 1 << 24)
        }
        var folds = false
        if writer - 1 >= earliest, model.ops[writer - 1].opKind == .globalAveragePool, model.ops[writer - 1].output == fc.input0 {
            let tap = model.tensors[Int(model.ops[writer - 1].input0)]
            folds = tap.h * tap.w <= 1 << 24  // channel sums stay in int32: at most 2^24 pixels of |x| <= 128
        }
        return LogitSource(writer: writer, tensor: tensor, exact: true, foldsPool: folds)
    }

    /// Ops in order; each logits step just before the first op it replaces (it reads what that op
    /// reads, before later ops reuse the memory); each head's segment from its first op (or its
    /// logits) to its exit decision. The classifier's logits never fall inside a head's segment.
    private static func schedule(_ model: Model, _ sources: [LogitSource]) -> [Step] {
        let classifier = model.heads.count
        var steps: [Step] = []
        var enter = -1
        for i in 0...model.ops.count {
            if sources[classifier].firstReplaced == i { steps.append(.logits(source: classifier)) }
            guard i < model.ops.count else { break }
            let h = model.heads.firstIndex { Int($0.firstOp) <= i && i < Int($0.firstOp + $0.opCount) }
            if let h, Int(model.heads[h].firstOp) == i {
                enter = steps.count
                steps.append(.enterHead(head: h, skipTo: -1))
            }
            if let h, sources[h].firstReplaced == i { steps.append(.logits(source: h)) }
            let owner = h ?? classifier
            let replaced = sources[owner].exact && i >= sources[owner].firstReplaced && i <= sources[owner].writer
            let classRows = i == sources[owner].writer && sources[owner].exact
            steps.append(.op(index: i, macs: model.macs(op: i), classRows: classRows, replaced: replaced))
            if let h, i == sources[h].writer {
                if !sources[h].exact { steps.append(.logits(source: h)) }
                steps.append(.exit(head: h))
                steps[enter] = .enterHead(head: h, skipTo: steps.count)
            }
        }
        return steps
    }

    /// One line per step, for `sieve inspect`.
    public func describe(_ step: Step, model: Model) -> String {
        switch step {
        case let .op(index, macs, classRows, replaced):
            var text = "op \(index) \(model.ops[index].opKind!.name), \(macs) MACs"
            if classRows { text += " (surviving classes' rows only)" }
            if replaced { text += "; skipped when classifying: the exact logits stand for it" }
            return text
        case let .enterHead(head, skipTo):
            return "head \(head): with exits off or threshold 0, continue at step \(skipTo)"
        case let .logits(source):
            let s = sources[source]
            let name = source == model.heads.count ? "the classifier" : "head \(source)"
            let how = s.exact ? (s.foldsPool ? "fully connected accumulators, pool folded in" : "fully connected accumulators")
                : s.poolMeans ? "the pool's exact channel means" : "int8 tensor dequantised"
            return "exact logits of \(name) (\(how))"
        case let .exit(head):
            return "exit decision of head \(head)"
        }
    }
}
