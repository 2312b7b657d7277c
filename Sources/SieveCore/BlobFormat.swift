/// The constants and fixed-size records of blob format version 1 (docs/FORMAT.md).
/// Each record decodes from and encodes to exactly the bytes the spec lists.
public enum BlobLayout {
    public static let magic: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) = (0x53, 0x49, 0x45, 0x56, 0x45, 0x42, 0x4C, 0x42) // "SIEVEBLB"
    public static let version: UInt32 = 1
    public static let headerSize = 64
    public static let tableEntrySize = 32
    public static let alignment = 64
    /// `bytes` rounded up to a multiple of `alignment`.
    public static func roundUp(_ bytes: Int) -> Int { (bytes + alignment - 1) / alignment * alignment }
    public static let maxSections: UInt32 = 16
    public static let modelRecordSize = 96
    public static let tensorRecordSize = 32
    public static let opRecordSize = 128
    public static let headRecordSize = 32
    public static let noTensor: UInt32 = 0xFFFF_FFFF
}

public enum SectionKind: UInt32, CaseIterable {
    case model = 1, tensors, ops, heads, labels, data, provenance

    public var name: StaticString {
        switch self {
        case .model: return "MODEL"
        case .tensors: return "TENSORS"
        case .ops: return "OPS"
        case .heads: return "HEADS"
        case .labels: return "LABELS"
        case .data: return "DATA"
        case .provenance: return "PROVENANCE"
        }
    }
}

public enum OpKind: UInt32, CaseIterable {
    case conv = 1, depthwiseConv, fullyConnected, maxPool, averagePool, globalAveragePool, add, concat, mul, lut, gather

    public var name: StaticString {
        switch self {
        case .conv: return "CONV"
        case .depthwiseConv: return "DEPTHWISE_CONV"
        case .fullyConnected: return "FULLY_CONNECTED"
        case .maxPool: return "MAX_POOL"
        case .averagePool: return "AVERAGE_POOL"
        case .globalAveragePool: return "GLOBAL_AVERAGE_POOL"
        case .add: return "ADD"
        case .concat: return "CONCAT"
        case .mul: return "MUL"
        case .lut: return "LUT"
        case .gather: return "GATHER"
        }
    }

    /// Ops whose weights, bias and per-channel requantisation come from DATA.
    public var hasWeights: Bool { self == .conv || self == .depthwiseConv || self == .fullyConnected }
    /// Ops that read a kernel window.
    public var isWindowed: Bool { self == .conv || self == .depthwiseConv || self == .maxPool || self == .averagePool }
}

public enum HeadKind: UInt32 {
    case exclusion = 1, confidence = 2

    public var name: StaticString { self == .exclusion ? "exclusion" : "confidence" }
}

/// A byte range inside the DATA section.
public struct DataRef: Equatable {
    public var offset: UInt32
    public var size: UInt32
    public init(offset: UInt32 = 0, size: UInt32 = 0) { self.offset = offset; self.size = size }
}

public struct ModelRecord: Equatable {
    public var tensorCount: UInt32 = 0
    public var opCount: UInt32 = 0
    public var headCount: UInt32 = 0
    public var classCount: UInt32 = 0
    public var inputTensor: UInt32 = 0
    public var outputTensor: UInt32 = 0
    public var inputChannels: UInt32 = 0
    public var mean: (Float, Float, Float, Float) = (0, 0, 0, 0)
    public var std: (Float, Float, Float, Float) = (1, 1, 1, 1)
    public var pixelScale: Float = 1.0 / 255.0

    public init() {}

    public static func == (a: ModelRecord, b: ModelRecord) -> Bool {
        a.tensorCount == b.tensorCount && a.opCount == b.opCount && a.headCount == b.headCount
            && a.classCount == b.classCount && a.inputTensor == b.inputTensor && a.outputTensor == b.outputTensor
            && a.inputChannels == b.inputChannels && a.mean == b.mean && a.std == b.std && a.pixelScale == b.pixelScale
    }

    public func mean(_ c: Int) -> Float { [mean.0, mean.1, mean.2, mean.3][c] }
    public func std(_ c: Int) -> Float { [std.0, std.1, std.2, std.3][c] }

    public init(_ r: ByteReader) {
        tensorCount = r.u32(0); opCount = r.u32(4); headCount = r.u32(8); classCount = r.u32(12)
        inputTensor = r.u32(16); outputTensor = r.u32(20); inputChannels = r.u32(24)
        mean = (r.f32(32), r.f32(36), r.f32(40), r.f32(44))
        std = (r.f32(48), r.f32(52), r.f32(56), r.f32(60))
        pixelScale = r.f32(64)
    }

    public func encode(into w: inout ByteWriter) {
        w.u32(tensorCount); w.u32(opCount); w.u32(headCount); w.u32(classCount)
        w.u32(inputTensor); w.u32(outputTensor); w.u32(inputChannels); w.u32(0)
        w.f32(mean.0); w.f32(mean.1); w.f32(mean.2); w.f32(mean.3)
        w.f32(std.0); w.f32(std.1); w.f32(std.2); w.f32(std.3)
        w.f32(pixelScale)
        w.zeros(28)
    }
}

public struct TensorRecord: Equatable {
    public var n: UInt32 = 1
    public var h: UInt32 = 1
    public var w: UInt32 = 1
    public var c: UInt32 = 1
    public var scale: Float = 1
    public var zeroPoint: Int32 = 0

