import Foundation
import SwiftProtobuf

/// The objective an exit head is fitted for (docs/EARLY-EXIT.md): exclusion heads rule classes
/// out, confidence heads stop when sure.
public enum HeadObjective: String, CaseIterable {
    case exclusion, confidence
    var kind: HeadKindName { self == .exclusion ? .exclusion : .confidence }
}

/// What each head learns to predict: the training labels, or the frozen network's own answers
/// (its softmax for confidence heads, its top-1 for exclusion heads). An exit costs accuracy only
/// where it disagrees with the network, so `network` fits exactly that, and needs no labels:
/// unlabelled camera frames will do.
public enum HeadTargets: String, CaseIterable {
    case labels, network
}

public struct RetrofitOptions {
    public var input = InputOptions()
    /// ONNX tensor names to put heads on; nil: every candidate tap.
    public var taps: [String]?
    public var objective: HeadObjective = .exclusion
    public var pooling: HeadPooling = .gap
    public var targets: HeadTargets = .labels
    /// Use at most this many training images.
    public var limit = Int.max
    /// L2 weight on the standardised head weights.
    public var l2: Float = 1e-4
    public var progress = false
    /// A head may cost at most this fraction of the backbone MACs before its tap.
    public static let maxHeadCost = 0.02

    public init() {}
}

public struct RetrofitResult {
    /// The ONNX model with heads.
    public let bytes: [UInt8]
    /// What was done, a line per step and per head, for stdout.
    public let report: [String]
    public let headOutputs: [String]
}

/// The imported graph and its candidate taps (`sieve retrofit --taps list`).
public func retrofitCandidates(onnxPath: String, input: InputOptions) throws(QuantizeError) -> (taps: [Tap], classes: Int) {
    let (proto, _) = try readONNX(path: onnxPath)
    let graph = try headlessGraph(proto, input)
    return (graph.tapCandidates().filter { onnxOutputs(proto).contains($0.name) }, graph.classCount)
}

private func headlessGraph(_ proto: Onnx_ModelProto, _ input: InputOptions) throws(QuantizeError) -> Graph {
    let graph = try ONNXImporter.importGraph(proto, options: input)
    guard graph.heads.isEmpty else {
        let names = graph.heads.map { graph.values[$0.output].name }.joined(separator: ", ")
        throw .invalidModel(reason: "the model already has \(graph.heads.count) exit heads (\(names)); retrofit adds heads to a model without them")
    }
    return graph
}

private func onnxOutputs(_ proto: Onnx_ModelProto) -> Set<String> {
    var names: Set<String> = []
    for node in proto.graph.node { names.formUnion(node.output) }
    return names
}

/// Head MACs as the runtime counts them: the fully connected layer (pools count none).
func headMACs(_ tap: Tap, _ pooling: HeadPooling, classes: Int) -> Int { pooling.featureCount(channels: tap.c) * classes }

