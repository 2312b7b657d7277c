import SieveTestSupport
import Foundation
import SieveCore
import Testing
@testable import SieveQuantize

/// Table groups (ChannelGroups.swift): a conv output read only by a table gets a scale per channel
/// group where a few wide channels would leave the narrow ones, which the layer after weighs most,
/// a coarse step. The case is MobileNetV3-small's stem, built small.
@Suite struct LutGroupsTests {
    /// conv 3 -> 8 (channels 0 and 1 eight times the others' range) -> HardSwish -> depthwise 3x3
    /// (the narrow channels weighed 16 times the wide ones) -> GAP -> Gemm.
    static func stemLike() -> ONNXBuilder {
        var b = ONNXBuilder()
        var rng = SplitMix(seed: 21)
        b.input("x", [1, 3, 8, 8])
        let wide: Set<Int> = [0, 1]
        var w1: [Float] = []
        for oc in 0..<8 { for _ in 0..<27 { w1.append((rng.uniform() - 0.5) * (wide.contains(oc) ? 2.4 : 0.3)) } }
        b.initializer("w1", [8, 3, 3, 3], w1)
        b.initializer("b1", [8], (0..<8).map { Float($0 % 3) * 0.1 - 0.1 })
        b.node("Conv", ["x", "w1", "b1"], ["c1"], [attr("kernel_shape", ints: [3, 3]), attr("pads", ints: [1, 1, 1, 1])])
        b.node("HardSwish", ["c1"], ["h1"])
        var dw: [Float] = []
        for c in 0..<8 { for _ in 0..<9 { dw.append((rng.uniform() - 0.2) * (wide.contains(c) ? 0.25 : 4)) } }
        b.initializer("dw", [8, 1, 3, 3], dw)
        b.initializer("db", [8], [Float](repeating: 0.05, count: 8))
        b.node("Conv", ["h1", "dw", "db"], ["d1"], [attr("kernel_shape", ints: [3, 3]), attr("pads", ints: [1, 1, 1, 1]), attr("group", int: 8)])
        b.node("GlobalAveragePool", ["d1"], ["g"])
        b.node("Flatten", ["g"], ["f"], [attr("axis", int: 1)])
        b.random("wf", [10, 8]); b.random("bf", [10])
        b.node("Gemm", ["f", "wf", "bf"], ["out"], [attr("transB", int: 1)])
        b.output("out")
        return b
    }

    func quantize(lutGroups: Int, biasCorrection: Bool = true) throws -> (result: QuantizeResult, lut: OpRecord, ops: [OpRecord]) {
        let dir = TempDir()
        let onnx = dir.file("model.onnx"), calib = dir.file("calib.idx")
        let builder = Self.stemLike()
        builder.write(onnx)
        try Data(idxImages(count: 48, h: 8, w: 8, c: 3)).write(to: URL(fileURLWithPath: calib))
        var options = QuantizeOptions(method: .mse, count: 48, sqnrCount: 48).input(normalisation(builder))
        options.lutGroups = lutGroups
        options.biasCorrection = biasCorrection
        let result = try quantizeModel(onnxPath: onnx, calibrationPath: calib, options: options)
        let memory = UnsafeMutableRawBufferPointer.allocate(byteCount: result.blob.count, alignment: 64)
        defer { memory.deallocate() }
        memory.copyBytes(from: result.blob)
        let ops = try Model(bytes: UnsafeRawBufferPointer(memory)).ops
        let lut = try #require(ops.first { $0.opKind == OpKind.lut })
        return (result, lut, ops)
    }

