import SieveTestSupport
import Foundation
import Testing
@testable import SieveQuantize

/// A headless VGG-like net on 1x16x16: conv a (1->4), conv b (4->4), 2x2 max pool, conv c (4->8),
/// conv d (8->8), Gemm to 3 classes. Stage boundaries: a (channels change), b (before the pool),
/// c (channels change); d has only the classifier after it.
private func vggLike() -> ONNXBuilder {
    var b = ONNXBuilder()
    b.input("x", [1, 1, 16, 16])
    func conv(_ name: String, _ input: String, _ cin: Int, _ cout: Int, stride: Int64 = 1) {
        b.random(name + ".w", [cout, cin, 3, 3]); b.random(name + ".b", [cout], scale: 0.1)
        b.node("Conv", [input, name + ".w", name + ".b"], [name + ".conv"], [attr("pads", ints: [1, 1, 1, 1]), attr("strides", ints: [stride, stride])])
        b.node("Relu", [name + ".conv"], [name])
    }
    conv("a", "x", 1, 4); conv("b", "a", 4, 4)
    b.node("MaxPool", ["b"], ["p"], [attr("kernel_shape", ints: [2, 2]), attr("strides", ints: [2, 2])])
    conv("c", "p", 4, 8); conv("d", "c", 8, 8)
    b.node("Flatten", ["d"], ["f"], [attr("axis", int: 1)])
    b.random("fc.w", [3, 8 * 8 * 8], scale: 0.05); b.random("fc.b", [3], scale: 0.1)
    b.node("Gemm", ["f", "fc.w", "fc.b"], ["logits"], [attr("transB", int: 1)])
    b.output("logits")
    return b
}

/// vggLike() as m.onnx in `dir`, with `count` 16x16 IDX images and labels 0, 1, 2, 0, 1, ...
private func vggFixture(_ dir: TempDir, count: Int = 40) throws -> (model: String, images: String, labels: String) {
    vggLike().write(dir.file("m.onnx"))
    try Data(idxImages(count: count, h: 16, w: 16)).write(to: URL(fileURLWithPath: dir.file("images.idx")))
    try Data([0, 0, 8, 1, 0, 0, 0, UInt8(count)] + (0..<count).map { UInt8($0 % 3) }).write(to: URL(fileURLWithPath: dir.file("labels.idx")))
    return (dir.file("m.onnx"), dir.file("images.idx"), dir.file("labels.idx"))
}

private func graph(_ b: ONNXBuilder) throws -> Graph {
    try ONNXImporter.importGraph(Onnx_ModelProto(serializedBytes: b.bytes()), options: .none)
}

@Test func tapsAreTheStageBoundaries() throws {
    let taps = try graph(vggLike()).tapCandidates()
    #expect(taps.map { $0.name } == ["a", "b", "c"])
    #expect(taps.map { "\($0.c)x\($0.h)x\($0.w)" } == ["4x16x16", "4x16x16", "8x8x8"])
    // MACs: a 256*4*9, b 256*4*36, c 64*8*36, d 64*8*72, fc 3*512.
    let total = 9216 + 36864 + 18432 + 36864 + 1536
    #expect(taps.map { $0.macsBefore } == [9216, 9216 + 36864, 9216 + 36864 + 18432])
    #expect(taps.allSatisfy { $0.macsTotal == total })
}

@Test func tapsSkipTheInsideOfResidualBlocks() throws {
    var b = ONNXBuilder()
    b.input("x", [1, 1, 8, 8])
    func conv(_ name: String, _ input: String, _ cin: Int, _ cout: Int, stride: Int64 = 1, relu: Bool = true) {
        b.random(name + ".w", [cout, cin, 3, 3]); b.random(name + ".b", [cout], scale: 0.1)
        b.node("Conv", [input, name + ".w", name + ".b"], [relu ? name + ".conv" : name], [attr("pads", ints: [1, 1, 1, 1]), attr("strides", ints: [stride, stride])])
        if relu { b.node("Relu", [name + ".conv"], [name]) }
    }
    conv("s", "x", 1, 4); conv("r1", "s", 4, 4); conv("r2", "r1", 4, 4, relu: false)
    b.node("Add", ["r2", "s"], ["sum"]); b.node("Relu", ["sum"], ["o"])
    conv("t", "o", 4, 8, stride: 2); conv("u", "t", 8, 8)
    b.node("Flatten", ["u"], ["f"], [attr("axis", int: 1)])
    b.random("fc.w", [3, 8 * 4 * 4], scale: 0.05); b.random("fc.b", [3], scale: 0.1)
    b.node("Gemm", ["f", "fc.w", "fc.b"], ["logits"], [attr("transB", int: 1)])
    b.output("logits")
    #expect(try graph(b).tapCandidates().map { $0.name } == ["s", "o", "t"])
}

