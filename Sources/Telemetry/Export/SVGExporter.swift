import Foundation

/// Draws a run's loss curves as a standalone SVG: training loss (averaged into at most
/// `maxPoints` buckets, so a million steps draw as fast as a hundred), validation loss of each
/// domain at its eval steps, weight and mode changes marked as dashed vertical lines, axes with
/// 1-2-5 ticks and a legend.
public enum SVGExporter {
    public static let maxPoints = 2000

    /// Exports `run` to `output`. Returns the SVG text written.
    @discardableResult
    public static func export(run: String, to output: String, force: Bool = false) throws -> String {
        let reader = try RunFileReader(path: run)
        var curves = Curves()
        try reader.forEachRecord { curves.add($0) }
        let svg = render(curves, header: reader.header)
        let handle = try OutputFile.create(output, force: force)
        defer { try? handle.close() }
        handle.write(Data(svg.utf8))
        return svg
    }

    /// The data of the chart, folded from records in constant memory (for the training curve).
    public struct Curves {
        /// Training loss buckets: (mean step, mean loss), each covering `bucketWidth` steps.
        public private(set) var train: [(x: Double, y: Double)] = []
        private var bucketWidth = 1
        private var acc = (n: 0, x: 0.0, y: 0.0, start: 0)
        public private(set) var validation: [(name: String, points: [(x: Double, y: Double)])] = []
        public private(set) var marks: [(step: Int, label: String)] = []

        public init() {}

        public mutating func add(_ r: Record) {
            switch r {
            case let .step(s):
                guard s.loss.isFinite else { return }
                if acc.n > 0 && s.step >= acc.start + bucketWidth { closeBucket() }
                if acc.n == 0 { acc.start = s.step - s.step % bucketWidth }
                acc.n += 1
                acc.x += Double(s.step)
                acc.y += s.loss
            case let .eval(e):
                for d in e.domains where d.loss.isFinite {
                    if let i = validation.firstIndex(where: { $0.name == d.name }) {
                        validation[i].points.append((Double(e.step), d.loss))
                    } else {
                        validation.append((d.name, [(Double(e.step), d.loss)]))
                    }
                }
            case let .event(e):
                guard [.weight, .mode, .target].contains(e.kind) else { return }
                var label = e.axis?.rawValue ?? e.kind.rawValue
                if let v = e.newValue { label += " " + Format.weight(v) }
                if marks.count < 500 { marks.append((e.step, label)) }
            default:
                break
            }
        }

        private mutating func closeBucket() {
            train.append((acc.x / Double(acc.n), acc.y / Double(acc.n)))
            acc = (0, 0, 0, 0)
            if train.count >= SVGExporter.maxPoints {
                // Halve the resolution: merge neighbours, double the bucket width.
                var merged: [(x: Double, y: Double)] = []
                merged.reserveCapacity(train.count / 2 + 1)
                var i = 0
                while i + 1 < train.count {
                    merged.append(((train[i].x + train[i + 1].x) / 2, (train[i].y + train[i + 1].y) / 2))
                    i += 2
                }
                if i < train.count { merged.append(train[i]) }
                train = merged
                bucketWidth *= 2
            }
        }

        /// The training curve including the bucket still open.
        public var trainPoints: [(x: Double, y: Double)] {
            acc.n > 0 ? train + [(acc.x / Double(acc.n), acc.y / Double(acc.n))] : train
        }
    }