/// `sieve retrofit`: fits exit heads onto the frozen network at its taps and returns the model with them.
public func retrofitModel(onnxPath: String, imagesPath: String, labelsPath: String?, options: RetrofitOptions) throws(QuantizeError) -> RetrofitResult {
    var clock = Date()
    func lap() -> Double { let now = Date(); defer { clock = now }; return now.timeIntervalSince(clock) }
    func seconds(_ t: Double) -> String { String(format: "%.1f s", t) }
    func percent(_ f: Double) -> String { String(format: "%.1f %%", 100 * f) }

    let (proto, _) = try readONNX(path: onnxPath)
    let graph = try headlessGraph(proto, options.input)
    if options.progress { printImportNotes(graph.notes) }
    let classes = graph.classCount
    let produced = onnxOutputs(proto)
    var report: [String] = []

    // The taps, checked: a grid head needs a pixel per cell, and every head stays cheap.
    var taps: [Tap] = []
    let explicit = options.taps != nil
    let requested: [Tap]
    if let names = options.taps {
        var list: [Tap] = []
        for name in names {
            let tap = try graph.tap(named: name)
            guard produced.contains(name) else { throw .invalidModel(reason: "'\(sanitized(name))' is not a tensor a node of the ONNX graph writes") }
            guard !list.contains(where: { $0.name == name }) else { throw .invalidModel(reason: "tap '\(sanitized(name))' is named twice") }
            list.append(tap)
        }
        requested = list.sorted { graph.values[$0.value].producer! < graph.values[$1.value].producer! }
    } else {
        requested = graph.tapCandidates().filter { produced.contains($0.name) }
    }
    for tap in requested {
        var problem: String?
        let n = options.pooling.cells
        if tap.h < n || tap.w < n {
            problem = "is \(tap.c)x\(tap.h)x\(tap.w) (CxHxW): a \(n)x\(n) grid needs at least \(n)x\(n) pixels"
        } else {
            let cost = headMACs(tap, options.pooling, classes: classes)
            if Double(cost) > RetrofitOptions.maxHeadCost * Double(tap.macsBefore) {
                problem = "a \(options.pooling.rawValue) head costs \(cost) MACs, more than \(Int(100 * RetrofitOptions.maxHeadCost)) % of the \(tap.macsBefore) backbone MACs before it"
            }
        }
        if let problem = problem {
            if explicit { throw .invalidModel(reason: "tap '\(sanitized(tap.name))' \(problem)") }
            report.append("skipped tap \(tap.name): \(problem)")
            continue
        }
        taps.append(tap)
    }
    guard !taps.isEmpty else { throw .invalidModel(reason: "no tap to put a head on (sieve retrofit --taps list shows the candidates)") }

    let s = graph.inputShape
    let data = try TrainingSet.load(images: imagesPath, labels: labelsPath, expect: (s.h, s.w, s.c), classes: classes,
                                    limit: options.limit, labelsNeeded: options.targets == .labels)
    let n = data.images.count
    guard n >= 2 else { throw .invalidImageData(path: imagesPath, reason: "\(n) image; fitting heads needs at least 2") }
    report.append("training set: \(n) images, \(classes) classes (\(seconds(lap())) to read)")

    let bar = Progress.make("features at \(taps.count) taps (\(options.pooling.rawValue)) of \(n) images", enabled: options.progress, lines: true)
    let answers = options.targets == .network
    let features = TapFeatures.extract(graph: graph, taps: taps, pooling: options.pooling, images: data.images, count: n,
                                       answers: answers, progress: bar)
    bar?.finish()
    report.append("features: \(taps.count) taps x \(n) images, \(options.pooling.rawValue) pooling, float network up to "
                  + (answers ? "its output: \(seconds(lap()))" : "the last tap: \(seconds(lap()))"))
    let targets = answers ? features.networkAnswers : data.labels!
    if answers, let labels = data.labels {
        let agree = zip(labels, targets).filter { $0 == $1 }.count
        report.append("targets: the float network's own answers (it agrees with the labels on \(percent(Double(agree) / Double(n))) of the training images)")
    } else if answers {
        report.append("targets: the float network's own answers (no labels)")
    }

    var fitter = HeadFitter(kind: options.objective.kind, classes: classes)
    fitter.l2 = options.l2
    var fitted: [FittedHead] = []
    for (t, tap) in taps.enumerated() {
        // Confidence heads learn the network's whole softmax (how sure it is, not only its answer).
        let soft = answers && options.objective == .confidence ? features.networkProbabilities : nil
        let result = fitter.fit(features: features.rows[t], labels: targets, soft: soft, count: n, width: features.widths[t])
        let cost = headMACs(tap, options.pooling, classes: classes)
        report.append("head \(t): \(tap.name) \(tap.c)x\(tap.h)x\(tap.w), \(options.objective.rawValue), \(features.widths[t]) features: \(answers ? "agrees with the network on" : "train accuracy") \(percent(result.trainAccuracy)), "
                      + "\(result.iterations) iterations, \(seconds(lap())); head \(cost) MACs (\(String(format: "%.2f", 100 * Double(cost) / Double(max(1, tap.macsBefore)))) % of the backbone before it), an exit here saves \(percent(tap.savedFraction))")
        fitted.append(FittedHead(tap: tap, pooling: options.pooling, kind: options.objective.kind, head: result.head))
    }

    var exporter = RetrofitExporter(path: onnxPath)
    exporter.metadata = metadata(options.input, classNames: data.classNames, proto: proto, classes: classes)
    let meta = Dictionary(proto.metadataProps.map { ($0.key, $0.value) }, uniquingKeysWith: { $1 })
    let finalName = meta["sieve.final_output"] ?? proto.graph.output[0].name
    let (bytes, outputs) = try exporter.export(fitted, finalOutput: finalName)
    try checkExport(bytes, options.input, fitted, outputs, data.images, features)
    report.append("exported and re-imported: \(fitted.count) heads, each head's float logits checked against the fit")
    return RetrofitResult(bytes: bytes, report: report, headOutputs: outputs)
}