    @Test func aStemsNarrowChannelsGetTheirOwnScale() throws {
        let grouped = try quantize(lutGroups: 4), single = try quantize(lutGroups: 1)
        #expect(grouped.lut.groups >= 2, "the hard-swish table has \(grouped.lut.groups) groups")
        #expect(single.lut.groups == 0, "--lut-groups 1 keeps one table")
        // Measured by the quantiser on the calibration images: the depthwise conv's output and the
        // logits are closer to the float model with the groups. A wrong zero point or table per
        // group would make them far worse, not better.
        func sqnr(_ r: QuantizeResult, _ op: String) -> Double { r.layers.first { $0.op == op }!.sqnr }
        #expect(sqnr(grouped.result, "DEPTHWISE_CONV") >= sqnr(single.result, "DEPTHWISE_CONV") + 3,
                "depthwise output \(sqnr(grouped.result, "DEPTHWISE_CONV")) dB with groups, \(sqnr(single.result, "DEPTHWISE_CONV")) dB without")
        #expect(sqnr(grouped.result, "FULLY_CONNECTED") > sqnr(single.result, "FULLY_CONNECTED"))
        #expect(sqnr(single.result, "DEPTHWISE_CONV") < 40, "the test would not show a gain: one scale is already fine")
        // Without bias correction, which would absorb a wrong zero point per channel as a bias error.
        let groupedRaw = try quantize(lutGroups: 4, biasCorrection: false), singleRaw = try quantize(lutGroups: 1, biasCorrection: false)
        #expect(sqnr(groupedRaw.result, "DEPTHWISE_CONV") >= sqnr(singleRaw.result, "DEPTHWISE_CONV") + 3,
                "without bias correction: \(sqnr(groupedRaw.result, "DEPTHWISE_CONV")) dB with groups, \(sqnr(singleRaw.result, "DEPTHWISE_CONV")) dB without")
    }

    @Test func channelsAreGroupedOnlyWhereTheReadersFeelTheStep() {
        let grouping = ChannelGrouping(tableGroups: 4)
        let lo = [Float](repeating: -0.5, count: 8)
        let hi: [Float] = [4, 4, 0.5, 0.5, 0.6, 0.5, 0.7, 0.5]
        let narrowHeavy = (0..<8).map { $0 < 2 ? 0.01 : 1.0 }
        let map = grouping.groups(lo: lo, hi: hi, weight: narrowHeavy, reader: .table)
        #expect(map != nil && map![0] == map![1] && map![2] != map![0], "\(String(describing: map))")
        // The same ranges where the wide channels carry the weight: one scale serves.
        #expect(grouping.groups(lo: lo, hi: hi, weight: (0..<8).map { $0 < 2 ? 100.0 : 1.0 }, reader: .table) == nil)
        // Channels of one width: nothing to group.
        #expect(grouping.groups(lo: lo, hi: [Float](repeating: 1, count: 8), weight: narrowHeavy, reader: .table) == nil)
        #expect(ChannelGrouping(tableGroups: 1).groups(lo: lo, hi: hi, weight: narrowHeavy, reader: .table) == nil)
    }
}

/// Depthwise groups (ChannelGroups.swift): a conv output read only by a depthwise conv gets a
/// scale per channel group, which the depthwise conv takes into its per-channel multipliers.
/// MobileNetV2's expand -> ReLU6 -> depthwise pair, built small.
@Suite struct DepthwiseGroupsTests {
    /// conv 3 -> 8 (channels 0 and 1 sixteen times the others' range) -> `activation` -> depthwise
    /// 3x3 with zero padding (the narrow channels weighed 16 times the wide ones) -> GAP -> Gemm.
    static func expandLike(activation: String = "Relu") -> ONNXBuilder {
        var b = ONNXBuilder()
        var rng = SplitMix(seed: 5)
        b.input("x", [1, 3, 8, 8])
        let wide: Set<Int> = [0, 1]
        var w1: [Float] = []
        for oc in 0..<8 { for _ in 0..<27 { w1.append((rng.uniform() - 0.5) * (wide.contains(oc) ? 4.8 : 0.3)) } }
        b.initializer("w1", [8, 3, 3, 3], w1)
        b.initializer("b1", [8], (0..<8).map { Float($0 % 3) * 0.05 })
        b.node("Conv", ["x", "w1", "b1"], ["c1"], [attr("kernel_shape", ints: [3, 3]), attr("pads", ints: [1, 1, 1, 1])])
        if activation == "Clip" {
            b.initializer("lo", [], [-1]); b.initializer("hi", [], [1])
            b.node("Clip", ["c1", "lo", "hi"], ["r1"])
        } else {
            b.node(activation, ["c1"], ["r1"])
        }
        var dw: [Float] = []
        for c in 0..<8 { for _ in 0..<9 { dw.append((rng.uniform() - 0.2) * (wide.contains(c) ? 0.25 : 4)) } }
        b.initializer("dw", [8, 1, 3, 3], dw)
        b.initializer("db", [8], [Float](repeating: 0.05, count: 8))
        b.node("Conv", ["r1", "dw", "db"], ["d1"], [attr("kernel_shape", ints: [3, 3]), attr("pads", ints: [1, 1, 1, 1]), attr("group", int: 8)])
        b.node("GlobalAveragePool", ["d1"], ["g"])
        b.node("Flatten", ["g"], ["f"], [attr("axis", int: 1)])
        b.random("wf", [10, 8]); b.random("bf", [10])
        b.node("Gemm", ["f", "wf", "bf"], ["out"], [attr("transB", int: 1)])
        b.output("out")
        return b
    }

