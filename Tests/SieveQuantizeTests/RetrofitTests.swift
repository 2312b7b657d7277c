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
    b.write(dir.file("m.onnx"))
    let count = 40
    try Data(idxImages(count: count, h: 16, w: 16)).write(to: URL(fileURLWithPath: dir.file("images.idx")))
    try Data([0, 0, 8, 1, 0, 0, 0, UInt8(count)] + (0..<count).map { UInt8($0 % 3) }).write(to: URL(fileURLWithPath: dir.file("labels.idx")))
    var options = RetrofitOptions()
    options.input = .none
    options.pooling = pooling
    options.objective = .confidence
    let result = try retrofitModel(onnxPath: dir.file("m.onnx"), imagesPath: dir.file("images.idx"), labelsPath: dir.file("labels.idx"), options: options)
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
    let images = try ImageSet.load(path: dir.file("images.idx"))
    let (e1, e2) = (FloatExecutor(graph: plain), FloatExecutor(graph: withHeads))
    e1.run(pixels: images.image(3)); e2.run(pixels: images.image(3))
    #expect(Array(e1.value(plain.final)) == Array(e2.value(withHeads.final)))
}

@Test func retrofitRefusesATapTooSmallForAGrid() throws {
    let dir = TempDir()
    vggLike().write(dir.file("m.onnx"))
    try Data(idxImages(count: 4, h: 16, w: 16)).write(to: URL(fileURLWithPath: dir.file("images.idx")))
    try Data([0, 0, 8, 1, 0, 0, 0, 4, 0, 1, 2, 0]).write(to: URL(fileURLWithPath: dir.file("labels.idx")))
    var options = RetrofitOptions()
    options.input = .none
    options.pooling = .grid2
    options.taps = ["logits"]
    #expect(throws: QuantizeError.self) {
        _ = try retrofitModel(onnxPath: dir.file("m.onnx"), imagesPath: dir.file("images.idx"), labelsPath: dir.file("labels.idx"), options: options)
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
    vggLike().write(dir.file("m.onnx"))
    let count = 40
    try Data(idxImages(count: count, h: 16, w: 16)).write(to: URL(fileURLWithPath: dir.file("images.idx")))
    try Data([0, 0, 8, 1, 0, 0, 0, UInt8(count)] + (0..<count).map { UInt8($0 % 3) }).write(to: URL(fileURLWithPath: dir.file("labels.idx")))
    var options = RetrofitOptions()
    options.input = .none
    options.pooling = .grid4
    options.objective = .confidence
    let result = try retrofitModel(onnxPath: dir.file("m.onnx"), imagesPath: dir.file("images.idx"), labelsPath: dir.file("labels.idx"), options: options)
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
