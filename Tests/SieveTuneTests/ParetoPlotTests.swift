import Testing
@testable import SieveTune

@Suite struct ParetoPlotTests {
    @Test func frontKeepsOnlyUndominatedPoints() {
        let points: [(macs: Double, accuracy: Double)] = [(10, 90), (5, 85), (7, 84), (20, 93), (15, 92), (12, 89)]
        let front = ParetoPlot.front(points)
        #expect(front.map(\.macs) == [5, 10, 15, 20])
        #expect(front.map(\.accuracy) == [85, 90, 92, 93])
    }

    @Test func svgEscapesText() {
        var plot = ParetoPlot(title: "a <b> & \"c\"", fullMACs: 100)
        plot.series = [.init(name: "x&y", color: "red", points: [(50, 90), (100, 91)])]
        let svg = plot.svg()
        #expect(svg.contains("a &lt;b&gt; &amp; &quot;c&quot;"))
        #expect(svg.contains("x&amp;y"))
        #expect(!svg.contains("<b>"))
    }
}
