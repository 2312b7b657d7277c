import CQuantizeKernels
import Foundation
import SieveCore

/// BiasCorrector's fast path (see BiasCorrection.swift): one sweep through the layers with every
/// image's live int8 tensors kept in memory.
extension BiasCorrector {
    /// The op's second input tensor (ADD's; an op kind added with two inputs belongs here too).
    /// The graph with corrected biases; the same choices as `exhaustiveCorrected()`.
    func corrected() throws(QuantizeError) -> Graph {
        let target = floatTargets ?? floatMeans()
        var g = graph
        // Pools and ADDs run from this draft: their parameters do not depend on any bias.
        let draft = try BlobBuilder(graph: g, qparams: qparams, weightMax: weightMax).build(provenance: "")
        let memory = UnsafeMutableRawBufferPointer.allocate(byteCount: draft.count, alignment: BlobLayout.alignment)
        defer { memory.deallocate() }
        memory.copyBytes(from: draft)
        let model: Model
        do { model = try Model(bytes: UnsafeRawBufferPointer(memory)) } catch { throw .internalError(reason: "the blob does not load: \(error)") }
        let threads = max(1, min(ProcessInfo.processInfo.activeProcessorCount, 8, count))
        var interpreters: [Interpreter] = []
        for _ in 0..<threads {
            do { interpreters.append(try Interpreter(model: model)) } catch { throw .internalError(reason: "interpreter: \(error)") }
        }
        func chunk(_ t: Int) -> Range<Int> { (count * t / threads)..<(count * (t + 1) / threads) }

        // Each image's int8 tensors, image after image, while an op still reads them.
        var live: [Int: [Int8]] = [:]
        var lastRead = [Int](repeating: -1, count: model.tensors.count)
        for (i, op) in model.ops.enumerated() {
            for input in op.inputs { lastRead[Int(input)] = i }
        }
        let inputIndex = Int(model.info.inputTensor)
        let inputSize = model.tensors[inputIndex].elementCount
        var inputs = [Int8](repeating: 0, count: count * inputSize)
        inputs.withUnsafeMutableBufferPointer { all in
            let base = all.baseAddress!
            DispatchQueue.concurrentPerform(iterations: threads) { t in
                let interpreter = interpreters[t]
                for i in chunk(t) {
                    images.image(i).withUnsafeBytes { interpreter.setInput(pixels: $0) }
                    (base + i * inputSize).update(from: interpreter.input.baseAddress!, count: inputSize)
                }
            }
        }
        live[inputIndex] = inputs
        let weighted = g.layers.indices.filter { g.layers[$0].hasBias }
        var done = 0
        let builder = BlobBuilder(graph: g, qparams: qparams, weightMax: weightMax)

        for l in model.ops.indices {
            let op = model.ops[l]
            let outIndex = Int(op.output)
            let outSize = model.tensors[outIndex].elementCount
            var result = [Int8](repeating: 0, count: count * outSize)
            if g.layers[l].hasBias {
                let inSize = model.tensors[Int(op.input0)].elementCount
                let x = live[Int(op.input0)]!
                // S for every image.
                var sums = [Int32](repeating: 0, count: count * outSize)
                x.withUnsafeBufferPointer { xb in
                    sums.withUnsafeMutableBufferPointer { sb in
                        let (xp, sp) = (xb.baseAddress!, sb.baseAddress!)
                        DispatchQueue.concurrentPerform(iterations: threads) { t in
                            let acc = LayerAccumulators(model: model, op: l)
                            for i in chunk(t) { acc.compute(xp + i * inSize, into: sp + i * outSize) }
                        }
                    }
                }
                let requant = try Requantizer(model: model, op: l, builder: builder, layer: g.layers[l], sums: sums, count: count, threads: threads)
                if logitsSource(l) != nil {
                    let m0 = try meanError(g, layer: l, target: target[l]!)
                    g.layers[l].shiftBias(m0.map { -$0 })
                } else {
                    let m0 = try requant.means(bias: g.layers[l]).enumerated().map { Float($0.element - target[l]![$0.offset]) }
                    let out = qparams[g.layers[l].output]!
                    let step = m0.indices.map { out.channel($0).scale }
                    var trials: [Layer] = []
                    for j in 0..<BiasCorrector.candidates {
                        let f = Float(j) / Float(BiasCorrector.candidates - 1) - 0.5
                        var t = g.layers[l]
                        t.shiftBias(m0.indices.map { -m0[$0] + f * step[$0] })
                        trials.append(t)
                    }
                    let means = try requant.means(trials: trials)
                    var best = m0.map { _ in Float.infinity }
                    var shift = m0.map { -$0 }
                    for j in trials.indices {
                        for c in m0.indices {
                            // nil: this trial bias would change the channel's weight scale (a bias near 2^29 steps).
                            guard let mean = means[j][c] else { continue }
                            let e = Float(mean - target[l]![c])
                            if abs(e) < best[c] { best[c] = abs(e); shift[c] = -m0[c] + (Float(j) / Float(BiasCorrector.candidates - 1) - 0.5) * step[c] }
                        }
                    }
                    g.layers[l].shiftBias(shift)
                }
                try requant.outputs(bias: g.layers[l], into: &result)
                done += 1
                progress?.update(done, of: weighted.count)
            } else {
                // Pools, ADD, MUL, CONCAT, tables: every input copied in, the runtime's op run.
                let inputs = op.inputs.map { Int($0) }
                let values = inputs.map { live[$0]! }
                let sizes = inputs.map { model.tensors[$0].elementCount }
                result.withUnsafeMutableBufferPointer { rb in
                    let out = rb.baseAddress!
                    DispatchQueue.concurrentPerform(iterations: threads) { t in
                        let interpreter = interpreters[t]
                        for i in chunk(t) {
                            for (k, input) in inputs.enumerated() {
                                values[k].withUnsafeBufferPointer {
                                    interpreter.tensor(input).baseAddress!.update(from: $0.baseAddress! + i * sizes[k], count: sizes[k])
                                }
                            }
                            interpreter.run(op: l)
                            (out + i * outSize).update(from: interpreter.tensor(outIndex).baseAddress!, count: outSize)
                        }
                    }
                }
            }
            live[outIndex] = result
            for t in Array(live.keys) where lastRead[t] <= l { live[t] = nil }
        }
        return g
    }
}

