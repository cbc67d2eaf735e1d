import RunFormat
import Foundation

/// A hand-written SVG line chart: named series over a shared x axis, axes with 1-2-5 ticks
/// (`Ticks`), optional dashed vertical marks with hover titles, and a legend. Non-finite points
/// are skipped. The run export (`SVGExporter`) and the study report draw with it.
public struct SVGLineChart {
    public struct Series {
        public var name: String
        public var points: [(x: Double, y: Double)]
        /// Stroke colour; nil takes the palette's next one.
        public var color: String?
        public var strokeWidth: Double
        /// Draw a dot on every point (sparse series such as evals).
        public var dots: Bool

        public init(name: String, points: [(x: Double, y: Double)], color: String? = nil, strokeWidth: Double = 1.6,
                    dots: Bool = false) {
            self.name = name
            self.points = points
            self.color = color
            self.strokeWidth = strokeWidth
            self.dots = dots
        }
    }

    /// A dashed vertical line at `x`, with a hover title.
    public struct Mark {
        public var x: Double
        public var title: String
        public init(x: Double, title: String) {
            self.x = x
            self.title = title
        }
    }

    public var title: String
    public var xLabel: String
    public var yLabel: String
    public var series: [Series]
    public var marks: [Mark] = []
    /// The legend entry of the marks (none when nil or without marks).
    public var marksLegend: String?
    /// The x range; nil fits the data.
    public var xRange: ClosedRange<Double>?
    public var width = 720.0, height = 420.0

    public init(title: String, xLabel: String, yLabel: String, series: [Series]) {
        self.title = title
        self.xLabel = xLabel
        self.yLabel = yLabel
        self.series = series
    }

    static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
                          "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#637939"]
    static let markColor = "#f28e2b"

    static func xml(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    /// A tick label: whole numbers compact ("20k"), others in at most six decimals.
    static func label(_ v: Double) -> String {
        if v == v.rounded() && abs(v) >= 1 { return Format.compact(v) }
        let r = (v * 1e6).rounded() / 1e6
        return String(format: "%g", r == 0 ? 0 : r)   // a tick at −1e-17 is "0", not "-0"
    }

    /// The chart as an SVG document.
    public func render() -> String {
        let left = 70.0, right = 200.0, top = 40.0, bottom = 50.0
        let plotW = width - left - right, plotH = height - top - bottom
        let finite = series.map { $0.points.filter { $0.x.isFinite && $0.y.isFinite } }
        let all = finite.flatMap { $0 }
        var x0 = xRange?.lowerBound ?? all.map(\.x).min() ?? 0, x1 = xRange?.upperBound ?? all.map(\.x).max() ?? 1
        if x1 <= x0 { x1 = x0 + 1 }
        var y0 = all.map(\.y).min() ?? 0, y1 = all.map(\.y).max() ?? 1
        if y1 - y0 < 1e-9 { y0 -= 0.5; y1 += 0.5 }
        let pad = (y1 - y0) * 0.05
        y0 -= pad; y1 += pad
        func px(_ x: Double) -> Double { left + (x - x0) / (x1 - x0) * plotW }
        func py(_ y: Double) -> Double { top + (1 - (y - y0) / (y1 - y0)) * plotH }
        func f(_ v: Double) -> String { String(format: "%.1f", v) }
        var s = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" viewBox="0 0 \(Int(width)) \(Int(height))" font-family="sans-serif" font-size="12">
        <rect width="100%" height="100%" fill="#ffffff"/>
        <text x="\(f(left))" y="24" font-size="15">\(Self.xml(title))</text>

        """
        for t in Ticks.values(x0, x1) {
            s += "<line x1=\"\(f(px(t)))\" y1=\"\(f(top))\" x2=\"\(f(px(t)))\" y2=\"\(f(top + plotH))\" stroke=\"#e5e5e5\"/>"
            s += "<text x=\"\(f(px(t)))\" y=\"\(f(top + plotH + 18))\" text-anchor=\"middle\">\(Self.label(t))</text>\n"
        }
        for t in Ticks.values(y0, y1) {
            s += "<line x1=\"\(f(left))\" y1=\"\(f(py(t)))\" x2=\"\(f(left + plotW))\" y2=\"\(f(py(t)))\" stroke=\"#e5e5e5\"/>"
            s += "<text x=\"\(f(left - 8))\" y=\"\(f(py(t) + 4))\" text-anchor=\"end\">\(Self.label(t))</text>\n"
        }
        s += "<rect x=\"\(f(left))\" y=\"\(f(top))\" width=\"\(f(plotW))\" height=\"\(f(plotH))\" fill=\"none\" stroke=\"#444\"/>\n"
        s += "<text x=\"\(f(left + plotW / 2))\" y=\"\(f(height - 12))\" text-anchor=\"middle\">\(Self.xml(xLabel))</text>\n"
        s += "<text transform=\"translate(18 \(f(top + plotH / 2))) rotate(-90)\" text-anchor=\"middle\">\(Self.xml(yLabel))</text>\n"
        for m in marks where m.x.isFinite {
            let x = f(px(m.x))
            s += "<line x1=\"\(x)\" y1=\"\(f(top))\" x2=\"\(x)\" y2=\"\(f(top + plotH))\" stroke=\"\(Self.markColor)\" stroke-dasharray=\"4 3\"><title>\(Self.xml(m.title))</title></line>\n"
        }
        var legend: [(name: String, color: String, dashed: Bool)] = []
        var nextColor = 0
        for (ser, points) in zip(series, finite) {
            let color = ser.color ?? Self.palette[nextColor % Self.palette.count]
            if ser.color == nil { nextColor += 1 }
            if !points.isEmpty {
                s += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"\(ser.strokeWidth)\" points=\""
                    + points.map { "\(f(px($0.x))),\(f(py($0.y)))" }.joined(separator: " ") + "\"/>\n"
                if ser.dots {
                    for p in points { s += "<circle cx=\"\(f(px(p.x)))\" cy=\"\(f(py(p.y)))\" r=\"2.5\" fill=\"\(color)\"/>" }
                    s += "\n"
                }
            }
            legend.append((ser.name, color, false))
        }
        if let name = marksLegend, !marks.isEmpty { legend.append((name, Self.markColor, true)) }
        let lx = left + plotW + 16
        for (i, item) in legend.enumerated() {
            let y = top + 10 + Double(i) * 20
            s += "<line x1=\"\(f(lx))\" y1=\"\(f(y))\" x2=\"\(f(lx + 24))\" y2=\"\(f(y))\" stroke=\"\(item.color)\" stroke-width=\"2\"\(item.dashed ? " stroke-dasharray=\"4 3\"" : "")/>"
            s += "<text x=\"\(f(lx + 30))\" y=\"\(f(y + 4))\">\(Self.xml(item.name))</text>\n"
        }
        s += "</svg>\n"
        return s
    }
}
