import SieveCore

/// Which exit rule a setting uses (docs/EARLY-EXIT.md).
public enum ExitRuleChoice: String, CaseIterable {
    /// The paper's class exclusion: sigmoid scores, keep p_c > beta * max p, exit on one survivor.
    case exclusion
    /// The confidence baseline: softmax at each head, exit when its max tops a threshold.
    case confidence
    /// Sieve's combined rule: exclusion, plus an exit when the softmax over the survivors is confident.
    case combined
}

public enum SearchMethod: String, CaseIterable {
    /// The paper's greedy search: heads by MACs saved, each threshold stepped by 0.01 then backed off two steps.
    case paper
    /// Coordinate descent: each threshold in turn set to the grid value with the fewest mean MACs at the target accuracy.
    case coordinate
    /// Marginal utility: from all heads off, repeatedly take the threshold step that saves the most
    /// MACs per accuracy point lost, until no step stays within the budget.
    case marginal
}

/// Searches per-head thresholds that minimise mean MACs for an accuracy floor, over an `ExitSimulator`.
public struct ThresholdSearch {
    public let simulator: ExitSimulator
    public let target: Double
    /// How many standard errors of the accuracy change a setting's accuracy is discounted by
    /// before it is held against the target (0: the raw accuracy on the tuning images).
    public let safety: Double
    public private(set) var evaluations = 0

    public init(simulator: ExitSimulator, target: Double, safety: Double = 0) {
        self.simulator = simulator
        self.target = target
        self.safety = safety
    }

    /// The accuracy a setting is judged by: its accuracy on the tuning images less `safety` standard
    /// errors of its change from the no-exit network. The change is the difference of two paired
    /// proportions; only images whose correctness changes (lost + gained) carry its variance
    /// (McNemar), so the standard error is sqrt(lost + gained) / count, in points here.
    public func judged(_ o: ExitSimulator.Outcome) -> Double {
        o.accuracy - safety * 100 * Double(o.lost + o.gained).squareRoot() / Double(o.count)
    }

    func meets(_ o: ExitSimulator.Outcome) -> Bool { judged(o) >= target }

    /// The blob's heads with every threshold off and kinds set for `rule`.
    public func base(_ rule: ExitRuleChoice) -> [HeadRecord] {
        simulator.heads.map { head in
            var h = head
            h.kind = (rule == .confidence ? HeadKind.confidence : HeadKind.exclusion).rawValue
            h.threshold = 0
            h.exitConfidence = 0
            return h
        }
    }

    /// No-exit accuracy: the reference the budget is measured from.
    public func referenceAccuracy() -> Double { simulator.evaluate(base(.exclusion)).accuracy }

    public mutating func search(_ rule: ExitRuleChoice, _ method: SearchMethod) -> [HeadRecord] {
        switch method {
        case .paper: paper(rule)
        case .coordinate: coordinate(rule)
        case .marginal: marginal(rule)
        }
    }

    mutating func evaluate(_ s: [HeadRecord]) -> ExitSimulator.Outcome {
        evaluations += 1
        return simulator.evaluate(s)
    }

    /// PAPER.md, "Choosing beta": heads in order of the MACs their exit saves (the earliest first);
    /// exclusion: beta rises from 0.01 by 0.01 while accuracy >= target, then backs off two steps;
    /// confidence: the threshold falls from 1.0 by 0.01 likewise. Clamped to [0.01, 0.99].
    /// The combined rule has no paper search: it runs the exclusion search.
    mutating func paper(_ rule: ExitRuleChoice) -> [HeadRecord] {
        var setting = base(rule)
        let order = setting.indices.sorted { simulator.backboneBefore[$0] < simulator.backboneBefore[$1] }
        for h in order {
            if rule == .confidence {
                var step = 100
                while step > 1 {
                    setting[h].threshold = Float(step - 1) / 100
                    if !meets(evaluate(setting)) { break }
                    step -= 1
                }
                setting[h].threshold = Float(min(99, max(1, step + 1))) / 100
            } else {
                var step = 1
                while step <= 99 {
                    setting[h].threshold = Float(step) / 100
                    if !meets(evaluate(setting)) { break }
                    step += 1
                }
                setting[h].threshold = Float(min(99, max(1, step - 2))) / 100
            }
        }
        return setting
    }

    static let betaGrid: [Float] = (1...99).map { Float($0) / 100 }
    static let confidenceGrid: [Float] = (10...19).map { Float($0) / 20 } + [0.96, 0.97, 0.98, 0.99, 0.995, 0.999]

    /// Coordinate descent: each parameter in turn takes the grid value (or off) with the fewest
    /// mean MACs among settings at or above the target accuracy; rounds repeat until nothing
    /// changes. It starts from "all heads off"; the combined rule, whose two thresholds per head
    /// trap a single descent, also starts from the exclusion and the confidence optima (the latter
    /// of both searches, as beta 0.01 plus their thresholds as exit confidence) and keeps the best.
    mutating func coordinate(_ rule: ExitRuleChoice) -> [HeadRecord] {
        guard rule == .combined else { return coordinate(rule, from: base(rule)) }
        var starts = [base(rule), coordinate(.exclusion, from: base(.exclusion))]
        for confidence in [coordinate(.confidence, from: base(.confidence)), paper(.confidence)] {
            var start = base(.combined)
            for (h, head) in confidence.enumerated() where head.threshold > 0 {
                start[h].threshold = 0.01
                start[h].exitConfidence = head.threshold
            }
            starts.append(start)
        }
        var best: (setting: [HeadRecord], outcome: ExitSimulator.Outcome)? = nil
        for start in starts {
            let setting = coordinate(.combined, from: start)
            let o = evaluate(setting)
            if meets(o), best.map({ o.macs < $0.outcome.macs }) ?? true { best = (setting, o) }
        }
        return best?.setting ?? base(rule)
    }

