import Foundation

/// The elementwise functions a LUT op stands for (docs/FORMAT.md, LUT), their float form for the
/// float executor, and the 256-entry int8 table the blob carries.
enum Activation: Equatable {
    case sigmoid
    /// max(0, min(1, alpha x + beta)).
    case hardSigmoid(alpha: Float, beta: Float)
    /// x * hardSigmoid(x) (ONNX HardSwish: alpha 1/6, beta 1/2).
    case hardSwish(alpha: Float, beta: Float)
    /// x * sigmoid(x), the exporters' Sigmoid + Mul.
    case silu
    /// A standalone ReLU/Clip that no producer could absorb.
    case clamp(min: Float, max: Float)
    /// x for x >= 0, else alpha x (LeakyRelu; PRelu with one slope).
    case leakyRelu(alpha: Float)
    /// x for x > 0, else alpha (e^x - 1).
    case elu(alpha: Float)
    /// gamma * elu(alpha).
    case selu(alpha: Float, gamma: Float)
    /// max(0, x) + min(0, alpha (e^(x / alpha) - 1)).
    case celu(alpha: Float)
    case tanh
    /// x Phi(x), Phi the normal CDF (erf form), or its tanh approximation.
    case gelu(tanhApproximation: Bool)
    /// ln(1 + e^(beta x)) / beta, or x where beta x is above the threshold (PyTorch's Softplus).
    case softplus(beta: Float, threshold: Float)
    /// x tanh(softplus(x)).
    case mish

    var name: String {
        switch self {
        case .sigmoid: return "sigmoid"
        case .hardSigmoid: return "hard-sigmoid"
        case .hardSwish: return "hard-swish"
        case .silu: return "silu"
        case .clamp: return "clamp"
        case .leakyRelu: return "leaky-relu"
        case .elu: return "elu"
        case .selu: return "selu"
        case .celu: return "celu"
        case .tanh: return "tanh"
        case let .gelu(approximate): return approximate ? "gelu-tanh" : "gelu"
        case .softplus: return "softplus"
        case .mish: return "mish"
        }
    }

    func apply(_ x: Double) -> Double {
        switch self {
        case .sigmoid: return 1 / (1 + Foundation.exp(-x))
        case let .hardSigmoid(alpha, beta): return max(0, min(1, Double(alpha) * x + Double(beta)))
        case let .hardSwish(alpha, beta): return x * max(0, min(1, Double(alpha) * x + Double(beta)))
        case .silu: return x / (1 + Foundation.exp(-x))
        case let .clamp(lo, hi): return max(Double(lo), min(Double(hi), x))
        case let .leakyRelu(alpha): return x >= 0 ? x : Double(alpha) * x
        case let .elu(alpha): return x > 0 ? x : Double(alpha) * Foundation.expm1(x)
        case let .selu(alpha, gamma): return Double(gamma) * (x > 0 ? x : Double(alpha) * Foundation.expm1(x))
        case let .celu(alpha): return max(0, x) + min(0, Double(alpha) * Foundation.expm1(x / Double(alpha)))
        case .tanh: return Foundation.tanh(x)
        case .gelu(false): return 0.5 * x * (1 + Foundation.erf(x / 2.0.squareRoot()))
        case .gelu(true): return 0.5 * x * (1 + Foundation.tanh((2 / Double.pi).squareRoot() * (x + 0.044715 * x * x * x)))
        case let .softplus(beta, threshold):
            let scaled = Double(beta) * x
            return scaled > Double(threshold) ? x : Activation.softplus(scaled) / Double(beta)
        case .mish: return x * Foundation.tanh(Activation.softplus(x))
        }
    }

    /// ln(1 + e^x) without overflow for large x.
    private static func softplus(_ x: Double) -> Double { x > 30 ? x : Foundation.log1p(Foundation.exp(x)) }

    func apply(_ x: Float) -> Float { Float(apply(Double(x))) }

    /// Functions into [0, 1] get exactly that range (scale 1/255, zero point -128), whatever the calibration saw.
    var fixedQParams: QParams? {
        switch self {
        case .sigmoid, .hardSigmoid: return QParams(scale: Float(1.0 / 255.0), zeroPoint: -128)
        default: return nil
        }
    }

    /// T[q + 128] = clamp(round_half_away(f(s_in (q - zp_in)) / s_out) + zp_out, -128, 127), in double.
    func table(input: QParams, output: QParams) -> [Int8] {
        (-128...127).map { q in
            let y = apply(Double(input.scale) * Double(q - Int(input.zeroPoint)))
            return requantizedByte(y, output)
        }
    }
}

/// round_half_away(y / scale) + zero point, clamped to int8 (docs/FORMAT.md, CONCAT and LUT tables).
func requantizedByte(_ y: Double, _ q: QParams) -> Int8 {
    let v = (y / Double(q.scale)).rounded(.toNearestOrAwayFromZero) + Double(q.zeroPoint)
    return Int8(max(-128, min(127, v.isNaN ? 0 : v)))
}

/// The CONCAT table of one input: its values requantised to the output's quantisation.
func concatTable(input: QParams, output: QParams) -> [Int8] {
    (-128...127).map { q in requantizedByte(Double(input.scale) * Double(q - Int(input.zeroPoint)), output) }
}

/// Concatenation along C in NCHW: each input's planes one after the other.
func concatFloat(_ inputs: [(UnsafePointer<Float>, Int)], _ y: UnsafeMutablePointer<Float>) {
    var at = 0
    for (x, count) in inputs {
        (y + at).update(from: x, count: count)
        at += count
    }
}

/// y = x0 * x1, x1 either x0's shape or one value per channel (Cx1x1), NCHW.
func mulFloat(_ x0: UnsafePointer<Float>, _ x1: UnsafePointer<Float>, _ s1: Shape, _ y: UnsafeMutablePointer<Float>, _ outS: Shape) {
    if s1.count == outS.count {
        for i in 0..<outS.count { y[i] = x0[i] * x1[i] }
        return
    }
    let plane = outS.h * outS.w
    for c in 0..<outS.c {
        let v = x1[c]
        for p in 0..<plane { y[c * plane + p] = x0[c * plane + p] * v }
    }
}