/// Metadata the command line said that the model should carry from now on, so `sieve quantize`
/// needs no options: the normalisation, and class names from class folders.
private func metadata(_ input: InputOptions, classNames: [String]?, proto: Onnx_ModelProto, classes: Int) -> [(String, String)] {
    func json(_ v: Any) -> String { String(decoding: (try? JSONSerialization.data(withJSONObject: v)) ?? Data("[]".utf8), as: UTF8.self) }
    var out: [(String, String)] = []
    if let mean = input.mean, let std = input.std {
        out += [("sieve.input_mean", json(mean.map { Double($0) })), ("sieve.input_std", json(std.map { Double($0) })), ("sieve.pixel_scale", "1/255")]
    }
    let hasLabels = input.labels != nil || proto.metadataProps.contains { $0.key == "sieve.labels" }
    if let names = input.labels ?? (hasLabels ? nil : classNames), names.count == classes,
       names.allSatisfy({ name in (1...255).contains(name.utf8.count) && !name.utf8.contains { $0 < 0x20 || $0 == 0x7F || $0 == 34 || $0 == 92 } }) {
        out.append(("sieve.labels", json(names)))
    }
    return out
}

/// Re-imports the written model as `sieve quantize` will, and checks each head's float logits on
/// one image against the fitted head applied to the features it was fitted on.
private func checkExport(_ bytes: [UInt8], _ input: InputOptions, _ heads: [FittedHead], _ outputs: [String],
                         _ images: ImageSet, _ features: TapFeatures) throws(QuantizeError) {
    let model: Onnx_ModelProto
    do { model = try Onnx_ModelProto(serializedBytes: bytes) } catch { throw .internalError(reason: "the model with heads does not parse: \(error)") }
    let graph = try ONNXImporter.importGraph(model, options: input)
    guard graph.heads.count == heads.count else { throw .internalError(reason: "the model with heads imports with \(graph.heads.count) heads, not \(heads.count)") }
    let executor = FloatExecutor(graph: graph)
    executor.run(pixels: images.image(0))
    for (h, head) in graph.heads.enumerated() {
        guard let i = outputs.firstIndex(of: graph.values[head.output].name) else { throw .internalError(reason: "unknown head output \(graph.values[head.output].name)") }
        let width = features.widths[i]
        let expected = heads[i].head.logits(features.rows[i][0..<width])
        let got = Array(executor.value(head.output))
        let scale = 1 + (expected.map { abs($0) }.max() ?? 0)
        guard zip(expected, got).allSatisfy({ abs($0 - $1) <= 1e-3 * scale }) else {
            throw .internalError(reason: "head \(h) ('\(outputs[i])'): the exported graph gives \(got), the fit \(expected)")
        }
    }
}
