import CSieveKernels

extension Interpreter {
    /// A head's exact logits, as computed by the last `run` or `classify` (classes a head's exclusion
    /// had ruled out are -inf after `classify`).
    public func logits(head: Int) -> UnsafeBufferPointer<Float> {
        UnsafeBufferPointer(start: logitValues + head * model.classCount, count: model.classCount)
    }

    /// The classifier's exact logits, as computed by the last `run` or `classify`.
    public var finalLogits: UnsafeBufferPointer<Float> { logits(head: model.heads.count) }

    /// Computes source `index`'s logits (a head, or `headCount` for the classifier) from the
    /// tensors the ops before its first replaced op left; only the `rows` classes (nil: all).
    func computeLogits(_ index: Int, rows: UnsafePointer<UInt8>?) {
        let out = logitValues + index * model.classCount
        if var p = logitParams[index] {
            sieve_exact_logits(isa, &p, rows, out)
            return
        }
        let source = executionPlan.sources[index]
        if source.poolMeans {
            poolLogits(model.ops[source.writer], out)
            return
        }
        let t = model.tensors[source.tensor], q = tensor(source.tensor)
        for c in 0..<model.classCount { out[c] = t.scale * Float(Int32(q[c]) - t.zeroPoint) }
    }

    /// Logits written by a global average pool (SqueezeNet's classifier): the mean of each channel
    /// before its int8 rounding, `scale * (S[c] / n - zero_point)` in double, rounded to float once.
    /// The rounded mean keeps only the pool input's step, which a ReLU'd spatial map sets far coarser
    /// than the gaps between classes. The pool's input is intact: its logits step follows it directly.
    private func poolLogits(_ pool: OpRecord, _ out: UnsafeMutablePointer<Float>) {
        let t = model.tensors[Int(pool.input0)]
        let input = UnsafePointer(tensor(Int(pool.input0)).baseAddress!)
        sieve_pool_logits(isa, input, Int32(truncatingIfNeeded: t.h &* t.w), Int32(truncatingIfNeeded: t.c),
                          t.scale, t.zeroPoint, logitSums, out)
    }

    /// The channel sums the widest folded pool, or a pool writing logits, needs (at least one).
    static func logitSumsNeeded(_ model: Model, _ plan: ExecutionPlan) -> Int {
        var needed = max(1, model.classCount)  // a pool writing logits has a channel per class
        for s in plan.sources where s.exact {
            let fc = model.ops[s.writer]
            needed = max(needed, s.foldsPool ? Int(model.tensors[Int(fc.input0)].c) : model.tensors[Int(fc.input0)].elementCount)
        }
        return needed
    }

    /// The kernel parameters of an exact source (nil when its int8 tensor is dequantised).
    func makeLogitParams(_ source: ExecutionPlan.LogitSource) -> sieve_logits_params? {
        guard source.exact else { return nil }
        let fc = model.ops[source.writer]
        let out = model.tensors[Int(fc.output)]
        let inputIndex = source.foldsPool ? Int(model.ops[source.writer - 1].input0) : Int(fc.input0)
        let input = model.tensors[inputIndex]
        let pixels = source.foldsPool ? Int(input.h * input.w) : 1
        let lower = fc.actMin > -128 ? out.scale * Float(fc.actMin - out.zeroPoint) : -Float.infinity
        let upper = fc.actMax < 127 ? out.scale * Float(fc.actMax - out.zeroPoint) : Float.infinity
        return sieve_logits_params(
            input: UnsafePointer(tensor(inputIndex).baseAddress!), pixels: Int32(pixels),
            channels: Int32(source.foldsPool ? Int(input.c) : input.elementCount),
            weights: model.pointer(fc.weights, as: Int8.self), bias: model.pointer(fc.bias, as: Int32.self),
            multipliers: model.pointer(fc.multipliers, as: Int32.self), shifts: model.pointer(fc.shifts, as: Int32.self),
            classes: Int32(out.c), output_scale: out.scale, lower: lower, upper: upper, sums: logitSums)
    }
}
