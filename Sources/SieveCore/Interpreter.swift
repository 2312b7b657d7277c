import CSieveKernels

/// Runs a validated model. Everything it touches is allocated here, once: one workspace
/// (Workspace.swift: the activation arena or the caller's, the weights packed for the kernel path,
/// the kernels' scratch, logits, scores, sums and class mask), the kernel parameter blocks and the
/// input table. `run()` and `classify()` perform no heap allocation.
public final class Interpreter {
    public let model: Model
    public let plan: ArenaPlan
    /// The one allocation, and the activation arena (in it, or the caller's).
    private let workspace: UnsafeMutableRawPointer
    /// Bytes of `workspace`.
    public let workspaceBytes: Int
    private let arena: UnsafeMutableRawPointer
    private var steps: [Step]
    /// The kernel path every op runs on, and the kernels' scratch in the workspace.
    public let path: KernelPath
    var isa: Int32 { path.rawValue }
    private let kernelScratch: UnsafeMutableRawPointer
    /// Threads that split each large op (1: the caller alone), and their pool.
    public let threads: Int
    private var pool: OpaquePointer? = nil
    /// Ops with fewer MACs run on the caller alone: splitting them costs more than it saves.
    public let smallestSplitOp: Int
    /// Head scores, `headCount x classCount`, filled after each head runs.
    private let scores: UnsafeMutablePointer<Float>
    /// u8 pixel -> int8 input, 256 entries per input channel (docs/FORMAT.md, MODEL).
    public let inputTable: [Int8]
    /// The steps of a frame (ops, exact logits, exit decisions), built once at load.
    public let executionPlan: ExecutionPlan
    /// Each op's MACs: ops below `smallestSplitOp` run on the caller alone.
    let opMACs: [Int]
    /// Surviving classes of the current frame (1 = alive).
    let classMask: UnsafeMutablePointer<UInt8>
    /// Kernel parameters of each exact logits source (nil: dequantise its int8 tensor), and the
    /// logits of every head and the classifier, `(headCount + 1) x classCount`.
    var logitParams: [sieve_logits_params?] = []
    let logitValues: UnsafeMutablePointer<Float>
    /// Channel sums of a folded pool, as long as the widest source needs.
    let logitSums: UnsafeMutablePointer<Int32>

    enum Step {
        case conv(sieve_conv_params, packed: UnsafeRawPointer?)
        case depthwiseConv(sieve_conv_params, packed: UnsafeRawPointer?)
        case fullyConnected(sieve_fc_params, packed: UnsafeRawPointer?)
        case maxPool(sieve_pool_params)
        case averagePool(sieve_pool_params)
        case globalAveragePool(input: UnsafePointer<Int8>, output: UnsafeMutablePointer<Int8>, pixels: Int32, channels: Int32)
        case add(sieve_add_params)
        case concat(sieve_concat_params)
        case mul(sieve_mul_params)
        case lut(sieve_lut_grouped_params)
        case gather(sieve_gather_params)
    }

