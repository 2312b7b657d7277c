// The host-side quantiser: ONNX float model + calibration images -> int8 .sieve blob (docs/FORMAT.md).
//
//  1. readONNX / ONNXImporter (ONNXImport.swift): the ONNX subset in onnx-subset.proto, parsed with
//     swift-protobuf, becomes a small graph of Sieve ops (Graph.swift). Identity and Dropout vanish,
//     BatchNormalization folds into the Conv before it, Relu and Clip become that op's output clamp,
//     Flatten/Reshape to [1, K] are views, Gemm/MatMul(+Add) become FULLY_CONNECTED.
//  2. Graph.schedule (Schedule.swift): a head is what its output needs that the final output does
//     not; ops run in ONNX order with each head right after the op that writes its tap.
//  3. Calibrator (Calibration.swift): the float executor (FloatExecutor.swift) runs the calibration
//     images; min-max, percentile or MSE ranges per activation tensor.
//  4. BlobBuilder (BlobBuilder.swift): per-channel symmetric weights, int32 biases with the input
//     zero point folded in, frexp multipliers, ADD parameters, the sections, via SieveCore's writer.
//  5. measureSQNR: SieveCore's Interpreter op by op against the float executor, giving each op's
//     SQNR, which goes into PROVENANCE of the second, final build.
//
// Default calibration (measured on models/vgg-s.onnx, 500 calibration images, Fashion-MNIST 10k test
// set, float 93.05 %): minmax 93.16 %, percentile 99.99 93.07 %, mse 93.13 %; on the 10k validation
// split (float 93.76 %) 93.73 / 93.67 / 93.68 %. Accuracy does not separate them; mse is the default
// because it keeps the backbone's per-layer SQNR highest (32-38 dB against 28-33 dB for percentile,
// which clips useful large activations) while guarding against outliers that min-max would keep.

import Foundation
import SieveCore

public let quantizerVersion = "0.1.0"

public struct QuantizeOptions {
    public var method: CalibrationMethod
    /// Calibration images to use (the first `count` of the file, or all of them if it holds fewer).
    public var count: Int
    /// Draw a progress bar on stderr (only when stderr is a terminal).
    public var progress: Bool
    /// The percentile method's cut-off, in percent.
    public var percentile: Double
    /// Calibration images the per-layer SQNR is measured on (the first ones).
    public var sqnrCount: Int
    /// Correct each layer's mean output error on the calibration images (BiasCorrection.swift).
    public var biasCorrection = true
    /// Weight bits: 8 (symmetric [-127, 127]) or 7 ([-63, 63], which AVX2 hosts without VNNI run
    /// on the faster exact u8 x s8 vpmaddubsw route, docs/KERNELS.md).
    public var weightBits = 8
    public static let weightBitChoices = [7, 8]
    /// Most scales a conv output read only by a table may have, one per channel group (ChannelGroups.swift); 1: one scale.
    public var lutGroups = 4
    /// The same for a conv output read only by a depthwise conv (free at run time); 1: one scale.
    public var depthwiseGroups = 16
    /// Input normalisation and labels from the command line (InputOptions.swift).
    public var input = InputOptions()

    public static let defaultMethod = CalibrationMethod.mse
    public static let defaultCount = 1000

    public init(method: CalibrationMethod = QuantizeOptions.defaultMethod, count: Int = QuantizeOptions.defaultCount,
                progress: Bool = false, percentile: Double = 99.99, sqnrCount: Int = 200) {
        self.method = method; self.count = count; self.progress = progress; self.percentile = percentile; self.sqnrCount = sqnrCount
    }
}

public struct QuantizeResult {
    /// The blob, ready to write to disk; it loads with `Model(bytes:)`.
    public let blob: [UInt8]
    /// Per op in execution order: its output tensor's name, op kind, and the SQNR (dB) of its
    /// dequantised int8 output against the float model, over the first `sqnrImageCount` calibration images.
    public let layers: [(name: String, op: String, sqnr: Double)]
    public let calibrationCount: Int
    public let sqnrImageCount: Int
    /// Fraction of the SQNR images on which the int8 model's top class equals the float model's.
    public let top1Agreement: Double
    /// The float model's final logits (the ONNX graph as imported, in float32) on the SQNR images,
    /// image after image: to check the import against ONNX Runtime or PyTorch.
    public let floatLogits: [Float]
    public let opCount: Int
    public let headCount: Int
    /// Seconds spent importing, calibrating, quantising and measuring.
    public let seconds: (importing: Double, calibrating: Double, correcting: Double, quantizing: Double, measuring: Double)