/// Three well separated classes in 5 features on wildly different scales and offsets: the fit must
/// separate them, and the standardisation it fits under must be folded back into the weights.
@Test(arguments: [HeadKindName.exclusion, .confidence])
func headFitSeparatesSeparableFeatures(kind: HeadKindName) {
    var rng = SplitMix(seed: 11)
    let n = 300, d = 5, k = 3
    let scale: [Float] = [1000, 0.001, 1, 50, 3], offset: [Float] = [50, -7, 0, 1000, 2]
    var features: [Float] = [], labels: [Int] = []
    for i in 0..<n {
        let y = i % k
        labels.append(y)
        for j in 0..<d {
            let centre: Float = j == y ? 3 : (j == (y + 1) % k + 3 ? -2 : 0)
            features.append((centre + (rng.uniform() - 0.5)) * scale[j] + offset[j])
        }
    }
    let result = HeadFitter(kind: kind, classes: k).fit(features: features, labels: labels, count: n, width: d)
    #expect(result.trainAccuracy == 1.0)
    var right = 0
    for i in 0..<n {
        let z = result.head.logits(features[(i * d)..<((i + 1) * d)])
        if z.indices.max(by: { z[$0] < z[$1] }) == labels[i] { right += 1 }
    }
    #expect(right == n, "the folded weights must classify the raw features as the fit did")
    #expect(result.iterations < 300)
}