    /// - Parameters:
    ///   - model: a model that passed validation.
    ///   - arena: memory of at least `ArenaPlan(model:).bytes` bytes, 64-byte aligned; nil to allocate one.
    ///   - maxArenaBytes: refuse models whose arena is larger.
    ///   - path: the kernel path; nil picks `SIEVE_ISA` from the environment, else the best the CPU has.
    ///   - threads: threads that split each large op, 1 ... 64; results are identical for any count.
    ///   - smallestSplitOp: ops with fewer MACs run on the calling thread alone.
    public init(model: Model, arena: UnsafeMutableRawBufferPointer? = nil, maxArenaBytes: Int = 1 << 30,
                path: KernelPath? = nil, threads: Int = 1, smallestSplitOp: Int = 50_000) throws(SieveError) {
        guard threads >= 1 && threads <= Int(SIEVE_MAX_THREADS) else { throw .invalidThreadCount(threads) }
        self.model = model
        self.threads = threads
        self.smallestSplitOp = smallestSplitOp
        let chosen = try KernelPath.resolve(path)
        self.path = chosen
        let plan = ArenaPlan(model: model)
        self.plan = plan
        guard plan.bytes <= maxArenaBytes else { throw .arenaTooLarge(needed: plan.bytes, limit: maxArenaBytes) }
        if let arena {
            guard arena.count >= plan.bytes, let base = arena.baseAddress, Int(bitPattern: base) % BlobLayout.alignment == 0 else {
                throw .arenaTooLarge(needed: plan.bytes, limit: arena.count)
            }
        }
        self.inputTable = Interpreter.makeInputTable(model)
        self.executionPlan = ExecutionPlan(model: model)
        self.opMACs = model.ops.indices.map { model.macs(op: $0) }
        // Kernel sizes depend on shapes only: measure them on steps over a stand-in arena address.
        let standIn = UnsafeMutableRawPointer(bitPattern: BlobLayout.alignment)!
        let sizing = model.ops.indices.map { Interpreter.makeStep(model, $0, arena: standIn, offsets: plan.offsets) }
        var scratchBytes = 0
        for step in sizing { scratchBytes = max(scratchBytes, step.scratchSize(isa: chosen.rawValue)) }
        let packedSizes = sizing.map { $0.packedSize(isa: chosen.rawValue) }
        let layout = Workspace(arenaBytes: arena == nil ? plan.bytes : nil, packedSizes: packedSizes,
                               scratchBytes: scratchBytes, threads: threads, model: model,
                               sumsCount: Interpreter.logitSumsNeeded(model, executionPlan))
        guard let base = sieve_alloc_aligned(layout.bytes, BlobLayout.alignment) else { throw .outOfMemory(bytes: layout.bytes) }
        base.initializeMemory(as: UInt8.self, repeating: 0, count: layout.bytes)
        self.workspace = base
        self.workspaceBytes = layout.bytes
        let arenaBase = arena?.baseAddress ?? base + layout.arena!
        self.arena = arenaBase
        self.kernelScratch = base + layout.scratch
        self.logitValues = (base + layout.logits).assumingMemoryBound(to: Float.self)
        self.scores = (base + layout.scores).assumingMemoryBound(to: Float.self)
        self.logitSums = (base + layout.sums).assumingMemoryBound(to: Int32.self)
        self.classMask = (base + layout.mask).assumingMemoryBound(to: UInt8.self)
        self.steps = model.ops.indices.map { Interpreter.makeStep(model, $0, arena: arenaBase, offsets: plan.offsets) }
        self.logitParams = executionPlan.sources.map(makeLogitParams)
        for i in steps.indices where packedSizes[i] > 0 { steps[i].pack(isa: chosen.rawValue, into: base + layout.packed + layout.packedOffsets[i]) }
        if threads > 1 {
            pool = sieve_pool_create(Int32(threads), kernelScratch.assumingMemoryBound(to: UInt8.self), layout.scratchStride)
            if pool == nil { throw .cannotStartThreads(threads) }
        }
    }

    /// Large ops run so far split over the threads, and on the calling thread alone (where its timing
    /// said alone was faster, or to probe that); both 0 with one thread.
    public var threadedOps: (split: Int, alone: Int) {
        guard let pool else { return (0, 0) }
        var split: UInt64 = 0, alone: UInt64 = 0
        sieve_pool_counts(pool, &split, &alone)
        return (Int(split), Int(alone))
    }

    deinit {
        if let pool { sieve_pool_destroy(pool) }
        sieve_free_aligned(workspace)
    }

    /// The kernel route op `index` runs on (docs/KERNELS.md): on the avx2 path a conv or fully
    /// connected op may take the u8 x s8 route (weights that fit its saturating int16 pair sums) and
    /// a 3x3 stride-1 conv Winograd F(2,3); every other op runs the path's own kernel.
    public func route(op index: Int) -> KernelRoute {
        switch steps[index] {
        case let .conv(_, packed), let .fullyConnected(_, packed):
            return KernelRoute(rawValue: sieve_packed_route(isa, packed)) ?? .main
        default: return .main
        }
    }

    /// Marks the start of a frame for the pool's per-op split-or-alone timing.
    func beginFrame() {
        if let pool { sieve_pool_begin_frame(pool) }
    }

    // MARK: - Tensors

    public func tensor(_ index: Int) -> UnsafeMutableBufferPointer<Int8> {
        UnsafeMutableBufferPointer(start: (arena + plan.offsets[index]).assumingMemoryBound(to: Int8.self),
                                   count: model.tensors[index].elementCount)
    }

    /// The int8 input tensor, NHWC.
    public var input: UnsafeMutableBufferPointer<Int8> { tensor(Int(model.info.inputTensor)) }
    /// The final logits, int8 (`finalLogits` has them exact).
    public var output: UnsafeMutableBufferPointer<Int8> { tensor(Int(model.info.outputTensor)) }

    /// Fills the input from u8 pixels in HWC order with the model's input size and channels.
    public func setInput(pixels: UnsafeRawBufferPointer) {
        let dst = input
        precondition(pixels.count == dst.count, "pixel buffer size differs from the model input")
        let channels = Int(model.info.inputChannels)
        precondition(inputTable.count == channels * 256 && dst.count % channels == 0, "input table does not match the model input")
        // One channel at a time through its own table, unchecked (the sizes are checked above): no
        // division per value (a 224x224x3 input took 0.3 ms with `i % channels` and checked indexing).
        inputTable.withUnsafeBufferPointer { table in
            guard let table = table.baseAddress, let out = dst.baseAddress else { return }
            for c in 0..<channels {
                let row = table + c * 256
                var i = c
                while i < dst.count { out[i] = row[Int(pixels[i])]; i += channels }
            }
        }
    }

