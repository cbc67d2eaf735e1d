import Foundation
import Telemetry
import Terminal

/// A line chart of decimated series with y ticks on the left, x ticks at 1-2-5 steps below,
/// vertical markers, and the latest value of each series at the right edge.
///
/// Each series is resampled to the plot's pixel columns (2 per cell in braille, 1 in block and
/// ASCII); a column draws the span from its minimum to its maximum, so spikes stay visible, and
/// consecutive columns are joined by lines.
struct LineChart {
    struct Series {
        var data: DecimatedSeries
        var color: TerminalColor
        var label: String
        /// Whether the chart's smoothing applies (dense per-step series yes, sparse evals no).
        var smooth = true
    }

    struct Marker {
        var x: Int
        var label: String
    }

    var series: [Series]
    var xRange: ClosedRange<Int>
    var smoothing: Double
    var logY: Bool
    var style: GraphStyle
    var markers: [Marker] = []
    var markerColor: TerminalColor
    var axisStyle: CellStyle
    /// Set by render: true when log-y was asked for but the data has values ≤ 0.
    private(set) var logUnavailable = false

    /// Pixels per cell and the glyph for a set of lit pixels.
    private var resolution: (sx: Int, sy: Int) {
        switch style {
        case .braille: return (2, 4)
        case .block: return (1, 2)
        case .ascii: return (1, 3)
        }
    }

    private func glyph(_ bits: UInt8) -> Unicode.Scalar {
        switch style {
        case .braille: return Unicode.Scalar(0x2800 + UInt32(bits))!
        case .block:
            switch bits { case 1: return "▀"; case 2: return "▄"; default: return "█" }
        case .ascii:
            switch bits { case 1: return "'"; case 2: return "-"; case 4: return "."; case 5: return ":"; case 3, 6: return "+"; default: return "|" }
        }
    }

    /// Where everything goes: the value range (transformed for log-y), the ticks and their labels,
    /// and the plot's cells and pixels. Computed once per frame by `layout(_:)`.
    struct Layout {
        var rect: Rect
        var plot: Rect
        var useLog: Bool
        /// The transformed value range, padded.
        var tlo: Double
        var thi: Double
        var yTicks: [(value: Double, position: Double)]
        var labels: [String]
        var labelWidth: Int
        var rightMargin: Int
        var sx: Int
        var sy: Int
        var pixelWidth: Int { plot.width * sx }
        var pixelHeight: Int { plot.height * sy }

        func transform(_ v: Double) -> Double { useLog ? log10(v) : v }

        /// The pixel row of value `v`.
        func pixelY(_ v: Double) -> Int {
            let f = (transform(v) - tlo) / (thi - tlo)
            return Swift.max(0, Swift.min(pixelHeight - 1, Int(((1 - f) * Double(pixelHeight - 1)).rounded())))
        }
    }

    mutating func render(into canvas: inout Canvas, _ rect: Rect) {
        guard rect.width >= 12, rect.height >= 3 else { return }
        guard let range = valueRange() else {
            canvas.put("waiting for data…", x: rect.x + 2, y: rect.y + rect.height / 2, style: axisStyle)
            return
        }
        logUnavailable = logY && !(range.lo > 0)
        guard let layout = layout(rect, lo: range.lo, hi: range.hi) else { return }
        var grid = PixelGrid(width: layout.plot.width, height: layout.plot.height, sx: layout.sx, sy: layout.sy, style: style)
        let latest = plotSeries(into: &grid, layout)
        let visibleMarkers = markers.filter { xRange.contains($0.x) }
        drawMarkers(visibleMarkers, into: &canvas, grid: grid, layout)
        drawData(grid, into: &canvas, layout)
        drawYTicks(into: &canvas, layout)
        drawXTicks(into: &canvas, layout)
        drawLatest(latest, into: &canvas, layout)
    }

    /// The range of the values visible in `xRange`; nil when there are none.
    private func valueRange() -> (lo: Double, hi: Double)? {
        var lo = Double.infinity, hi = -Double.infinity
        for s in series {
            if let e = s.data.extent(in: xRange) { lo = Swift.min(lo, e.min); hi = Swift.max(hi, e.max) }
        }
        return lo <= hi ? (lo, hi) : nil
    }