    mutating func coordinate(_ rule: ExitRuleChoice, from start: [HeadRecord]) -> [HeadRecord] {
        var setting = start
        var current = evaluate(setting)
        // Parameters: (head, which) with which 0 = threshold, 1 = exit confidence (combined rule only).
        var parameters: [(Int, Int)] = setting.indices.map { ($0, 0) }
        if rule == .combined { parameters += setting.indices.map { ($0, 1) } }
        for _ in 0..<6 {
            var changed = false
            for (h, which) in parameters {
                let grid = (which == 1 || rule == .confidence) ? ThresholdSearch.confidenceGrid : ThresholdSearch.betaGrid
                var best = setting, bestOutcome = current
                for value in [0] + grid {
                    var trial = setting
                    if which == 0 { trial[h].threshold = value } else { trial[h].exitConfidence = value }
                    if which == 1 && trial[h].threshold == 0 { continue }
                    let o = evaluate(trial)
                    guard meets(o) else { continue }
                    if o.macs < bestOutcome.macs || (o.macs == bestOutcome.macs && o.correct > bestOutcome.correct) {
                        best = trial; bestOutcome = o
                    }
                }
                if best != setting { setting = best; current = bestOutcome; changed = true }
            }
            if !changed { break }
        }
        return setting
    }
}

extension ThresholdSearch {
    /// Confidence thresholds from off (index 0) towards more exits, and exclusion betas likewise.
    static let marginalConfidence: [Float] = [0, 0.99, 0.98, 0.97, 0.96, 0.95, 0.94, 0.93, 0.92, 0.91]
        + (0...20).map { Float(90 - 2 * $0) / 100 }
    static let marginalBeta: [Float] = [0] + betaGrid

    /// Marginal utility: every parameter starts off; each round tries moving each one 1 to 3 grid
    /// steps towards more exits and takes the move with the most MACs saved per accuracy point lost
    /// (judged accuracy; a loss under 0.01 points counts as 0.01) among those still meeting the
    /// target; stops when no move meets it. Small steps keep it from spending the budget on one
    /// head, the failure of the paper's greedy search (PAPER.md, issue 3). Combined rule: per head a
    /// beta and an exit confidence; a head with only the latter runs at beta 0.01.
    mutating func marginal(_ rule: ExitRuleChoice) -> [HeadRecord] {
        let heads = simulator.heads.count
        var steps = [Int](repeating: 0, count: 2 * heads)   // [0, heads): confidence; [heads, 2 heads): beta
        let movable = (0..<(2 * heads)).filter { p in
            rule == .combined || (rule == .confidence ? p < heads : p >= heads)
        }
        func setting(_ steps: [Int]) -> [HeadRecord] {
            var s = base(rule)
            for h in 0..<heads {
                let confidence = ThresholdSearch.marginalConfidence[steps[h]]
                let beta = ThresholdSearch.marginalBeta[steps[heads + h]]
                switch rule {
                case .confidence: s[h].threshold = confidence
                case .exclusion: s[h].threshold = beta
                case .combined:
                    s[h].threshold = beta > 0 ? beta : (confidence > 0 ? 0.01 : 0)
                    s[h].exitConfidence = confidence
                }
            }
            return s
        }
        var current = evaluate(setting(steps))
        while true {
            var best: (score: Double, steps: [Int], outcome: ExitSimulator.Outcome)? = nil
            for p in movable {
                let grid = p < heads ? ThresholdSearch.marginalConfidence.count : ThresholdSearch.marginalBeta.count
                for k in 1...3 where steps[p] + k < grid {
                    var trial = steps
                    trial[p] += k
                    let o = evaluate(setting(trial))
                    let saved = Double(current.macs - o.macs)
                    guard meets(o), saved > 0 else { continue }
                    let score = saved / max(judged(current) - judged(o), 0.01)
                    if best.map({ score > $0.score }) ?? true { best = (score, trial, o) }
                }
            }
            guard let move = best else { break }
            steps = move.steps
            current = move.outcome
        }
        return setting(steps)
    }

    /// Operating points of `rule` for a plot: every head at one shared threshold (the grid), and the
    /// marginal search (no safety margin) at several budgets below `reference`. Returns (mean MACs, accuracy) pairs.
    public static func sweep(_ simulator: ExitSimulator, rule: ExitRuleChoice, reference: Double,
                             budgets: [Double] = [0.25, 0.5, 1, 2]) -> [(macs: Double, accuracy: Double)] {
        var points: [(macs: Double, accuracy: Double)] = [(Double(simulator.fullMACs), reference)]
        let search = ThresholdSearch(simulator: simulator, target: 0)
        let grid = rule == .confidence ? confidenceGrid + betaGrid.filter { $0 < 0.5 } : betaGrid
        for value in grid {
            var setting = search.base(rule)
            for h in setting.indices {
                setting[h].threshold = value
                if rule == .combined { setting[h].exitConfidence = 0.99 }
            }
            let o = simulator.evaluate(setting)
            points.append((o.meanMACs, o.accuracy))
        }
        for budget in budgets {
            var s = ThresholdSearch(simulator: simulator, target: reference - budget)
            let o = simulator.evaluate(s.marginal(rule))
            points.append((o.meanMACs, o.accuracy))
        }
        return points
    }
}