    /// A few lines for a terminal: the SQNR table and the agreement.
    public var summary: String {
        let width = min(60, layers.map { $0.name.count }.max() ?? 10)
        var lines = ["  \("op".padding(toLength: 20, withPad: " ", startingAt: 0)) \("output tensor".padding(toLength: width, withPad: " ", startingAt: 0))  SQNR (dB)"]
        for l in layers {
            let name = l.name.count > width ? "..." + l.name.suffix(width - 3) : l.name
            lines.append("  \(l.op.padding(toLength: 20, withPad: " ", startingAt: 0)) \(name.padding(toLength: width, withPad: " ", startingAt: 0))  \(formatDB(l.sqnr).leftPad(9))")
        }
        lines.append(String(format: "int8 vs float top-1 agreement: %.1f%% on %d calibration images", 100 * top1Agreement, sqnrImageCount))
        lines.append(String(format: "time: import %.2fs, calibrate %.2fs (%d images), correct biases %.2fs, quantise %.2fs, measure %.2fs",
                            seconds.importing, seconds.calibrating, calibrationCount, seconds.correcting, seconds.quantizing, seconds.measuring))
        return lines.joined(separator: "\n")
    }
}

func formatDB(_ v: Double) -> String { v.isInfinite ? "inf" : String(format: "%.2f", v) }

extension String {
    func leftPad(_ n: Int) -> String { count >= n ? self : String(repeating: " ", count: n - count) + self }
}

/// The most tensors (and ops) a blob holds (docs/FORMAT.md, MODEL).
let maxBlobTensors = 4096

