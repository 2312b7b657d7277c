import Foundation
import SieveTestSupport
import SieveCore
import Testing
@testable import SieveQuantize

/// `--weight-bits 7`: weights per channel in [-63, 63] (scale max|w| / 63), what AVX2's u8 x s8
/// conv route needs to be exact (docs/KERNELS.md); 8 keeps [-127, 127]; other values are refused.
@Suite struct WeightBitsTests {
    @Test func sevenBitChannelsSpanExactlyPlusMinus63() throws {
        var rng = SplitMix(seed: 7)
        let cout = 5, perChannel = 27
        let weights = (0..<(cout * perChannel)).map { _ in 4 * rng.uniform() - 2 }
        let bias = (0..<cout).map { _ in 2 * rng.uniform() - 1 }
        let inQ = QParams(scale: 0.02, zeroPoint: -10), outQ = QParams(scale: 0.05, zeroPoint: 3)
        for weightMax in [63, 127] {
            let builder = BlobBuilder(graph: Graph(), qparams: [:], weightMax: weightMax)
            let q = try builder.quantizeChannels(name: "t", weights: weights, bias: bias, cout: cout, perChannel: perChannel,
                                                 inQ: inQ, outQ: outQ)
            for oc in 0..<cout {
                let row = q.weights[(oc * perChannel)..<((oc + 1) * perChannel)].map { Int($0) }
                #expect(row.allSatisfy { abs($0) <= weightMax }, "weight max \(weightMax), channel \(oc): \(row)")
                #expect(row.map { abs($0) }.max() == weightMax, "weight max \(weightMax), channel \(oc): largest \(row.map { abs($0) }.max()!)")
                // Each weight is the float weight over the channel's scale, rounded.
                let scale = Double(weights[(oc * perChannel)..<((oc + 1) * perChannel)].map { abs($0) }.max()!) / Double(weightMax)
                for (i, w) in row.enumerated() {
                    #expect(abs(Double(weights[oc * perChannel + i]) / scale - Double(w)) <= 0.5 + 1e-9)
                }
            }
        }
    }

    @Test func otherWeightBitsAreRefused() throws {
        for bits in [0, 6, 9, 16] {
            var options = QuantizeOptions()
            options.weightBits = bits
            #expect(throws: QuantizeError.invalidOption(name: "weight bits", reason: "must be 7 or 8, not \(bits)")) {
                _ = try quantizeModel(onnxPath: "/nonexistent.onnx", calibrationPath: "/nonexistent.idx", options: options)
            }
        }
    }
}
