import Foundation
import Testing
@testable import SieveQuantize

/// The one-sweep bias correction (accumulators kept, 17 biases requantised) must choose exactly the
/// biases of the exhaustive one (a blob and a runtime pass per trial) on the bundled models, which
/// between them have convs, depthwise convs, ADDs, pools, fully connected layers and heads.
@Suite struct BiasCorrectionSweepTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    @Test(arguments: ["mobilenet-s", "resnet-s", "vgg-s-confidence"])
    func sweepMatchesExhaustive(_ name: String) throws {
        let graph = try ONNXImporter.importGraph(readONNX(path: "\(Self.root)/models/\(name).onnx").model)
        let images = try ImageSet.load(path: "\(Self.root)/data/fashion-mnist-calib-1000-images-idx3-ubyte.gz")
        let count = 4
        let ranges = Calibrator(graph: graph, images: images, count: count, method: .mse, percentile: 99.99, progress: nil).ranges()
        let qparams = try activationParams(graph, ranges)
        let corrector = BiasCorrector(graph: graph, qparams: qparams, images: images, count: count, progress: nil)
        let fast = try corrector.corrected(), slow = try corrector.exhaustiveCorrected()
        var compared = 0, moved = 0
        for (a, b) in zip(fast.layers, slow.layers) {
            switch (a.kind, b.kind) {
            case (.conv(let p), .conv(let q)): #expect(p.bias == q.bias, "\(a.node)"); compared += 1
            case (.fullyConnected(let p), .fullyConnected(let q)): #expect(p.bias == q.bias, "\(a.node)"); compared += 1
            default: break
            }
        }
        for (a, o) in zip(fast.layers, graph.layers) {
            if case .conv(let p) = a.kind, case .conv(let q) = o.kind, p.bias != q.bias { moved += 1 }
        }
        #expect(compared >= 4)
        #expect(moved > 0, "bias correction moved no conv bias: the comparison proves nothing")
    }

    /// A depthwise conv with channel multiplier 2 and a grouped conv (shapes the bundled models lack).
    @Test func sweepMatchesExhaustiveWithChannelMultiplier() throws {
        var b = ONNXBuilder(seed: 11)
        b.input("x", [1, 2, 12, 12])
        b.random("dw", [4, 1, 3, 3]); b.random("dwb", [4], scale: 0.1)
        b.node("Conv", ["x", "dw", "dwb"], ["d"], [attr("group", int: 2), attr("strides", ints: [2, 2]), attr("pads", ints: [1, 1, 1, 1])])
        b.node("Relu", ["d"], ["dr"])
        b.random("gw", [6, 2, 3, 3]); b.random("gb", [6], scale: 0.1)
        b.node("Conv", ["dr", "gw", "gb"], ["g"], [attr("group", int: 2), attr("pads", ints: [1, 1, 1, 1])])
        b.node("Relu", ["g"], ["gr"])
        b.node("Flatten", ["gr"], ["f"])
        b.random("fw", [5, 6 * 6 * 6]); b.random("fb", [5])
        b.node("Gemm", ["f", "fw", "fb"], ["logits"], [attr("transB", int: 1)])
        b.output("logits")
        let graph = try ONNXImporter.importGraph(Onnx_ModelProto(serializedBytes: b.bytes()), options: .none)
        let images = try ImageSet.parseIDX(idxImages(count: 12, h: 12, w: 12, c: 2)) { .invalidCalibrationData(path: "", reason: $0) }
        let ranges = Calibrator(graph: graph, images: images, count: 12, method: .minmax, percentile: 99.99, progress: nil).ranges()
        let corrector = BiasCorrector(graph: graph, qparams: try activationParams(graph, ranges), images: images, count: 12, progress: nil)
        let fast = try corrector.corrected(), slow = try corrector.exhaustiveCorrected()
        var compared = 0
        for (a, s) in zip(fast.layers, slow.layers) {
            switch (a.kind, s.kind) {
            case (.conv(let p), .conv(let q)): #expect(p.bias == q.bias, "\(a.node)"); compared += 1
            case (.fullyConnected(let p), .fullyConnected(let q)): #expect(p.bias == q.bias, "\(a.node)"); compared += 1
            default: break
            }
        }
        #expect(compared == 3)
    }
}
