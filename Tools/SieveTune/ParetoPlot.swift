/// Accuracy against mean MACs as an SVG line chart: one Pareto front per exit rule and a marked
/// operating point. Plain SVG 1.1 that any browser opens.
public struct ParetoPlot {
    public struct Series {
        public let name: String
        public let color: String
        /// (mean MACs, accuracy %) points; the front is drawn through the non-dominated ones.
        public let points: [(macs: Double, accuracy: Double)]
        public init(name: String, color: String, points: [(macs: Double, accuracy: Double)]) {
            self.name = name; self.color = color; self.points = points
        }
    }

    public var title: String
    public var series: [Series] = []
    public var marker: (name: String, macs: Double, accuracy: Double)?
    public var fullMACs: Double
    /// Accuracy points shown below the best one.
    public var window = 6.0

    public init(title: String, fullMACs: Double) {
        self.title = title
        self.fullMACs = fullMACs
    }

    /// The points no other point beats on both MACs (fewer) and accuracy (higher), by MACs.
    public static func front(_ points: [(macs: Double, accuracy: Double)]) -> [(macs: Double, accuracy: Double)] {
        var best: [(macs: Double, accuracy: Double)] = []
        for p in points.sorted(by: { $0.macs != $1.macs ? $0.macs < $1.macs : $0.accuracy > $1.accuracy })
        where best.last.map({ p.accuracy > $0.accuracy }) ?? true {
            best.append(p)
        }
        return best
    }

    public func svg() -> String {
        let width = 760.0, height = 480.0, left = 70.0, right = 190.0, top = 40.0, bottom = 60.0
        let all = series.flatMap(\.points) + (marker.map { [($0.macs, $0.accuracy)] } ?? [])
        let xMin = 0.0, xMax = fullMACs * 1.02
        // The interesting part is near the top: show at most `window` points below the best accuracy.
        let yMax = (all.map(\.accuracy).max() ?? 100).rounded(.up)
        var yMin = max((all.map(\.accuracy).min() ?? 0).rounded(.down), yMax - window)
        if yMax - yMin < 1 { yMin = yMax - 1 }
        let tick = [0.1, 0.2, 0.5, 1, 2, 5, 10].first { (yMax - yMin) / $0 <= 12 } ?? 10
        func x(_ v: Double) -> Double { left + (v - xMin) / (xMax - xMin) * (width - left - right) }
        func y(_ v: Double) -> Double { top + (yMax - v) / (yMax - yMin) * (height - top - bottom) }
        func f(_ v: Double) -> String { String(Double(Int(v * 10)) / 10) }
        var s = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        s += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" font-family=\"sans-serif\" font-size=\"12\">\n"
        s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        s += "<text x=\"\(f(width / 2 - 60))\" y=\"22\" font-size=\"15\" text-anchor=\"middle\">\(escape(title))</text>\n"
        // Axes, grid and ticks.
        s += "<g stroke=\"#888\" stroke-width=\"1\">\n"
        s += "<line x1=\"\(f(left))\" y1=\"\(f(height - bottom))\" x2=\"\(f(width - right))\" y2=\"\(f(height - bottom))\"/>\n"
        s += "<line x1=\"\(f(left))\" y1=\"\(f(top))\" x2=\"\(f(left))\" y2=\"\(f(height - bottom))\"/>\n</g>\n"
        for i in 0...10 {
            let v = fullMACs * Double(i) / 10
            s += "<line x1=\"\(f(x(v)))\" y1=\"\(f(top))\" x2=\"\(f(x(v)))\" y2=\"\(f(height - bottom))\" stroke=\"#eee\"/>\n"
            s += "<text x=\"\(f(x(v)))\" y=\"\(f(height - bottom + 16))\" text-anchor=\"middle\">\(i * 10)%</text>\n"
        }
        for i in 0...Int(((yMax - yMin) / tick).rounded(.down)) {
            let v = yMin + Double(i) * tick
            s += "<line x1=\"\(f(left))\" y1=\"\(f(y(v)))\" x2=\"\(f(width - right))\" y2=\"\(f(y(v)))\" stroke=\"#eee\"/>\n"
            s += "<text x=\"\(f(left - 6))\" y=\"\(f(y(v) + 4))\" text-anchor=\"end\">\(f(v))</text>\n"
        }
        s += "<text x=\"\(f((left + width - right) / 2))\" y=\"\(f(height - 18))\" text-anchor=\"middle\">mean MACs per image, % of the no-exit network (\(Int(fullMACs)) MACs)</text>\n"
        s += "<text transform=\"translate(18 \(f((top + height - bottom) / 2))) rotate(-90)\" text-anchor=\"middle\">top-1 accuracy (%)</text>\n"
        // One front per rule.
        for (i, item) in series.enumerated() {
            let front = ParetoPlot.front(item.points).filter { $0.accuracy >= yMin }
            let path = front.map { "\(f(x($0.macs))),\(f(y($0.accuracy)))" }.joined(separator: " ")
            s += "<g class=\"series\" data-rule=\"\(escape(item.name))\">\n"
            s += "<polyline points=\"\(path)\" fill=\"none\" stroke=\"\(item.color)\" stroke-width=\"2\"/>\n"
            for p in front { s += "<circle cx=\"\(f(x(p.macs)))\" cy=\"\(f(y(p.accuracy)))\" r=\"3\" fill=\"\(item.color)\"/>\n" }
            s += "</g>\n"
            let ly = top + 20 + Double(i) * 20
            s += "<line x1=\"\(f(width - right + 15))\" y1=\"\(f(ly))\" x2=\"\(f(width - right + 40))\" y2=\"\(f(ly))\" stroke=\"\(item.color)\" stroke-width=\"2\"/>\n"
            s += "<text x=\"\(f(width - right + 46))\" y=\"\(f(ly + 4))\">\(escape(item.name))</text>\n"
        }
        if let m = marker {
            s += "<g class=\"operating-point\">\n<circle cx=\"\(f(x(m.macs)))\" cy=\"\(f(y(m.accuracy)))\" r=\"7\" fill=\"none\" stroke=\"black\" stroke-width=\"2\"/>\n"
            s += "<text x=\"\(f(x(m.macs) + 10))\" y=\"\(f(y(m.accuracy) - 10))\">\(escape(m.name))</text>\n</g>\n"
        }
        s += "</svg>\n"
        return s
    }

    func escape(_ text: String) -> String {
        var out = ""
        for ch in text {
            switch ch {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            default: out.append(ch)
            }
        }
        return out
    }
}