    func quantize(_ builder: ONNXBuilder, depthwiseGroups: Int, biasCorrection: Bool = true) throws -> QuantizeResult {
        let dir = TempDir()
        let onnx = dir.file("model.onnx"), calib = dir.file("calib.idx")
        builder.write(onnx)
        try Data(idxImages(count: 48, h: 8, w: 8, c: 3)).write(to: URL(fileURLWithPath: calib))
        var options = QuantizeOptions(method: .mse, count: 48, sqnrCount: 48).input(normalisation(builder))
        options.depthwiseGroups = depthwiseGroups
        options.biasCorrection = biasCorrection
        return try quantizeModel(onnxPath: onnx, calibrationPath: calib, options: options)
    }

    func sqnr(_ r: QuantizeResult, _ op: String) -> Double { r.layers.first { $0.op == op }!.sqnr }

    @Test(arguments: ["Relu", "Identity"], [true, false])
    func narrowChannelsGetTheirOwnScale(activation: String, biasCorrection: Bool) throws {
        // Without bias correction too: it would absorb a wrong zero point or padding value per
        // channel as a bias error. Identity: no clamp, so the shared zero point is not -128.
        let model = Self.expandLike(activation: activation)
        let grouped = try quantize(model, depthwiseGroups: 16, biasCorrection: biasCorrection)
        let single = try quantize(model, depthwiseGroups: 1, biasCorrection: biasCorrection)
        // The blob's ops are unchanged: the scales live in the two convs' multipliers.
        #expect(grouped.layers.map(\.op) == single.layers.map(\.op))
        // Measured by the quantiser on the calibration images: a wrong scale per channel on either
        // side of the tensor makes the depthwise output far worse, not better.
        #expect(sqnr(grouped, "DEPTHWISE_CONV") >= sqnr(single, "DEPTHWISE_CONV") + 3,
                "depthwise output \(sqnr(grouped, "DEPTHWISE_CONV")) dB with groups, \(sqnr(single, "DEPTHWISE_CONV")) dB without")
        #expect(sqnr(grouped, "FULLY_CONNECTED") > sqnr(single, "FULLY_CONNECTED"))
        #expect(sqnr(single, "DEPTHWISE_CONV") < 40, "the test would not show a gain: one scale is already fine")
    }

    /// Which values are grouped: a ReLU-like clamp or none, one reader, a depthwise conv.
    @Test func candidatesAreReadOnlyByADepthwiseConvAndClampedAtZeroOrNot() throws {
        func candidates(_ b: ONNXBuilder) throws -> [GroupedReader] {
            let graph = try ONNXImporter.importGraph(Onnx_ModelProto(serializedBytes: b.bytes()), options: .none)
            return Array(ChannelGrouping().candidates(graph).values)
        }
        #expect(try candidates(Self.expandLike()) == [.depthwise])
        #expect(try candidates(Self.expandLike(activation: "Identity")) == [.depthwise])
        // Clip(-1, 1): the int8 value of -1 differs per group, and the conv has one clamp.
        #expect(try candidates(Self.expandLike(activation: "Clip")).isEmpty)
        #expect(try ChannelGrouping(depthwiseGroups: 1).candidates(ONNXImporter.importGraph(
            Onnx_ModelProto(serializedBytes: Self.expandLike().bytes()), options: .none)).isEmpty)
    }
}
