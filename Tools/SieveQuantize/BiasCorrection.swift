import Foundation
import SieveCore

/// Empirical bias correction: after quantisation, each weighted layer's output has a small mean
/// error per channel (weight rounding, and activations rounded the same way over and over: a
/// background that maps every pixel to one value rounds identically everywhere). It survives
/// global average pooling, so it moves exit heads' logits. For each layer in order, with the
/// corrections of the layers before it in place, this measures the int8 runtime's mean output per
/// channel on the calibration images against the float model's and shifts the float bias so the
/// means agree. Rounding makes the int8 mean a step function of the shift, so the shift is picked
/// among 17 points one output step apart around the plain correction, the one that leaves the
/// smallest mean error. Logits (heads' and the classifier's) are exact in the runtime: for them
/// the plain correction is exact.
///
/// `corrected()` does this in one sweep through the layers: it keeps every image's int8 tensors that
/// later ops still read, computes a weighted layer's bias-free int32 accumulators once
/// (LayerAccumulators.swift) and evaluates the 17 biases by requantising them, exactly as the
/// kernels do; pools and ADDs run in the runtime. `exhaustiveCorrected()` is the first
/// implementation (a blob and a run of every op before the layer per trial), kept as the reference
/// the tests compare with.
struct BiasCorrector {
    let graph: Graph
    let qparams: [Int: QParams]
    let images: ImageSet
    let count: Int
    let progress: Progress?
    /// The float means `floatMeans()` would compute, when the calibration pass already did.
    var floatTargets: [Int: [Double]]? = nil
    /// The blob builder's largest weight magnitude (BlobBuilder.weightMax): trials quantise as the blob will.
    var weightMax = 127

    static let candidates = 17

    /// The graph with corrected biases, rebuilding and re-running the model for every trial (slow).
    func exhaustiveCorrected() throws(QuantizeError) -> Graph {
        let target = floatMeans()
        var g = graph
        let weighted = g.layers.indices.filter { g.layers[$0].hasBias }
        for (done, l) in weighted.enumerated() {
            let m0 = try meanError(g, layer: l, target: target[l]!)
            if logitsSource(l) != nil {
                g.layers[l].shiftBias(m0.map { -$0 })
            } else {
                let out = qparams[g.layers[l].output]!
                var best = m0.map { _ in Float.infinity }
                var shift = m0.map { -$0 }
                for j in 0..<BiasCorrector.candidates {
                    let f = Float(j) / Float(BiasCorrector.candidates - 1) - 0.5
                    let trial = m0.indices.map { -m0[$0] + f * out.channel($0).scale }
                    var t = g
                    t.layers[l].shiftBias(trial)
                    let e = try meanError(t, layer: l, target: target[l]!)
                    for c in e.indices where abs(e[c]) < best[c] { best[c] = abs(e[c]); shift[c] = trial[c] }
                }
                g.layers[l].shiftBias(shift)
            }
            progress?.update(done + 1, of: weighted.count)
        }
        return g
    }

    /// Head index, or `graph.heads.count` for the classifier, when layer `l` writes logits.
    func logitsSource(_ l: Int) -> Int? {
        let out = graph.layers[l].output
        if let h = graph.heads.firstIndex(where: { $0.output == out }) { return h }
        return out == graph.final ? graph.heads.count : nil
    }

    /// Per layer with a bias: the float model's mean output per channel.
    func floatMeans() -> [Int: [Double]] {
        let layers = graph.layers.indices.filter { graph.layers[$0].hasBias }
        let parts: [[Int: [Double]]] = parallelChunks(count: count) { range in
            let executor = FloatExecutor(graph: graph)
            var sums: [Int: [Double]] = [:]
            for i in range.indices {
                executor.run(pixels: images.image(i))
                for l in layers {
                    executor.addChannelSums(of: graph.layers[l].output, into: &sums[l, default: []])
                }
            }
            return sums
        }
        var means: [Int: [Double]] = [:]
        for l in layers {
            let s = graph.values[graph.layers[l].output].shape
            var total = [Double](repeating: 0, count: s.c)
            for part in parts { for c in total.indices { total[c] += part[l]![c] } }
            means[l] = total.map { $0 / Double(count * s.h * s.w) }
        }
        return means
    }

    /// The int8 runtime's mean output of layer `l` per channel minus `target`, with `g`'s biases.
    func meanError(_ g: Graph, layer l: Int, target: [Double]) throws(QuantizeError) -> [Float] {
        let blob = try BlobBuilder(graph: g, qparams: qparams, weightMax: weightMax).build(provenance: "")
        let memory = UnsafeMutableRawBufferPointer.allocate(byteCount: blob.count, alignment: BlobLayout.alignment)
        defer { memory.deallocate() }
        memory.copyBytes(from: blob)
        let model: Model
        do { model = try Model(bytes: UnsafeRawBufferPointer(memory)) } catch { throw .internalError(reason: "the blob does not load: \(error)") }
        let source = logitsSource(l)
        let parts: [Result<[Double], QuantizeError>] = parallelChunks(count: count) { range in
            let interpreter: Interpreter
            do { interpreter = try Interpreter(model: model) } catch { return .failure(.internalError(reason: "interpreter: \(error)")) }
            let t = model.tensors[Int(model.ops[l].output)]
            let channels = Int(t.c)
            let out = qparams[graph.layers[l].output]!
            let channelQ = (0..<channels).map { out.channel($0) }  // the tensor's quantisation, or its channel group's
            var sums = [Double](repeating: 0, count: channels)
            for i in range.indices {
                images.image(i).withUnsafeBytes { interpreter.setInput(pixels: $0) }
                if let source {
                    interpreter.run()
                    let z = source < model.heads.count ? interpreter.logits(head: source) : interpreter.finalLogits
                    for c in 0..<channels { sums[c] += Double(z[c]) }
                } else {
                    for op in 0...l { interpreter.run(op: op) }
                    let q = interpreter.tensor(Int(model.ops[l].output))
                    for (p, v) in q.enumerated() {
                        let c = channelQ[p % channels]
                        sums[p % channels] += Double(c.scale) * Double(Int32(v) - c.zeroPoint)
                    }
                }
            }
            let plane = Double(t.h * t.w)
            return .success(sums.map { $0 / plane })
        }
        var total = [Double](repeating: 0, count: target.count)
        for p in parts {
            switch p {
            case .failure(let e): throw e
            case .success(let s): for c in total.indices { total[c] += s[c] }
            }
        }
        return total.indices.map { Float(total[$0] / Double(count) - target[$0]) }
    }
}

extension Layer {
    /// Conv and fully connected layers carry a bias.
    var hasBias: Bool {
        switch kind {
        case .conv, .fullyConnected: return true
        default: return false
        }
    }

    mutating func shiftBias(_ shift: [Float]) {
        switch kind {
        case .conv(var p): for c in shift.indices { p.bias[c] += shift[c] }; kind = .conv(p)
        case .fullyConnected(var p): for c in shift.indices { p.bias[c] += shift[c] }; kind = .fullyConnected(p)
        default: break
        }
    }
}