    /// The layout for values in lo...hi; nil when the plot would be too narrow.
    private func layout(_ rect: Rect, lo: Double, hi: Double) -> Layout? {
        let useLog = logY && lo > 0
        func tf(_ v: Double) -> Double { useLog ? log10(v) : v }
        var tlo = tf(lo), thi = tf(hi)
        if thi - tlo < 1e-12 {
            let pad = Swift.max(Swift.abs(tlo) * 0.05, 0.05)
            tlo -= pad; thi += pad
        } else {
            let pad = (thi - tlo) * 0.04
            tlo -= pad; thi += pad
        }
        // Ticks and the left axis width.
        let plotHeight = rect.height - 1
        let yTicks = Self.ticks(lo: tlo, hi: thi, count: Swift.max(2, plotHeight / 3), log: useLog)
        let labels = yTicks.map { Self.tickLabel($0.value, ticks: yTicks, log: useLog) }
        let labelWidth = (labels.map(Format.width).max() ?? 3) + 1
        let rightMargin = rect.width >= 50 ? 7 : 0
        let plot = Rect(x: rect.x + labelWidth + 1, y: rect.y, width: rect.width - labelWidth - 1 - rightMargin, height: plotHeight)
        guard plot.width >= 4 else { return nil }
        let (sx, sy) = resolution
        return Layout(rect: rect, plot: plot, useLog: useLog, tlo: tlo, thi: thi, yTicks: yTicks, labels: labels,
                      labelWidth: labelWidth, rightMargin: rightMargin, sx: sx, sy: sy)
    }

    /// Lights the series' pixels (with smoothing, the raw envelope goes underneath, dim, so spikes
    /// stay visible); returns each series' latest value and its cell row.
    private func plotSeries(into grid: inout PixelGrid, _ l: Layout) -> [(row: Int, value: Double, color: TerminalColor)] {
        var latest: [(row: Int, value: Double, color: TerminalColor)] = []
        let pw = l.pixelWidth
        if smoothing > 0 {
            for (k, s) in series.enumerated() where s.smooth {
                for (x, c) in s.data.columns(xRange: xRange, count: pw).enumerated() {
                    guard let c else { continue }
                    grid.span(x: x, from: l.pixelY(c.max), to: l.pixelY(c.min), series: k, strong: false)
                }
            }
        }
        for (k, s) in series.enumerated() {
            let cols = s.data.columns(xRange: xRange, count: pw, smoothing: s.smooth ? smoothing : 0)
            var prev: (x: Int, y: Int)?
            var last: Double?
            for (x, c) in cols.enumerated() {
                guard let c else { continue }
                grid.span(x: x, from: l.pixelY(c.max), to: l.pixelY(c.min), series: k, strong: true)
                let y = l.pixelY(c.last)
                if let p = prev { grid.line(from: p, to: (x, y), series: k) }
                prev = (x, y)
                last = c.last
            }
            if let v = last { latest.append((l.pixelY(v) / l.sy, v, s.color)) }
        }
        return latest
    }

    /// The cell column of step `x`.
    private func cellX(_ x: Int, _ l: Layout) -> Int {
        let span = Double(Swift.max(1, xRange.upperBound - xRange.lowerBound))
        return l.plot.x + Int((Double(x - xRange.lowerBound) / span * Double(l.plot.width - 1)).rounded())
    }

    /// Markers under the data; their labels after every line so none is cut by a later marker
    /// (the newest wins a collision).
    private func drawMarkers(_ visible: [Marker], into canvas: inout Canvas, grid: PixelGrid, _ l: Layout) {
        let plot = l.plot
        let markerStyle = CellStyle(fg: markerColor)
        for m in visible {
            let cx = cellX(m.x, l)
            for row in 0..<plot.height where grid.bits[row * plot.width + (cx - plot.x)] == 0 {
                canvas.set(cx, plot.y + row, "┊", markerStyle)
            }
        }
        var labelStart = plot.maxX
        for m in visible.reversed() {
            let cx = cellX(m.x, l)
            let label = "▼ \(m.label) @\(m.x)"
            var lx = cx
            if lx + Format.width(label) > labelStart - 1 { lx = labelStart - 1 - Format.width(label) }
            if lx >= plot.x && (cx >= lx) {
                canvas.put(label, x: lx, y: plot.y, style: markerStyle)
                labelStart = lx
            }
        }
    }