/// A weighted layer's int8 output for candidate biases, from its bias-free accumulators of every image.
/// The loops over every element run in C (Tools/CQuantizeKernels), split over the threads by pixels.
struct Requantizer {
    let model: Model
    let op: OpRecord
    let builder: BlobBuilder
    let sums: [Int32]
    let count: Int
    let threads: Int
    let channels: Int
    let multipliers: [Int32], shifts: [Int32]
    let zeroPoint: Int32
    let layer: Layer
    /// The blob's own per-channel tables, for the C loops (the model outlives the requantizer).
    private let multiplierTable: UnsafePointer<Int32>, shiftTable: UnsafePointer<Int32>

    init(model: Model, op index: Int, builder: BlobBuilder, layer: Layer, sums: [Int32], count: Int, threads: Int) throws(QuantizeError) {
        self.model = model; op = model.ops[index]; self.builder = builder; self.layer = layer
        self.sums = sums; self.count = count; self.threads = threads
        let out = model.tensors[Int(op.output)]
        channels = Int(out.c); zeroPoint = out.zeroPoint
        multiplierTable = model.pointer(op.multipliers, as: Int32.self)
        shiftTable = model.pointer(op.shifts, as: Int32.self)
        multipliers = (0..<channels).map { [multiplierTable] in multiplierTable[$0] }
        shifts = (0..<channels).map { [shiftTable] in shiftTable[$0] }
    }

    /// The int32 biases (zero point folded) the blob would hold for `layer`'s float biases; nil per
    /// channel whose multiplier would differ from the draft's.
    func quantizedBias(_ layer: Layer) throws(QuantizeError) -> [Int32?] {
        let q = try builder.quantizedChannels(of: layer)
        return (0..<channels).map { c in q.multipliers[c] == multipliers[c] && q.shifts[c] == shifts[c] ? q.bias[c] : nil }
    }

    /// Per channel, the mean dequantised output over every pixel of every image.
    func means(bias layer: Layer) throws(QuantizeError) -> [Double] {
        try means(trials: [layer]).map { $0.map { $0 ?? .nan } }[0]
    }