    // MARK: - Running

    /// Runs every op in order and computes every head's and the classifier's exact logits and the heads' scores.
    public func run() {
        _ = execute(.everyOp)
    }

    /// Runs one op; its output is valid until the arena slot is reused by a later op.
    public func run(op index: Int) {
        switch steps[index] {
        case .conv(var p, let packed) where pool != nil && opMACs[index] >= smallestSplitOp:
            split(SIEVE_JOB_CONV, &p, packed, op: index)
        case .depthwiseConv(var p, let packed) where pool != nil && opMACs[index] >= smallestSplitOp:
            split(SIEVE_JOB_DWCONV, &p, packed, op: index)
        case .fullyConnected(var p, let packed) where pool != nil && opMACs[index] >= smallestSplitOp:
            split(SIEVE_JOB_FC, &p, packed, op: index)
        case .conv(var p, let packed): sieve_conv_run(isa, &p, packed, kernelScratch)
        case .depthwiseConv(var p, let packed): sieve_dwconv_run(isa, &p, packed, kernelScratch)
        case .fullyConnected(var p, let packed): sieve_fc_run(isa, &p, packed, kernelScratch, 0, p.out_c)
        case var .maxPool(p): sieve_maxpool_run(isa, &p)
        case var .averagePool(p): sieve_avgpool_run(isa, &p)
        case let .globalAveragePool(input, output, pixels, channels): sieve_global_avgpool_run(isa, input, output, pixels, channels)
        case var .add(p): sieve_add_run(isa, &p)
        case var .concat(p): sieve_concat_run(isa, &p)
        case var .mul(p): sieve_mul_run(isa, &p)
        case var .lut(p): sieve_lut_grouped_run(isa, &p)
        case var .gather(p): sieve_gather_run(isa, &p)
        }
    }

    /// Runs one op on the pool: split over its threads, or on the caller alone when the op's timing
    /// says that is faster (sieve_threads.h).
    private func split<P>(_ kind: Int, _ params: inout P, _ packed: UnsafeRawPointer?, op index: Int) {
        withUnsafePointer(to: &params) { p in
            var job = sieve_job(kind: Int32(kind), isa: isa, params: UnsafeRawPointer(p), packed: packed, slot: Int32(index))
            sieve_pool_run(pool, &job)
        }
    }

    /// Sigmoid (exclusion head) or softmax (confidence head) of a head's exact logits, as computed by the last `run`.
    public func scores(head: Int) -> UnsafeBufferPointer<Float> {
        UnsafeBufferPointer(start: scores + head * model.classCount, count: model.classCount)
    }

    func computeScores(head h: Int) {
        let logits = UnsafePointer(logitValues + h * model.classCount)
        let out = scores + h * model.classCount
        if model.heads[h].headKind == .confidence {
            sieve_softmax_scores(logits, Int32(model.classCount), out)
        } else {
            sieve_sigmoid_scores(logits, Int32(model.classCount), out)
        }
    }

    /// Index of the largest exact final logit (the first on ties).
    public func argmax() -> Int {
        let out = finalLogits
        var best = 0
        for i in 1..<out.count where out[i] > out[best] { best = i }
        return best
    }

    // MARK: - Setup