/// The whole quantiser: imports the ONNX model, calibrates on `calibrationPath` (IDX or .npy),
/// quantises per docs/FORMAT.md, measures each layer's SQNR and returns the blob.
public func quantizeModel(onnxPath: String, calibrationPath: String, options: QuantizeOptions) throws(QuantizeError) -> QuantizeResult {
    guard options.count >= 1 else { throw .invalidCalibrationData(path: calibrationPath, reason: "the image count must be at least 1") }
    guard QuantizeOptions.weightBitChoices.contains(options.weightBits) else {
        throw .invalidOption(name: "weight bits", reason: "must be 7 or 8, not \(options.weightBits)")
    }
    let weightMax = (1 << (options.weightBits - 1)) - 1
    guard options.lutGroups >= 1 && options.lutGroups <= ChannelGrouping.maxTableGroups else {
        throw .invalidOption(name: "lut groups", reason: "must be 1 (one scale per tensor) ... \(ChannelGrouping.maxTableGroups), not \(options.lutGroups)")
    }
    guard options.depthwiseGroups >= 1 && options.depthwiseGroups <= ChannelGrouping.maxDepthwiseGroups else {
        throw .invalidOption(name: "depthwise groups", reason: "must be 1 (one scale per tensor) ... \(ChannelGrouping.maxDepthwiseGroups), not \(options.depthwiseGroups)")
    }
    guard options.percentile > 50 && options.percentile <= 100 else {
        throw .invalidCalibrationData(path: calibrationPath, reason: "percentile \(options.percentile) is not in (50, 100]")
    }
    var clock = Date()
    func lap() -> Double { let now = Date(); defer { clock = now }; return now.timeIntervalSince(clock) }

    let (proto, sourceBytes) = try readONNX(path: onnxPath)
    let graph = try ONNXImporter.importGraph(proto, options: options.input)
    if options.progress { printImportNotes(graph.notes) }
    // docs/FORMAT.md: a blob holds at most 4096 tensors (the input and one per layer) and 4096 ops.
    guard graph.layers.count + 1 <= maxBlobTensors else {
        throw .invalidModel(reason: "the model translates to \(graph.layers.count + 1) tensors and \(graph.layers.count) ops; a Sieve blob holds at most \(maxBlobTensors) of each")
    }
    let s = graph.inputShape
    let images = try ImageSet.load(path: calibrationPath, expect: (s.h, s.w, s.c), limit: options.count)
    let tImport = lap()

    let count = min(options.count, images.count)
    let progress = Progress.make("calibrating \(count) images (\(options.method.rawValue)\(options.method == .minmax ? "" : ", 2 passes"))", enabled: options.progress, lines: true)
    var calibrator = Calibrator(graph: graph, images: images, count: count, method: options.method,
                                percentile: options.percentile, progress: progress)
    calibrator.grouping = ChannelGrouping(tableGroups: options.lutGroups, depthwiseGroups: options.depthwiseGroups)
    let (ranges, floatMeans, groupRanges) = calibrator.rangesAndMeans()
    progress?.finish()
    let qparams = try activationParams(graph, ranges, groups: groupRanges)
    if options.progress {
        printImportNotes(groupRanges.keys.sorted().map { v in
            let g = groupRanges[v]!
            let reader = g.reader == .table ? "read by a table" : "read by a depthwise conv"
            let option = g.reader == .table ? "--lut-groups 1" : "--depthwise-groups 1"
            return "'\(graph.values[v].name)' (\(graph.values[v].shape.c) channels, \(reader)) gets a scale per channel group: \(g.ranges.count) groups (\(option): one scale)"
        })
    }
    let tCalibrate = lap()

    let sourceName = (onnxPath as NSString).lastPathComponent
    let calibName = (calibrationPath as NSString).lastPathComponent
    var provenance = """
        tool: sieve-quantize \(quantizerVersion)
        source: \(sanitized(sourceName))
        source_sha256: \(SHA256.hex(sourceBytes))
        calibration: \(options.method.rawValue)\(options.method == .percentile ? " \(options.percentile)" : "") on \(count) images from \(sanitized(calibName))
        weights: per-channel symmetric int8\(options.weightBits == 8 ? "" : ", \(options.weightBits)-bit [-\(weightMax), \(weightMax)]")

        """
    var quantizedGraph = graph
    if options.biasCorrection {
        let weighted = graph.layers.filter { $0.hasBias }.count
        let bar = Progress.make("bias correction: \(weighted) layers on \(count) images", enabled: options.progress, lines: true)
        quantizedGraph = try BiasCorrector(graph: graph, qparams: qparams, images: images, count: count, progress: bar,
                                           floatTargets: floatMeans, weightMax: weightMax).corrected()
        bar?.finish()
        provenance += "bias correction: empirical, on the calibration images\n"
    }
    let tCorrect = lap()
    let builder = BlobBuilder(graph: quantizedGraph, qparams: qparams, weightMax: weightMax)
    let draft = try builder.build(provenance: provenance)
    let tQuantize = lap()

    let sqnrCount = max(1, min(options.sqnrCount, count))
    let measured = try measureSQNR(blob: draft, graph: graph, qparams: qparams, images: images, count: sqnrCount, progress: options.progress)
    let layerNames = graph.layers.map { graph.values[$0.output].name }
    for (name, sqnr) in zip(layerNames, measured.sqnr) { provenance += "sqnr \(sanitized(name)): \(formatDB(sqnr))\n" }
    let blob = try builder.build(provenance: provenance)
    try validate(blob)
    let tMeasure = lap()

    let ops = graph.layers.map { layer -> String in
        switch layer.kind {
        case .conv(let p): return p.groups > 1 && p.groups == graph.values[layer.inputs[0]].shape.c && p.cinPerGroup == 1 ? "DEPTHWISE_CONV" : "CONV"
        case .fullyConnected: return "FULLY_CONNECTED"
        case .maxPool: return "MAX_POOL"
        case .averagePool: return "AVERAGE_POOL"
        case .globalAveragePool: return "GLOBAL_AVERAGE_POOL"
        case .add: return "ADD"
        case .concat: return "CONCAT"
        case .mul: return "MUL"
        case .lut(let f): return "LUT (\(f.name))"
        case .gather: return "GATHER"
        }
    }
    var layers: [(name: String, op: String, sqnr: Double)] = []
    for i in graph.layers.indices { layers.append((layerNames[i], ops[i], measured.sqnr[i])) }
    return QuantizeResult(blob: blob, layers: layers, calibrationCount: count, sqnrImageCount: sqnrCount,
                          top1Agreement: measured.agreement, floatLogits: measured.floatLogits, opCount: graph.layers.count, headCount: graph.heads.count,
                          seconds: (tImport, tCalibrate, tCorrect, tQuantize, tMeasure))
}