    /// Tick positions at 1, 2 or 5 × 10^k covering [lo, hi] with about `count` intervals.
    public static func ticks(_ lo: Double, _ hi: Double, count: Int = 6) -> [Double] {
        guard hi > lo, lo.isFinite, hi.isFinite else { return [lo] }
        let raw = (hi - lo) / Double(count)
        let p = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 5, 10].map { $0 * p }.first { $0 >= raw } ?? 10 * p
        var out: [Double] = []
        var k = (lo / step - 1e-9).rounded(.up)
        while k * step <= hi + step * 1e-9 {
            // Multiply (not accumulate) and round to the step's decimals: labels stay exact.
            let decimals = max(0, -Int(floor(log10(step))))
            let scale = pow(10, Double(decimals))
            out.append((k * step * scale).rounded() / scale)
            k += 1
        }
        return out
    }

    static let palette = ["#d1495b", "#00798c", "#edae49", "#66a182", "#8d96a3", "#9b5de5"]

    public static func render(_ c: Curves, header: RunHeader?) -> String {
        let width = 960.0, height = 540.0
        let left = 70.0, right = 200.0, top = 40.0, bottom = 50.0
        let plotW = width - left - right, plotH = height - top - bottom
        let train = c.trainPoints
        let all = train + c.validation.flatMap(\.points)
        let xs = all.map(\.x), ys = all.map(\.y)
        var xMin = 0.0, xMax = max(1, xs.max() ?? 1)
        if let total = header?.totalSteps, total > 0 { xMax = max(xMax, Double(total)) }
        var yMin = ys.min() ?? 0, yMax = ys.max() ?? 1
        if yMax - yMin < 1e-9 { yMin -= 0.5; yMax += 0.5 }
        let pad = (yMax - yMin) * 0.05
        yMin -= pad; yMax += pad
        xMin = 0
        func px(_ x: Double) -> Double { left + (x - xMin) / (xMax - xMin) * plotW }
        func py(_ y: Double) -> Double { top + (1 - (y - yMin) / (yMax - yMin)) * plotH }
        func f(_ v: Double) -> String { String(format: "%.1f", v) }
        func label(_ v: Double) -> String {
            if v == v.rounded() && abs(v) >= 1 { return Format.si(v).replacingOccurrences(of: ".0k", with: "k") }
            return String(format: "%g", (v * 1e6).rounded() / 1e6)
        }
        var s = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" viewBox="0 0 \(Int(width)) \(Int(height))" font-family="sans-serif" font-size="12">
        <rect width="100%" height="100%" fill="#ffffff"/>
        <text x="\(f(left))" y="24" font-size="15">\(xml(header.map { "Loss — \($0.runName) (preset \($0.preset))" } ?? "Loss"))</text>

        """
        // Grid and ticks.
        for t in ticks(xMin, xMax) {
            s += "<line x1=\"\(f(px(t)))\" y1=\"\(f(top))\" x2=\"\(f(px(t)))\" y2=\"\(f(top + plotH))\" stroke=\"#e5e5e5\"/>"
            s += "<text x=\"\(f(px(t)))\" y=\"\(f(top + plotH + 18))\" text-anchor=\"middle\">\(label(t))</text>\n"
        }
        for t in ticks(yMin, yMax) {
            s += "<line x1=\"\(f(left))\" y1=\"\(f(py(t)))\" x2=\"\(f(left + plotW))\" y2=\"\(f(py(t)))\" stroke=\"#e5e5e5\"/>"
            s += "<text x=\"\(f(left - 8))\" y=\"\(f(py(t) + 4))\" text-anchor=\"end\">\(label(t))</text>\n"
        }
        s += "<rect x=\"\(f(left))\" y=\"\(f(top))\" width=\"\(f(plotW))\" height=\"\(f(plotH))\" fill=\"none\" stroke=\"#444\"/>\n"
        s += "<text x=\"\(f(left + plotW / 2))\" y=\"\(f(height - 12))\" text-anchor=\"middle\">step</text>\n"
        s += "<text transform=\"translate(18 \(f(top + plotH / 2))) rotate(-90)\" text-anchor=\"middle\">loss (nats)</text>\n"
        // Weight-change marks.
        for m in c.marks {
            let x = f(px(Double(m.step)))
            s += "<line x1=\"\(x)\" y1=\"\(f(top))\" x2=\"\(x)\" y2=\"\(f(top + plotH))\" stroke=\"#f28e2b\" stroke-dasharray=\"4 3\"><title>step \(m.step): \(xml(m.label))</title></line>\n"
        }
        // Curves.
        var legend: [(String, String, Bool)] = []
        if !train.isEmpty {
            s += "<polyline fill=\"none\" stroke=\"#4e79a7\" stroke-width=\"1.2\" points=\"" + train.map { "\(f(px($0.x))),\(f(py($0.y)))" }.joined(separator: " ") + "\"/>\n"
            legend.append(("train", "#4e79a7", false))
        }
        for (i, v) in c.validation.enumerated() {
            let color = palette[i % palette.count]
            s += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\" points=\"" + v.points.map { "\(f(px($0.x))),\(f(py($0.y)))" }.joined(separator: " ") + "\"/>\n"
            for p in v.points { s += "<circle cx=\"\(f(px(p.x)))\" cy=\"\(f(py(p.y)))\" r=\"2.5\" fill=\"\(color)\"/>" }
            s += "\n"
            legend.append(("val " + v.name, color, false))
        }
        if !c.marks.isEmpty { legend.append(("weight change", "#f28e2b", true)) }
        // Legend.
        let lx = left + plotW + 16
        for (i, item) in legend.enumerated() {
            let y = top + 10 + Double(i) * 20
            s += "<line x1=\"\(f(lx))\" y1=\"\(f(y))\" x2=\"\(f(lx + 24))\" y2=\"\(f(y))\" stroke=\"\(item.1)\" stroke-width=\"2\"\(item.2 ? " stroke-dasharray=\"4 3\"" : "")/>"
            s += "<text x=\"\(f(lx + 30))\" y=\"\(f(y + 4))\">\(xml(item.0))</text>\n"
        }
        s += "</svg>\n"
        return s
    }

    static func xml(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