    /// Op `i`'s kernel parameters, its tensors at `arena + offsets[tensor]`.
    private static func makeStep(_ model: Model, _ i: Int, arena: UnsafeMutableRawPointer, offsets: [Int]) -> Step {
        func tensor(_ index: UInt32) -> UnsafeMutablePointer<Int8> { (arena + offsets[Int(index)]).assumingMemoryBound(to: Int8.self) }
        let op = model.ops[i]
        let inT = model.tensors[Int(op.input0)], outT = model.tensors[Int(op.output)]
        let input = UnsafePointer(tensor(op.input0))
        let output = tensor(op.output)
        switch op.opKind! {
        case .conv, .depthwiseConv:
            let p = sieve_conv_params(
                input: input, weights: model.pointer(op.weights, as: Int8.self), bias: model.pointer(op.bias, as: Int32.self),
                multipliers: model.pointer(op.multipliers, as: Int32.self), shifts: model.pointer(op.shifts, as: Int32.self),
                output: output, in_h: Int32(inT.h), in_w: Int32(inT.w), in_c: Int32(inT.c),
                out_h: Int32(outT.h), out_w: Int32(outT.w), out_c: Int32(outT.c),
                kernel_h: Int32(op.kernelH), kernel_w: Int32(op.kernelW), stride_h: Int32(op.strideH), stride_w: Int32(op.strideW),
                pad_top: Int32(op.padTop), pad_left: Int32(op.padLeft), groups: Int32(op.groups),
                input_zero_point: inT.zeroPoint, output_zero_point: outT.zeroPoint, act_min: op.actMin, act_max: op.actMax)
            return op.opKind == .conv ? .conv(p, packed: nil) : .depthwiseConv(p, packed: nil)
        case .fullyConnected:
            return .fullyConnected(sieve_fc_params(
                input: input, weights: model.pointer(op.weights, as: Int8.self), bias: model.pointer(op.bias, as: Int32.self),
                multipliers: model.pointer(op.multipliers, as: Int32.self), shifts: model.pointer(op.shifts, as: Int32.self),
                output: output, k: Int32(inT.elementCount), out_c: Int32(outT.c),
                output_zero_point: outT.zeroPoint, act_min: op.actMin, act_max: op.actMax), packed: nil)
        case .maxPool, .averagePool:
            let p = sieve_pool_params(
                input: input, output: output, in_h: Int32(inT.h), in_w: Int32(inT.w), channels: Int32(inT.c),
                out_h: Int32(outT.h), out_w: Int32(outT.w), kernel_h: Int32(op.kernelH), kernel_w: Int32(op.kernelW),
                stride_h: Int32(op.strideH), stride_w: Int32(op.strideW), pad_top: Int32(op.padTop), pad_left: Int32(op.padLeft))
            return op.opKind == .maxPool ? .maxPool(p) : .averagePool(p)
        case .globalAveragePool:
            return .globalAveragePool(input: input, output: output, pixels: Int32(inT.h * inT.w), channels: Int32(inT.c))
        case .add:
            let other = model.tensors[Int(op.input1)]
            let m = model.pointer(op.multipliers, as: Int32.self), s = model.pointer(op.shifts, as: Int32.self)
            return .add(sieve_add_params(
                input0: input, input1: UnsafePointer(tensor(op.input1)), output: output,
                count: Int32(outT.elementCount), zero_point0: inT.zeroPoint, zero_point1: other.zeroPoint,
                output_zero_point: outT.zeroPoint, multipliers: (m[0], m[1], m[2]), shifts: (s[0], s[1], s[2]),
                left_shift: op.leftShift, act_min: op.actMin, act_max: op.actMax))
        case .concat, .mul, .lut, .gather:
            return elementwiseStep(model, op, tensor: { UnsafePointer(tensor($0)) }, output: output)
        }
    }

    /// q = clamp(round_half_away(((p * pixel_scale - mean) / std) / scale) + zero_point), in double.
    static func makeInputTable(_ model: Model) -> [Int8] {
        let t = model.inputTensor
        var table: [Int8] = []
        table.reserveCapacity(256 * Int(model.info.inputChannels))
        for c in 0..<Int(model.info.inputChannels) {
            for p in 0..<256 {
                let x = (Double(p) * Double(model.info.pixelScale) - Double(model.info.mean(c))) / Double(model.info.std(c))
                let q = (x / Double(t.scale)).rounded(.toNearestOrAwayFromZero) + Double(t.zeroPoint)
                table.append(Int8(max(-128, min(127, q))))
            }
        }
        return table
    }
}

extension Interpreter.Step {
    /// Bytes of packed weights the path needs for this op (0: it runs the scalar kernel).
    func packedSize(isa: Int32) -> Int {
        switch self {
        case var .conv(p, _): return sieve_conv_packed_size(isa, &p)
        case var .depthwiseConv(p, _): return sieve_dwconv_packed_size(isa, &p)
        case var .fullyConnected(p, _): return sieve_fc_packed_size(isa, &p)
        default: return 0
        }
    }

    func scratchSize(isa: Int32) -> Int {
        switch self {
        case var .conv(p, _): return sieve_conv_scratch_size(isa, &p)
        case var .depthwiseConv(p, _): return sieve_dwconv_scratch_size(isa, &p)
        case var .fullyConnected(p, _): return sieve_fc_scratch_size(isa, &p)
        default: return 0
        }
    }

    /// Packs the weights into `memory` and points the step at them.
    mutating func pack(isa: Int32, into memory: UnsafeMutableRawPointer) {
        switch self {
        case var .conv(p, _): sieve_conv_pack(isa, &p, memory); self = .conv(p, packed: UnsafeRawPointer(memory))
        case var .depthwiseConv(p, _): sieve_dwconv_pack(isa, &p, memory); self = .depthwiseConv(p, packed: UnsafeRawPointer(memory))
        case var .fullyConnected(p, _): sieve_fc_pack(isa, &p, memory); self = .fullyConnected(p, packed: UnsafeRawPointer(memory))
        default: break
        }
    }
}