    public init(h: UInt32, w: UInt32, c: UInt32, scale: Float, zeroPoint: Int32) {
        self.h = h; self.w = w; self.c = c; self.scale = scale; self.zeroPoint = zeroPoint
    }

    public init(_ r: ByteReader) {
        n = r.u32(0); h = r.u32(4); w = r.u32(8); c = r.u32(12); scale = r.f32(16); zeroPoint = r.i32(20)
    }

    public func encode(into wr: inout ByteWriter) {
        wr.u32(n); wr.u32(h); wr.u32(w); wr.u32(c); wr.f32(scale); wr.i32(zeroPoint); wr.u32(0); wr.u32(0)
    }

    /// Element (= byte) count; valid once load has checked the dimensions.
    public var elementCount: Int { Int(h) * Int(w) * Int(c) }
}

public struct OpRecord: Equatable {
    public var kind: UInt32 = 0
    public var input0: UInt32 = 0
    public var input1: UInt32 = BlobLayout.noTensor
    public var output: UInt32 = 0
    public var kernelH: UInt32 = 0
    public var kernelW: UInt32 = 0
    public var strideH: UInt32 = 0
    public var strideW: UInt32 = 0
    public var padTop: UInt32 = 0
    public var padLeft: UInt32 = 0
    public var padBottom: UInt32 = 0
    public var padRight: UInt32 = 0
    public var groups: UInt32 = 0
    public var actMin: Int32 = -128
    public var actMax: Int32 = 127
    public var weights = DataRef()
    public var bias = DataRef()
    public var multipliers = DataRef()
    public var shifts = DataRef()
    public var leftShift: Int32 = 0
    /// CONCAT's third and fourth inputs (params[0] and params[1]); 0xFFFFFFFF when absent, and on every other kind.
    public var input2: UInt32 = BlobLayout.noTensor
    public var input3: UInt32 = BlobLayout.noTensor

    public init(kind: OpKind) { self.kind = kind.rawValue }

    /// Every tensor the op reads, in order (input0 first).
    public var inputs: [UInt32] { [input0, input1, input2, input3].filter { $0 != BlobLayout.noTensor } }

    public init(_ r: ByteReader) {
        kind = r.u32(0); input0 = r.u32(4); input1 = r.u32(8); output = r.u32(12)
        kernelH = r.u32(16); kernelW = r.u32(20); strideH = r.u32(24); strideW = r.u32(28)
        padTop = r.u32(32); padLeft = r.u32(36); padBottom = r.u32(40); padRight = r.u32(44)
        groups = r.u32(48); actMin = r.i32(52); actMax = r.i32(56)
        weights = DataRef(offset: r.u32(64), size: r.u32(68))
        bias = DataRef(offset: r.u32(72), size: r.u32(76))
        multipliers = DataRef(offset: r.u32(80), size: r.u32(84))
        shifts = DataRef(offset: r.u32(88), size: r.u32(92))
        if kind == OpKind.concat.rawValue {
            input2 = r.u32(96); input3 = r.u32(100)
        } else {
            leftShift = r.i32(96)
        }
    }

    public func encode(into w: inout ByteWriter) {
        w.u32(kind); w.u32(input0); w.u32(input1); w.u32(output)
        w.u32(kernelH); w.u32(kernelW); w.u32(strideH); w.u32(strideW)
        w.u32(padTop); w.u32(padLeft); w.u32(padBottom); w.u32(padRight)
        w.u32(groups); w.i32(actMin); w.i32(actMax); w.u32(0)
        for ref in [weights, bias, multipliers, shifts] { w.u32(ref.offset); w.u32(ref.size) }
        if kind == OpKind.concat.rawValue {
            w.u32(input2); w.u32(input3)
            w.zeros(24)
        } else {
            w.i32(leftShift)
            w.zeros(28)
        }
    }

    public var opKind: OpKind? { OpKind(rawValue: kind) }
}

public struct HeadRecord: Equatable {
    public var kind: UInt32 = HeadKind.exclusion.rawValue
    public var tapTensor: UInt32 = 0
    public var logitsTensor: UInt32 = 0
    public var firstOp: UInt32 = 0
    public var opCount: UInt32 = 0
    /// Exclusion: beta; confidence: the softmax probability to exit on. 0 = the head is off.
    public var threshold: Float = 0
    /// Exclusion heads only: also exit when the softmax over the surviving classes' logits
    /// tops this probability (0 = off). Sieve's combined rule; see docs/EARLY-EXIT.md.
    public var exitConfidence: Float = 0

    public init(kind: HeadKind, tapTensor: UInt32, logitsTensor: UInt32, firstOp: UInt32, opCount: UInt32,
                threshold: Float = 0, exitConfidence: Float = 0) {
        self.kind = kind.rawValue; self.tapTensor = tapTensor; self.logitsTensor = logitsTensor
        self.firstOp = firstOp; self.opCount = opCount; self.threshold = threshold; self.exitConfidence = exitConfidence
    }

    public init(_ r: ByteReader) {
        kind = r.u32(0); tapTensor = r.u32(4); logitsTensor = r.u32(8); firstOp = r.u32(12); opCount = r.u32(16)
        threshold = r.f32(20); exitConfidence = r.f32(24)
    }

    public func encode(into w: inout ByteWriter) {
        w.u32(kind); w.u32(tapTensor); w.u32(logitsTensor); w.u32(firstOp); w.u32(opCount); w.f32(threshold)
        w.f32(exitConfidence); w.u32(0)
    }

    public var headKind: HeadKind? { HeadKind(rawValue: kind) }
}