/// One line, no control characters: names go into `key: value` lines.
func sanitized(_ s: String) -> String {
    String(s.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7F ? "?" : Character($0) })
}

/// Quantisation of every value: the input from its exact range, pools from their input, the rest calibrated.
func activationParams(_ graph: Graph, _ ranges: [Int: (min: Double, max: Double)],
                      groups: [Int: Calibrator.GroupRanges] = [:]) throws(QuantizeError) -> [Int: QParams] {
    var lo = Double.infinity, hi = -Double.infinity
    for c in 0..<graph.inputShape.c {
        for p in [0, 255] {
            let x = (Double(p) * Double(graph.pixelScale) - Double(graph.mean[c])) / Double(graph.std[c])
            lo = min(lo, x); hi = max(hi, x)
        }
    }
    var q: [Int: QParams] = [graph.input: QParams(min: lo, max: hi)]
    for layer in graph.layers {
        if layer.kind.keepsInputQuantisation {
            q[layer.output] = q[layer.inputs[0]]!
        } else if case .lut(let f) = layer.kind, let fixed = f.fixedQParams {
            q[layer.output] = fixed
        } else if case .concat = layer.kind {
            q[layer.output] = concatParams(layer.inputs.map { q[$0]! })
        } else {
            let r = ranges[layer.output]!
            guard r.min.isFinite && r.max.isFinite else {
                throw .quantization(layer: graph.values[layer.output].name, reason: "the float activations reach \(r.min)...\(r.max) on the calibration images")
            }
            q[layer.output] = QParams(min: r.min, max: r.max)
            if let g = groups[layer.output] {
                guard g.ranges.allSatisfy({ $0.min.isFinite && $0.max.isFinite }) else {
                    throw .quantization(layer: graph.values[layer.output].name, reason: "a channel group's float activations are not finite")
                }
                // Before a depthwise conv the groups share the tensor's zero point: the conv pads with it.
                let zp = q[layer.output]!.zeroPoint
                q[layer.output]!.groups = ChannelGroups(map: g.map, params: g.ranges.map {
                    g.reader == .depthwise ? QParams(min: $0.min, max: $0.max, zeroPoint: zp) : QParams(min: $0.min, max: $0.max)
                })
            }
        }
    }
    for layer in graph.layers { if let whole = layer.quantisedAs { q[layer.output] = q[whole]! } }
    return q
}

/// A CONCAT's output covers every input's range, and takes an input's quantisation unchanged when
/// that input's range covers the others': its channels are then copied exactly. In ShuffleNet the
/// pass-through half is the previous unit's CONCAT, so a stage's units share one quantisation
/// instead of requantising that half once a unit (rounding errors that add up).
func concatParams(_ inputs: [QParams]) -> QParams {
    func range(_ p: QParams) -> (Double, Double) {
        (Double(p.scale) * Double(-128 - p.zeroPoint), Double(p.scale) * Double(127 - p.zeroPoint))
    }
    let lo = inputs.map { range($0).0 }.min()!, hi = inputs.map { range($0).1 }.max()!
    if let covering = inputs.first(where: { range($0) == (lo, hi) }) { return covering }
    return QParams(min: lo, max: hi)
}

func validate(_ blob: [UInt8]) throws(QuantizeError) {
    let result: SieveError? = blob.withUnsafeBytes { bytes in
        do throws(SieveError) { _ = try Model(bytes: bytes); return nil } catch { return error }
    }
    if let error = result { throw .internalError(reason: "the blob does not load: \(error)") }
}

