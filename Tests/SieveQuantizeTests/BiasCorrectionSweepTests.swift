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
}
