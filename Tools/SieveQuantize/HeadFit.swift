import COpenBLAS
import Foundation

/// A linear exit head, logits = W x + b, over a tap's pooled features.
struct LinearHead {
    /// `[classes][features]`, row-major (ONNX Gemm with transB = 1).
    var weights: [Float]
    var bias: [Float]
    let classes: Int, features: Int

    func logits(_ x: ArraySlice<Float>) -> [Float] {
        (0..<classes).map { k in
            var acc = Double(bias[k])
            for (j, v) in x.enumerated() { acc += Double(weights[k * features + j]) * Double(v) }
            return Float(acc)
        }
    }
}

/// Fits a linear head on a frozen network's pooled features: the paper's exclusion objective
/// (per-class sigmoid BCE, positives weighted 4(K-1)) or confidence (softmax cross-entropy), plus
/// a small L2 on the weights. Both are convex in (W, b), so full-batch L-BFGS on the standardised
/// features finds the optimum in a few hundred steps; the standardisation is folded back at the end.
struct HeadFitter {
    let kind: HeadKindName
    let classes: Int
    var l2: Float = 1e-4
    var maxIterations = 300

    struct Result {
        var head: LinearHead
        var trainAccuracy: Double
        var iterations: Int
        var loss: Double
    }

    /// `features`: `count` rows of `width` floats. `labels`: one class per row, each below `classes`.
    /// `soft`: optionally, per row a probability for each class (`count` x `classes`), which the
    /// confidence objective's cross-entropy then takes as its target in place of the label.
    func fit(features: [Float], labels: [Int], soft: [Float]? = nil, count n: Int, width d: Int) -> Result {
        precondition(features.count == n * d && labels.count == n && n > 0)
        precondition(soft == nil || (soft!.count == n * classes && kind == .confidence))
        // Standardise each feature: the problem is far better conditioned, and L2 treats features alike.
        var mean = [Double](repeating: 0, count: d), sd = [Double](repeating: 0, count: d)
        for i in 0..<n { for j in 0..<d { mean[j] += Double(features[i * d + j]) } }
        for j in 0..<d { mean[j] /= Double(n) }
        for i in 0..<n { for j in 0..<d { let e = Double(features[i * d + j]) - mean[j]; sd[j] += e * e } }
        for j in 0..<d { sd[j] = (sd[j] / Double(n)).squareRoot(); if sd[j] < 1e-6 { sd[j] = 1 } } // constant feature (a dead channel)
        var z = [Float](repeating: 0, count: n * d)
        for i in 0..<n { for j in 0..<d { z[i * d + j] = Float((Double(features[i * d + j]) - mean[j]) / sd[j]) } }

        let objective = Objective(z: z, labels: labels, soft: soft, n: n, d: d, k: classes, kind: kind, l2: l2)
        var theta = [Float](repeating: 0, count: classes * d + classes)
        let iterations = LBFGS(maxIterations: maxIterations).minimise(&theta) { objective.lossAndGradient($0) }
        let loss = objective.lossAndGradient(theta).loss

        // Fold the standardisation back: W' = W / sd, b' = b - W' mean.
        var weights = [Float](repeating: 0, count: classes * d), bias = [Float](repeating: 0, count: classes)
        for k in 0..<classes {
            var shift = 0.0
            for j in 0..<d {
                let w = Double(theta[k * d + j]) / sd[j]
                weights[k * d + j] = Float(w)
                shift += w * mean[j]
            }
            bias[k] = Float(Double(theta[classes * d + k]) - shift)
        }
        let accuracy = objective.accuracy(theta)
        return Result(head: LinearHead(weights: weights, bias: bias, classes: classes, features: d),
                      trainAccuracy: accuracy, iterations: iterations, loss: loss)
    }
}

/// The mean loss over the rows and its gradient in theta = [W (k x d), b (k)].
private struct Objective {
    let z: [Float]
    let labels: [Int]
    let soft: [Float]?
    let n: Int, d: Int, k: Int
    let kind: HeadKindName
    let l2: Float