/// Soft targets: three groups of points, each with its own class distribution to learn. The
/// fitted softmax must reproduce the distributions, not the one-hot labels of their top classes.
@Test func headFitLearnsSoftTargets() {
    var rng = SplitMix(seed: 5)
    let n = 300, d = 3, k = 3
    let targets: [[Float]] = [[0.7, 0.2, 0.1], [0.1, 0.5, 0.4], [0.3, 0.3, 0.4]]
    var features: [Float] = [], labels: [Int] = [], soft: [Float] = []
    for i in 0..<n {
        let group = i % 3
        for j in 0..<d { features.append((j == group ? 1 : 0) + 0.01 * (rng.uniform() - 0.5)) }
        soft += targets[group]
        labels.append(targets[group].indices.max { targets[group][$0] < targets[group][$1] }!)
    }
    var fitter = HeadFitter(kind: .confidence, classes: k)
    fitter.l2 = 0
    let head = fitter.fit(features: features, labels: labels, soft: soft, count: n, width: d).head
    for group in 0..<3 {
        let z = head.logits(features[(group * d)..<((group + 1) * d)])
        let e = z.map { expf($0 - z.max()!) }
        let p = e.map { $0 / e.reduce(0, +) }
        for c in 0..<k { #expect(abs(p[c] - targets[group][c]) < 0.02, "group \(group): softmax \(p), target \(targets[group])") }
    }
}

@Test func lbfgsFindsAQuadraticsMinimum() {
    // f(x) = sum_i (i+1) (x_i - i)^2, minimum at x_i = i.
    var x = [Float](repeating: 0, count: 6)
    _ = LBFGS().minimise(&x) { x in
        var loss = 0.0, g = [Float](repeating: 0, count: x.count)
        for i in x.indices { let e = x[i] - Float(i); loss += Double(Float(i + 1) * e * e); g[i] = 2 * Float(i + 1) * e }
        return (loss, g)
    }
    for i in x.indices { #expect(abs(x[i] - Float(i)) < 1e-3) }
}

@Test(arguments: [HeadPooling.gap, .grid2])
func retrofitExportsHeadsThatReimport(pooling: HeadPooling) throws {
    let dir = TempDir()
    let b = vggLike()
    let f = try vggFixture(dir)
    var options = RetrofitOptions()
    options.input = .none
    options.pooling = pooling
    options.objective = .confidence
    let result = try retrofitModel(onnxPath: f.model, imagesPath: f.images, labelsPath: f.labels, options: options)
    #expect(result.headOutputs == ["head0", "head1", "head2"])

    let withHeads = try ONNXImporter.importGraph(Onnx_ModelProto(serializedBytes: result.bytes), options: .none)
    #expect(withHeads.heads.map { withHeads.values[$0.tap].name } == ["a", "b", "c"])
    #expect(withHeads.heads.allSatisfy { $0.kind == .confidence })
    let poolOps = withHeads.heads.map { withHeads.layers[$0.firstLayer].kind }
    for op in poolOps {
        switch (pooling, op) {
        case (.gap, .globalAveragePool), (.grid2, .averagePool): break
        default: Issue.record("head pool op \(op) for \(pooling)")
        }
    }
    // The backbone is untouched: the same final logits as the model without heads.
    let plain = try graph(b)
    let images = try ImageSet.load(path: f.images)
    let (e1, e2) = (FloatExecutor(graph: plain), FloatExecutor(graph: withHeads))
    e1.run(pixels: images.image(3)); e2.run(pixels: images.image(3))
    #expect(Array(e1.value(plain.final)) == Array(e2.value(withHeads.final)))
}

@Test func retrofitRefusesATapTooSmallForAGrid() throws {
    let dir = TempDir()
    let f = try vggFixture(dir, count: 4)
    var options = RetrofitOptions()
    options.input = .none
    options.pooling = .grid2
    options.taps = ["logits"]
    #expect(throws: QuantizeError.self) {
        _ = try retrofitModel(onnxPath: f.model, imagesPath: f.images, labelsPath: f.labels, options: options)
    }
}

@Test func gridWindowsTileTheTapAsAveragePoolComputesThem() {
    for cells in [2, 4] {
        for size in cells...20 {
            let (k, s) = HeadPooling.gridWindow(size, cells: cells)
            // ONNX AveragePool without padding gives floor((size - k) / s) + 1 outputs per side.
            #expect(s >= 1 && (size - k) / s + 1 == cells, "\(cells) cells over \(size): kernel \(k), stride \(s)")
            #expect((cells - 1) * s + k == size, "the last window ends at the edge")
            #expect(k >= s, "adjacent windows touch or overlap: no row or column left out")
        }
    }
    // grid2 keeps its window: ceil(size/2), floor(size/2).
    for size in 2...20 { #expect(HeadPooling.gridWindow(size, cells: 2) == ((size + 1) / 2, size / 2)) }
}

@Test func retrofitGrid4HeadsPoolA4x4GridAndStayCheap() throws {
    let dir = TempDir()
    let f = try vggFixture(dir)
    var options = RetrofitOptions()
    options.input = .none
    options.pooling = .grid4
    options.objective = .confidence
    let result = try retrofitModel(onnxPath: f.model, imagesPath: f.images, labelsPath: f.labels, options: options)
    // Tap a (4x16x16, 9216 MACs before it): a grid4 head is 16*4*3 = 192 MACs, more than 2 % (184).
    #expect(result.report.contains { $0.hasPrefix("skipped tap a:") })
    #expect(result.headOutputs == ["head0", "head1"])

    let withHeads = try ONNXImporter.importGraph(Onnx_ModelProto(serializedBytes: result.bytes), options: .none)
    #expect(withHeads.heads.map { withHeads.values[$0.tap].name } == ["b", "c"])
    let windows = withHeads.heads.map { head -> [Int] in
        guard case .averagePool(let p) = withHeads.layers[head.firstLayer].kind else { return [] }
        return [p.kh, p.kw, p.strideH, p.strideW]
    }
    #expect(windows == [[4, 4, 4, 4], [2, 2, 2, 2]]) // b is 16x16, c 8x8
    #expect(withHeads.heads.allSatisfy { withHeads.values[withHeads.layers[$0.firstLayer].output].shape.h == 4 })
}

@Test func retrofitRefusesATapTooSmallForA4x4Grid() throws {
    // 1x6x6 -> conv a (8x6x6) -> conv b, stride 2 (8x3x3) -> conv c -> Gemm.
    let dir = TempDir()
    var b = ONNXBuilder()
    b.input("x", [1, 1, 6, 6])
    for (name, input, cin, stride) in [("a", "x", 1, Int64(1)), ("b", "a", 8, 2), ("c", "b", 8, 1)] {
        b.random(name + ".w", [8, cin, 3, 3]); b.random(name + ".b", [8], scale: 0.1)
        b.node("Conv", [input, name + ".w", name + ".b"], [name + ".conv"], [attr("pads", ints: [1, 1, 1, 1]), attr("strides", ints: [stride, stride])])
        b.node("Relu", [name + ".conv"], [name])
    }
    b.node("Flatten", ["c"], ["f"], [attr("axis", int: 1)])
    b.random("fc.w", [3, 72], scale: 0.05); b.random("fc.b", [3], scale: 0.1)
    b.node("Gemm", ["f", "fc.w", "fc.b"], ["logits"], [attr("transB", int: 1)])
    b.output("logits")
    b.write(dir.file("m.onnx"))
    try Data(idxImages(count: 4, h: 6, w: 6)).write(to: URL(fileURLWithPath: dir.file("images.idx")))
    try Data([0, 0, 8, 1, 0, 0, 0, 4, 0, 1, 2, 0]).write(to: URL(fileURLWithPath: dir.file("labels.idx")))
    var options = RetrofitOptions()
    options.input = .none
    options.pooling = .grid4
    options.taps = ["b"]
    do {
        _ = try retrofitModel(onnxPath: dir.file("m.onnx"), imagesPath: dir.file("images.idx"), labelsPath: dir.file("labels.idx"), options: options)
        Issue.record("a 4x4 grid head on a 3x3 tap was accepted")
    } catch {
        #expect("\(error)".contains("a 4x4 grid needs at least 4x4 pixels"), "\(error)")
    }
}

/// How often each image's head logits (the head on tap c) pick the class the network's final
/// logits pick, on the model `bytes`.
private func headAgreement(_ bytes: [UInt8], images: ImageSet) throws -> Double {
    let graph = try ONNXImporter.importGraph(Onnx_ModelProto(serializedBytes: bytes), options: .none)
    let executor = FloatExecutor(graph: graph)
    func top(_ v: UnsafeBufferPointer<Float>) -> Int { v.indices.max { v[$0] < v[$1] }! }
    var agree = 0
    for i in 0..<images.count {
        executor.run(pixels: images.image(i))
        if top(executor.value(graph.heads[0].output)) == top(executor.value(graph.final)) { agree += 1 }
    }
    return Double(agree) / Double(images.count)
}

/// `--targets network`: no labels needed, and the heads learn the network's own answers. The
/// fixture's labels (0, 1, 2, ...) have nothing to do with this random network's answers, so a
/// head fitted to them agrees with the network far less often than one fitted to its answers.
@Test func retrofitFitsTheNetworksOwnAnswersWithoutLabels() throws {
    let dir = TempDir()
    let f = try vggFixture(dir)
    var options = RetrofitOptions()
    options.input = .none
    options.pooling = .grid2
    options.objective = .confidence
    options.taps = ["c"]
    options.targets = .network
    let unlabelled = try retrofitModel(onnxPath: f.model, imagesPath: f.images, labelsPath: nil, options: options)
    #expect(unlabelled.report.contains { $0.hasPrefix("targets: the float network's own answers (no labels)") })
    // Given labels too, it still fits the network's answers (the labels only go into the report).
    let network = try retrofitModel(onnxPath: f.model, imagesPath: f.images, labelsPath: f.labels, options: options)
    #expect(network.bytes == unlabelled.bytes)
    options.targets = .labels
    let labels = try retrofitModel(onnxPath: f.model, imagesPath: f.images, labelsPath: f.labels, options: options)
    let images = try ImageSet.load(path: f.images)
    let (fromNetwork, fromLabels) = (try headAgreement(network.bytes, images: images), try headAgreement(labels.bytes, images: images))
    #expect(fromNetwork >= 0.9, "fitted to the network's answers, the head agrees with it on \(fromNetwork) of the images")
    #expect(fromNetwork > fromLabels + 0.2, "fitted to the labels: \(fromLabels)")

    // Fitting to the labels without labels: an error that names both ways out.
    do {
        _ = try retrofitModel(onnxPath: f.model, imagesPath: f.images, labelsPath: nil, options: options)
        Issue.record("fitting to labels without labels was accepted")
    } catch {
        #expect("\(error)".contains("needs --labels") && "\(error)".contains("--targets network"), "\(error)")
    }
}
