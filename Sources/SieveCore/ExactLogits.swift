import CSieveKernels

/// How one head's or the classifier's logits reach the exit rule (docs/FORMAT.md, "Exact logits").
/// When the logits come from a fully connected op, they are its accumulators dequantised without
/// rounding to int8, and a global average pool feeding it is folded in as exact channel sums: the
/// int8 logits and pooled values carry quantisation noise the float model does not have, enough to
/// move images across an exit threshold. Otherwise the int8 logits tensor is dequantised.
struct LogitSource {
    /// Parameters for `sieve_exact_logits`; nil: dequantise `tensor`.
    var params: sieve_logits_params?
    /// The logits are computed just before this op runs, which is the first op the exact computation
    /// replaces (the ops from it through the logits writer); one past the writer when dequantising.
    let firstReplacedOp: Int
    let tensor: Int
}

extension Interpreter {
    /// A head's exact logits, as computed by the last `run` or `classify` (classes a head's exclusion
    /// had ruled out are -inf after `classify`).
    public func logits(head: Int) -> UnsafeBufferPointer<Float> {
        UnsafeBufferPointer(start: logitValues + head * model.classCount, count: model.classCount)
    }

    /// The classifier's exact logits, as computed by the last `run` or `classify`.
    public var finalLogits: UnsafeBufferPointer<Float> { logits(head: model.heads.count) }

    /// Computes source `index`'s logits (a head, or `headCount` for the classifier) from the
    /// tensors the ops before `firstReplacedOp` left; only the `rows` classes (nil: all).
    func computeLogits(_ index: Int, rows: UnsafePointer<UInt8>?) {
        let out = logitValues + index * model.classCount
        let source = logitSources[index]
        if var p = source.params {
            sieve_exact_logits(isa, &p, rows, out)
            return
        }
        let t = model.tensors[source.tensor], q = tensor(source.tensor)
        for c in 0..<model.classCount { out[c] = t.scale * Float(Int32(q[c]) - t.zeroPoint) }
    }

    /// Plans every source once, at load.
    func planExactLogits() {
        var sumsNeeded = 1
        var sources: [LogitSource] = []
        for head in model.heads {
            let last = Int(head.firstOp + head.opCount) - 1
            let source = makeSource(writer: last, earliest: Int(head.firstOp), tensor: Int(head.logitsTensor))
            sources.append(source)
            if let p = source.params { sumsNeeded = max(sumsNeeded, Int(p.channels)) }
        }
        let output = Int(model.info.outputTensor)
        let writer = model.ops.lastIndex { Int($0.output) == output }!
        // A pool folds into the classifier only when nothing else reads its output.
        let pooled = writer > 0 ? model.ops[writer - 1].output : 0
        let poolIsPrivate = writer > 0 && !model.heads.contains { $0.tapTensor == pooled }
            && !model.ops.indices.contains { $0 != writer && (model.ops[$0].input0 == pooled || model.ops[$0].input1 == pooled) }
        let final = makeSource(writer: writer, earliest: poolIsPrivate ? writer - 1 : writer, tensor: output)
        if let p = final.params { sumsNeeded = max(sumsNeeded, Int(p.channels)) }
        sources.append(final)
        var replaced = [Bool](repeating: false, count: model.ops.count)
        if final.params != nil { for i in final.firstReplacedOp...writer { replaced[i] = true } }
        logitSums.deallocate()
        logitSums = UnsafeMutablePointer<Int32>.allocate(capacity: sumsNeeded)
        logitSums.initialize(repeating: 0, count: sumsNeeded)
        for i in sources.indices where sources[i].params != nil { sources[i].params!.sums = logitSums }
        logitSources = sources
        replacedByFinalLogits = replaced
    }

    /// The source for logits written by op `writer`: exact when it is a fully connected op, with a
    /// global average pool right before it (not before `earliest`) folded in.
    private func makeSource(writer: Int, earliest: Int, tensor: Int) -> LogitSource {
        let fc = model.ops[writer]
        guard fc.opKind == .fullyConnected else { return LogitSource(params: nil, firstReplacedOp: writer + 1, tensor: tensor) }
        let out = model.tensors[Int(fc.output)]
        var first = writer
        var input = model.tensors[Int(fc.input0)]
        var inputIndex = Int(fc.input0)
        var pixels = 1
        if writer - 1 >= earliest, model.ops[writer - 1].opKind == .globalAveragePool, model.ops[writer - 1].output == fc.input0 {
            let tap = model.tensors[Int(model.ops[writer - 1].input0)]
            // Channel sums stay in int32: at most 2^24 pixels of |x| <= 128.
            if tap.h * tap.w <= 1 << 24 {
                first = writer - 1
                inputIndex = Int(model.ops[writer - 1].input0)
                input = tap
                pixels = Int(tap.h * tap.w)
            }
        }
        let lower = fc.actMin > -128 ? out.scale * Float(fc.actMin - out.zeroPoint) : -Float.infinity
        let upper = fc.actMax < 127 ? out.scale * Float(fc.actMax - out.zeroPoint) : Float.infinity
        let p = sieve_logits_params(
            input: UnsafePointer(self.tensor(inputIndex).baseAddress!), pixels: Int32(pixels),
            channels: Int32(pixels == 1 ? input.elementCount : Int(input.c)),
            weights: model.pointer(fc.weights, as: Int8.self), bias: model.pointer(fc.bias, as: Int32.self),
            multipliers: model.pointer(fc.multipliers, as: Int32.self), shifts: model.pointer(fc.shifts, as: Int32.self),
            classes: Int32(out.c), output_scale: out.scale, lower: lower, upper: upper, sums: nil)
        return LogitSource(params: p, firstReplacedOp: first, tensor: tensor)
    }
}