    /// The lit pixels, on top of the markers.
    private func drawData(_ grid: PixelGrid, into canvas: inout Canvas, _ l: Layout) {
        let plot = l.plot
        for row in 0..<plot.height {
            for col in 0..<plot.width {
                let i = row * plot.width + col
                guard grid.bits[i] != 0 else { continue }
                let k = Int(grid.owner[i])
                canvas.set(plot.x + col, plot.y + row, glyph(grid.bits[i]),
                           CellStyle(fg: series[k].color, attributes: grid.strong[i] ? [] : .dim))
            }
        }
    }

    private func drawYTicks(into canvas: inout Canvas, _ l: Layout) {
        for (t, label) in zip(l.yTicks, l.labels) {
            let f = (t.position - l.tlo) / (l.thi - l.tlo)
            let row = l.plot.y + Int(((1 - f) * Double(l.plot.height - 1)).rounded())
            guard row >= l.plot.y && row < l.plot.maxY else { continue }
            canvas.put(Format.pad(label, l.labelWidth - 1, right: true), x: l.rect.x, y: row, style: axisStyle)
            canvas.set(l.rect.x + l.labelWidth - 1, row, "┤", axisStyle)
        }
    }

    /// X ticks at 1-2-5 steps.
    private func drawXTicks(into canvas: inout Canvas, _ l: Layout) {
        let rect = l.rect
        let span = Double(Swift.max(1, xRange.upperBound - xRange.lowerBound))
        let xRow = rect.maxY - 1
        let step = Ticks.step(atLeast: span / Double(Swift.max(1, l.plot.width / 12)))
        var tick = (Double(xRange.lowerBound) / step).rounded(.up) * step
        var freeFrom = rect.x
        while tick <= Double(xRange.upperBound) + 1e-9 {
            let cx = cellX(Int(tick), l)
            let text = tick >= 100_000 ? Format.compact(tick) : Format.grouped(Int(tick))
            let start = Swift.max(l.plot.x, cx - Format.width(text) / 2)
            if start >= freeFrom && start + Format.width(text) <= rect.maxX {
                canvas.put(text, x: start, y: xRow, style: axisStyle)
                freeFrom = start + Format.width(text) + 2
            }
            tick += step
        }
    }

    /// Latest values at the right edge, nudged apart.
    private func drawLatest(_ latest: [(row: Int, value: Double, color: TerminalColor)], into canvas: inout Canvas, _ l: Layout) {
        guard l.rightMargin > 0 else { return }
        var used = Set<Int>()
        for v in latest.sorted(by: { $0.row < $1.row }) {
            var row = v.row
            while used.contains(row) && row < l.plot.height - 1 { row += 1 }
            used.insert(row)
            canvas.put(Format.value(v.value), x: l.plot.maxX + 1, y: l.plot.y + row, style: CellStyle(fg: v.color, attributes: .bold))
        }
    }

    /// A tick label with as many decimals as the tick step needs ("4", "3.5", "0.25").
    static func tickLabel(_ v: Double, ticks: [(value: Double, position: Double)], log: Bool) -> String {
        guard ticks.count >= 2 else { return Format.value(v) }
        let step = Swift.abs(ticks[1].value - ticks[0].value)
        let evenlySpaced = zip(ticks, ticks.dropFirst()).allSatisfy { Swift.abs(($1.value - $0.value) - step) < step * 1e-6 }
        guard !log || evenlySpaced else { return Format.value(v) }
        if Swift.abs(v) >= 10_000 { return Format.compact(v) }
        let decimals = step >= 1 ? 0 : Swift.min(6, Int(ceil(-log10(step) - 1e-9)))
        return Format.fixed(v, decimals)
    }