/// Runs the blob with SieveCore's interpreter op by op next to the float executor and returns
/// each op's SQNR in dB and the top-1 agreement of the final logits.
func measureSQNR(blob: [UInt8], graph: Graph, qparams: [Int: QParams] = [:], images: ImageSet, count: Int, progress: Bool) throws(QuantizeError)
    -> (sqnr: [Double], agreement: Double, floatLogits: [Float]) {
    // A 64-aligned copy: the interpreter reads weights in place.
    let memory = UnsafeMutableRawBufferPointer.allocate(byteCount: blob.count, alignment: BlobLayout.alignment)
    defer { memory.deallocate() }
    memory.copyBytes(from: blob)
    let model: Model
    do { model = try Model(bytes: UnsafeRawBufferPointer(memory)) } catch { throw .internalError(reason: "the blob does not load: \(error)") }
    let bar = Progress.make("measuring SQNR on \(count) images", enabled: progress, lines: true)
    defer { bar?.finish() }

    struct Partial { var signal: [Double]; var noise: [Double]; var agree: Int; var logits: [Float] }
    let layerCount = graph.layers.count
    let partials: [Result<Partial, QuantizeError>] = parallelChunks(count: count, progress: bar) { range in
        let interpreter: Interpreter
        do { interpreter = try Interpreter(model: model) } catch { return .failure(.internalError(reason: "interpreter: \(error)")) }
        let executor = FloatExecutor(graph: graph)
        var part = Partial(signal: [Double](repeating: 0, count: layerCount), noise: [Double](repeating: 0, count: layerCount), agree: 0, logits: [])
        let finalOp = graph.layers.firstIndex { $0.output == graph.final }!
        for i in range.indices {
            let pixels = Array(images.image(i))
            executor.run(pixels: pixels)
            pixels.withUnsafeBytes { interpreter.setInput(pixels: $0) }
            for op in 0..<layerCount {
                interpreter.run(op: op)
                let record = model.ops[op]
                let t = model.tensors[Int(record.output)]
                let q = interpreter.tensor(Int(record.output))
                let f = executor.value(graph.layers[op].output)
                let c = Int(t.c), plane = Int(t.h) * Int(t.w)
                let groups = qparams[graph.layers[op].output]?.groups
                var signal = 0.0, noise = 0.0
                for ch in 0..<c {
                    let channelQ = groups.map { $0.params[Int($0.map[ch])] }
                    let scale = channelQ?.scale ?? t.scale, zp = channelQ?.zeroPoint ?? t.zeroPoint
                    for p in 0..<plane {
                        let x = f[ch * plane + p]
                        let d = scale * Float(Int32(q[p * c + ch]) - zp)
                        signal += Double(x) * Double(x)
                        noise += Double(x - d) * Double(x - d)
                    }
                }
                part.signal[op] += signal
                part.noise[op] += noise
                if op == finalOp {
                    var bestF = 0, bestQ = 0
                    for k in 0..<q.count {
                        if f[k] > f[bestF] { bestF = k }
                        if q[k] > q[bestQ] { bestQ = k }
                    }
                    if bestF == bestQ { part.agree += 1 }
                    part.logits += f
                }
            }
            range.step()
        }
        return .success(part)
    }
    var signal = [Double](repeating: 0, count: layerCount), noise = signal
    var agree = 0
    var logits: [Float] = []
    for p in partials {
        switch p {
        case .failure(let e): throw e
        case .success(let part):
            for i in 0..<layerCount { signal[i] += part.signal[i]; noise[i] += part.noise[i] }
            agree += part.agree
            logits += part.logits
        }
    }
    let sqnr = (0..<layerCount).map { i -> Double in
        noise[i] == 0 ? .infinity : 10 * log10(max(signal[i], 1e-30) / noise[i])
    }
    return (sqnr, Double(agree) / Double(count), logits)
}

/// The float reference model for cross-checks: imports and simplifies the ONNX file exactly as
/// the quantiser does and runs it in float32. Not thread-safe; use one instance per thread.
public final class FloatModel {
    let graph: Graph
    private let executor: FloatExecutor

    public init(onnxPath: String, input: InputOptions = InputOptions()) throws(QuantizeError) {
        graph = try ONNXImporter.importGraph(readONNX(path: onnxPath).model, options: input)
        executor = FloatExecutor(graph: graph)
    }

    public var inputHeight: Int { graph.inputShape.h }
    public var inputWidth: Int { graph.inputShape.w }
    public var inputChannels: Int { graph.inputShape.c }
    public var labels: [String] { graph.labels }
    /// Head output names in HEADS (execution) order, as `run` returns their logits.
    public var headNames: [String] { graph.heads.map { graph.values[$0.output].name } }

    /// Runs one image of u8 pixels in HWC order; returns the final logits and each head's logits.
    public func run(pixels: [UInt8]) -> (final: [Float], heads: [[Float]]) {
        executor.run(pixels: pixels)
        return (Array(executor.value(graph.final)), graph.heads.map { Array(executor.value($0.output)) })
    }
}