    func logits(_ theta: [Float]) -> [Float] {
        var out = [Float](repeating: 0, count: n * k)
        for i in 0..<n { for c in 0..<k { out[i * k + c] = theta[k * d + c] } }
        z.withUnsafeBufferPointer { zp in theta.withUnsafeBufferPointer { tp in out.withUnsafeMutableBufferPointer { op in
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(n), Int32(k), Int32(d), 1,
                        zp.baseAddress!, Int32(d), tp.baseAddress!, Int32(d), 1, op.baseAddress!, Int32(k))
        } } }
        return out
    }

    func accuracy(_ theta: [Float]) -> Double {
        let out = logits(theta)
        var right = 0
        for i in 0..<n {
            var best = 0
            for c in 1..<k where out[i * k + c] > out[i * k + best] { best = c }
            if best == labels[i] { right += 1 }
        }
        return Double(right) / Double(n)
    }

    func lossAndGradient(_ theta: [Float]) -> (loss: Double, gradient: [Float]) {
        var g = logits(theta) // becomes d loss / d logits
        var loss = 0.0
        let scale = 1 / Float(n)
        let posWeight = Float(4 * (k - 1)) // the paper's pos_weight
        for i in 0..<n {
            let row = i * k, y = labels[i]
            switch kind {
            case .confidence:
                var top = -Float.infinity
                for c in 0..<k { top = max(top, g[row + c]) }
                var sum: Float = 0
                for c in 0..<k { sum += expf(g[row + c] - top) }
                if let p = soft {
                    for c in 0..<k { loss += Double(p[row + c] * (logf(sum) + top - g[row + c])) }
                    for c in 0..<k { g[row + c] = (expf(g[row + c] - top) / sum - p[row + c]) * scale }
                } else {
                    loss += Double(logf(sum) + top - g[row + y])
                    for c in 0..<k { g[row + c] = (expf(g[row + c] - top) / sum - (c == y ? 1 : 0)) * scale }
                }
            case .exclusion:
                for c in 0..<k {
                    let x = g[row + c]
                    let softplusNeg = max(-x, 0) + log1pf(expf(-abs(x))) // -log sigmoid(x)
                    let sigmoid = 1 / (1 + expf(-x))
                    if c == y {
                        loss += Double(posWeight * softplusNeg)
                        g[row + c] = posWeight * (sigmoid - 1) * scale
                    } else {
                        loss += Double(softplusNeg + x) // -log(1 - sigmoid(x))
                        g[row + c] = sigmoid * scale
                    }
                }
            }
        }
        loss /= Double(n)
        var gradient = [Float](repeating: 0, count: theta.count)
        g.withUnsafeBufferPointer { gp in z.withUnsafeBufferPointer { zp in gradient.withUnsafeMutableBufferPointer { out in
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(k), Int32(d), Int32(n), 1,
                        gp.baseAddress!, Int32(k), zp.baseAddress!, Int32(d), 0, out.baseAddress!, Int32(d))
        } } }
        for i in 0..<n { for c in 0..<k { gradient[k * d + c] += g[i * k + c] } }
        var penalty = 0.0
        for j in 0..<(k * d) {
            penalty += Double(theta[j]) * Double(theta[j])
            gradient[j] += l2 * theta[j]
        }
        return (loss + 0.5 * Double(l2) * penalty, gradient)
    }
}

/// Limited-memory BFGS with a backtracking (Armijo) line search, for smooth convex objectives.
struct LBFGS {
    var maxIterations = 300
    var memory = 10
    /// Stop when the largest gradient entry falls below this.
    var gradientTolerance: Float = 1e-5

    /// Minimises `f` from `x`, in place; returns the iterations taken.
    func minimise(_ x: inout [Float], _ f: ([Float]) -> (loss: Double, gradient: [Float])) -> Int {
        var (fx, g) = f(x)
        var s: [[Float]] = [], y: [[Float]] = [], rho: [Double] = []
        func dot(_ a: [Float], _ b: [Float]) -> Double {
            var acc = 0.0
            for i in a.indices { acc += Double(a[i]) * Double(b[i]) }
            return acc
        }
        var iteration = 0
        while iteration < maxIterations {
            iteration += 1
            if g.map({ abs($0) }).max() ?? 0 < gradientTolerance { break }
            // Two-loop recursion: direction = -H g.
            var q = g.map { Double($0) }
            var alpha = [Double](repeating: 0, count: s.count)
            for m in stride(from: s.count - 1, through: 0, by: -1) {
                var a = 0.0
                for i in q.indices { a += Double(s[m][i]) * q[i] }
                a *= rho[m]
                alpha[m] = a
                for i in q.indices { q[i] -= a * Double(y[m][i]) }
            }
            if let sl = s.last, let yl = y.last {
                let gamma = dot(sl, yl) / max(dot(yl, yl), 1e-30)
                for i in q.indices { q[i] *= gamma }
            } else {
                let norm = dot(g, g).squareRoot()
                for i in q.indices { q[i] /= max(norm, 1) } // the first step: at most unit length
            }
            for m in 0..<s.count {
                var b = 0.0
                for i in q.indices { b += Double(y[m][i]) * q[i] }
                b *= rho[m]
                for i in q.indices { q[i] += Double(s[m][i]) * (alpha[m] - b) }
            }
            var direction = q.map { Float(-$0) }
            var slope = dot(g, direction)
            if slope >= 0 { // not a descent direction (numerical trouble): fall back to steepest descent
                direction = g.map { -$0 }; slope = dot(g, direction); s = []; y = []; rho = []
            }
            var step: Float = 1
            var candidate = x, next = (loss: fx, gradient: g)
            var accepted = false
            for _ in 0..<40 {
                for i in x.indices { candidate[i] = x[i] + step * direction[i] }
                next = f(candidate)
                if next.loss <= fx + 1e-4 * Double(step) * slope { accepted = true; break }
                step *= 0.5
            }
            guard accepted else { break }
            let sNew = zip(candidate, x).map { $0 - $1 }, yNew = zip(next.gradient, g).map { $0 - $1 }
            let sy = dot(sNew, yNew)
            if sy > 1e-12 {
                s.append(sNew); y.append(yNew); rho.append(1 / sy)
                if s.count > memory { s.removeFirst(); y.removeFirst(); rho.removeFirst() }
            }
            let improvement = fx - next.loss
            x = candidate; fx = next.loss; g = next.gradient
            if improvement <= 1e-9 * max(1, abs(fx)) { break }
        }
        return iteration
    }
}