    /// `means(bias:)` for several candidates at once, in one pass over the accumulators. The
    /// candidates' biases rise with their index and span about one output step, so each element's
    /// output steps up at most once from the first candidate's; sieve_q_trial_totals finds where from
    /// one requantisation (quantize_kernels.h). Channels whose candidates do not all rise, or where
    /// a candidate would change the weight scale, requantise every candidate.
    func means(trials: [Layer]) throws(QuantizeError) -> [[Double?]] {
        var biases: [[Int32?]] = []
        for t in trials { biases.append(try quantizedBias(t)) }
        let n = trials.count, c = channels
        let rising: [UInt8] = (0..<c).map { ch in
            let valid = (0..<n).allSatisfy { biases[$0][ch] != nil }
            return valid && (1..<max(n, 1)).allSatisfy { biases[$0][ch]! >= biases[$0 - 1][ch]! } ? 1 : 0
        }
        let flat = (0..<c).flatMap { ch in (0..<n).map { biases[$0][ch] ?? 0 } }  // [channel][trial]
        // D_j = (b_j - b_0) * M per channel and trial (rising channels only; 0 elsewhere).
        var offsets = [Int64](repeating: 0, count: n * c)
        for ch in 0..<c where rising[ch] != 0 {
            let b0 = Int64(flat[ch * n]), m = Int64(multipliers[ch])
            for j in 0..<n { offsets[ch * n + j] = (Int64(flat[ch * n + j]) - b0) * m }
        }
        let pixels = sums.count / c
        let slots = ResultSlots<[Int64]?>(count: threads)
        sums.withUnsafeBufferPointer { sb in
            DispatchQueue.concurrentPerform(iterations: threads) { t in
                var totals = [Int64](repeating: 0, count: n * c)  // [channel][trial]: sums of int8 outputs
                var view = cLayer(sb.baseAddress!, pixels: (pixels * t / threads)..<(pixels * (t + 1) / threads))
                slots.set(t, sieve_q_trial_totals(&view, Int32(n), flat, offsets, rising, &totals) == 0 ? totals : nil)
            }
        }
        var parts: [[Int64]] = []
        for part in slots.values() {
            guard let part else { throw .internalError(reason: "out of memory correcting the biases of \(layer.node)") }
            parts.append(part)
        }
        let out = builder.qparams[layer.output]!
        let channelQ = (0..<c).map { out.channel($0) }  // the tensor's quantisation, or its channel group's
        return (0..<n).map { j in
            (0..<c).map { ch -> Double? in
                guard biases[j][ch] != nil else { return nil }
                var total: Int64 = 0
                for p in parts { total += p[ch * n + j] }
                let q = channelQ[ch]
                return Double(q.scale) * (Double(total) / Double(pixels) - Double(q.zeroPoint))
            }
        }
    }

    /// Every image's int8 output with `layer`'s biases, as the runtime computes it.
    func outputs(bias layer: Layer, into out: inout [Int8]) throws(QuantizeError) {
        let q = try builder.quantizedChannels(of: layer)
        guard q.multipliers == multipliers && q.shifts == shifts else {
            throw .internalError(reason: "bias correction changed the weight scale of \(layer.node)")
        }
        let pixels = sums.count / channels, c = channels
        out.withUnsafeMutableBufferPointer { ob in
            let o = ob.baseAddress!
            sums.withUnsafeBufferPointer { sb in
                DispatchQueue.concurrentPerform(iterations: threads) { t in
                    let range = (pixels * t / threads)..<(pixels * (t + 1) / threads)
                    var view = cLayer(sb.baseAddress!, pixels: range)
                    sieve_q_outputs(&view, q.bias, o + range.lowerBound * c)
                }
            }
        }
    }

    /// The C loops' view of the accumulators of `pixels` (of every image, back to back).
    private func cLayer(_ sums: UnsafePointer<Int32>, pixels: Range<Int>) -> sieve_q_layer {
        sieve_q_layer(sums: sums + pixels.lowerBound * channels, pixels: Int64(pixels.count), channels: Int32(channels),
                      multipliers: multiplierTable, shifts: shiftTable, zero_point: zeroPoint, act_min: op.actMin, act_max: op.actMax)
    }
}

extension BlobBuilder {
    /// The quantised weights, biases and multipliers the blob holds for weighted `layer`.
    func quantizedChannels(of layer: Layer) throws(QuantizeError) -> QuantizedChannels {
        let inQ = qparams[layer.inputs[0]]!, outQ = qparams[layer.output]!
        let name = graph.values[layer.output].name
        switch layer.kind {
        case .conv(let p):
            return try quantizeChannels(name: name, weights: p.weights, bias: p.bias, cout: p.cout,
                                        perChannel: p.cinPerGroup * p.kh * p.kw, inQ: inQ, outQ: outQ,
                                        shortMultipliers: true)
        case .fullyConnected(let p):
            return try quantizeChannels(name: name, weights: p.weights, bias: p.bias, cout: p.cout, perChannel: p.k, inQ: inQ, outQ: outQ)
        default:
            throw .internalError(reason: "\(name) has no weights")
        }
    }
}