    /// About `count` ticks over [lo, hi] (in plotted units) at 1-2-5 steps; on a log axis the
    /// ticks are 1-2-5 values of the data placed at their logarithm.
    static func ticks(lo: Double, hi: Double, count: Int, log: Bool) -> [(value: Double, position: Double)] {
        if log {
            var out: [(Double, Double)] = []
            var decade = pow(10, floor(lo))
            while log10(decade) <= hi + 1 {
                for m in [1.0, 2.0, 5.0] {
                    let v = m * decade
                    let p = log10(v)
                    if p >= lo && p <= hi { out.append((v, p)) }
                }
                decade *= 10
            }
            if out.count >= 2 && out.count <= count * 2 { return out }
            // Too few decades for 1-2-5: linear ticks on the data values, placed logarithmically.
            let vlo = pow(10, lo), vhi = pow(10, hi)
            return ticks(lo: vlo, hi: vhi, count: count, log: false).map { ($0.value, log10($0.value)) }.filter { $0.0 > 0 }
        }
        return Ticks.values(lo, hi, count: count).map { ($0, $0) }
    }
}

/// The dots of a chart: a bit mask per cell (braille 2×4, block 1×2, ASCII 1×3 pixels), which
/// series drew the cell, and whether that was its main line or only the dim raw envelope.
struct PixelGrid {
    let width: Int
    let height: Int
    let sx: Int
    let sy: Int
    let style: GraphStyle
    var bits: [UInt8]
    var owner: [Int8]
    var strong: [Bool]

    init(width: Int, height: Int, sx: Int, sy: Int, style: GraphStyle) {
        self.width = width
        self.height = height
        self.sx = sx
        self.sy = sy
        self.style = style
        bits = [UInt8](repeating: 0, count: width * height)
        owner = [Int8](repeating: -1, count: width * height)
        strong = [Bool](repeating: false, count: width * height)
    }

    private static let brailleBits: [UInt8] = [0x01, 0x02, 0x04, 0x40, 0x08, 0x10, 0x20, 0x80]

    /// Lights a vertical run of pixels in one column (a column's min…max; one pixel when y0 = y1)
    /// for series k (a strong pixel, a line's, takes the cell from a weak one, an envelope's);
    /// the arrays are borrowed once for the run (the loss chart lights about 20,000 pixels a frame).
    mutating func span(x: Int, from y0: Int, to y1: Int, series k: Int, strong isStrong: Bool) {
        guard x >= 0, x < width * sx else { return }
        let lo = Swift.max(0, Swift.min(y0, y1)), hi = Swift.min(height * sy - 1, Swift.max(y0, y1))
        guard lo <= hi else { return }
        let column = x / sx, dx = x % sx, w = width, sy = sy, braille = style == .braille, owner = Int8(k)
        Self.brailleBits.withUnsafeBufferPointer { table in
            bits.withUnsafeMutableBufferPointer { bits in
                self.owner.withUnsafeMutableBufferPointer { owners in
                    strong.withUnsafeMutableBufferPointer { strong in
                        for y in lo...hi {
                            let i = (y / sy) * w + column, dy = y % sy
                            bits[i] |= braille ? table[dx * 4 + dy] : UInt8(1 << dy)
                            if isStrong || !strong[i] { owners[i] = owner }
                            if isStrong { strong[i] = true }
                        }
                    }
                }
            }
        }
    }

    /// Bresenham between two pixels.
    mutating func line(from a: (x: Int, y: Int), to b: (x: Int, y: Int), series k: Int) {
        var x0 = a.x, y0 = a.y
        let dx = Swift.abs(b.x - x0), dy = -Swift.abs(b.y - y0)
        let stepX = x0 < b.x ? 1 : -1, stepY = y0 < b.y ? 1 : -1
        var err = dx + dy
        while true {
            span(x: x0, from: y0, to: y0, series: k, strong: true)
            if x0 == b.x && y0 == b.y { break }
            let e2 = 2 * err
            if e2 >= dy { err += dy; x0 += stepX }
            if e2 <= dx { err += dx; y0 += stepY }
        }
    }
}
