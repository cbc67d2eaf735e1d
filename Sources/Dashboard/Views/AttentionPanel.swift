import Telemetry
import Terminal
import Themes

/// Attention mass by distance band per layer (or per head, `v`), the long-range trend, and at
/// eval steps the context gain ΔL(c) and the loss by position.
enum AttentionPanel {
    static func render(_ state: DashboardState, into canvas: inout Canvas, _ rect: Rect, theme: Theme, focused: Bool) {
        let d = state.data
        let hints = [Span("v", theme.style(.title)), Span(state.perHead ? " per layer" : " per head", theme.style(.dim))]
        let inner = drawBox(&canvas, rect, title: PanelText.title(.attention, "Long-range attention · mass by distance", theme: theme),
                            hints: hints, focused: focused, theme: theme)
        guard inner.height >= 1, inner.width >= 30 else { return }
        guard let step = d.lastStep, !step.attentionMass.isEmpty else {
            canvas.put("no attention profile measured yet", x: inner.x + 1, y: inner.y, style: theme.style(.dim))
            return
        }
        var rows: [(label: String, mass: [Double], layer: Int)] = []
        if state.perHead && !step.attentionMassByHead.isEmpty {
            for (l, heads) in step.attentionMassByHead.enumerated() {
                for (h, m) in heads.enumerated() { rows.append(("L\(l)h\(h)", m, l)) }
            }
        } else {
            for (l, m) in step.attentionMass.enumerated() { rows.append(("L\(l)", m, l)) }
        }
        let bands = d.contextBands
        let bandCount = rows.first?.mass.count ?? bands.count
        let evalLines = d.lastEval == nil ? 0 : (inner.height >= rows.count + 4 ? 3 : (inner.height >= rows.count + 3 ? 2 : 0))
        let labelWidth = state.perHead ? 8 : 7
        let cellWidth = Swift.max(3, Swift.min(6, (inner.width - labelWidth - 14) / Swift.max(1, bandCount) - 1))
        let heatWidth = bandCount * (cellWidth + 1)
        let trendX = inner.x + labelWidth + heatWidth + 2
        let trendWidth = Swift.max(0, inner.maxX - trendX - 6)
        // Column heads, when there is a line to spare.
        var y = inner.y
        if inner.height - evalLines > rows.count || inner.height - evalLines >= 6 {
            var x = canvas.put(Format.pad(" layer", labelWidth), x: inner.x, y: y, style: theme.style(.dim))
            for b in 0..<bandCount {
                var text = b < bands.count ? bands[b].extent : "b\(b)"
                if Format.width(text) > cellWidth, let dash = text.firstIndex(of: "–") { text = String(text[..<dash]) + "+" }
                x = canvas.put(Format.pad(text, cellWidth + 1), x: x, y: y, style: theme.style(.dim))
            }
            if trendWidth > 4 { canvas.put("  long trend", x: trendX - 2, y: y, style: theme.style(.dim)) }
            y += 1
        }
        let room = inner.maxY - evalLines - y
        for (k, row) in rows.enumerated() {
            guard y < inner.maxY - evalLines else { break }
            if k == room - 1 && rows.count > room {
                canvas.put("   +\(rows.count - k) more (e to expand)", x: inner.x, y: y, style: theme.style(.dim))
                y += 1
                break
            }
            var x = canvas.put(Format.pad((state.perHead ? "  " : "   ") + row.label, labelWidth), x: inner.x, y: y, style: theme.style(.fg))
            for m in row.mass {
                let (glyph, color) = heatCell(m, theme: theme)
                x = canvas.put(String(repeating: glyph, count: cellWidth), x: x, y: y, style: CellStyle(fg: color))
                x = canvas.put(" ", x: x, y: y)
            }
            if trendWidth > 4 && !state.perHead || (state.perHead && row.label.hasSuffix("h0")) {
                let long = row.mass.last ?? 0
                let tx = canvas.put("  " + Format.fixed(long, 2) + " ", x: x, y: y, style: theme.style(.fg, .bold))
                if row.layer < d.longMass.count, trendWidth > 4 {
                    let spark = d.longMass[row.layer].sparkline(xRange: state.xRange, width: Swift.max(0, inner.maxX - tx - 1), minSpan: 0.05)
                    canvas.put(spark, x: tx, y: y, style: CellStyle(fg: theme.heat(0.75)))
                }
            }
            y += 1
        }
        guard evalLines > 0, let e = d.lastEval else { return }
        drawEval(e, header: d.header, lines: evalLines, inner: inner, into: &canvas, theme: theme)
    }

    /// The last eval's context gain ΔL(c) and loss by position, on the panel's bottom lines.
    private static func drawEval(_ e: EvalRecord, header: RunHeader?, lines evalLines: Int, inner: Rect,
                                 into canvas: inout Canvas, theme: Theme) {
        var ey = inner.maxY - evalLines + (evalLines == 3 ? 1 : 0)
        var gain: [Span] = [Span(" eval @\(Format.grouped(e.step)): context gain ", theme.style(.dim))]
        for g in e.contextGain {
            gain.append(Span(" ΔL(\(g.window)) ", theme.style(.dim)))
            gain.append(Span(Format.fixed(g.delta, 2), theme.style(.event_eval, .bold)))
        }
        if e.contextGain.isEmpty { gain.append(Span("not measured", theme.style(.dim))) } else { gain.append(Span(" nats", theme.style(.dim))) }
        canvas.put(gain, x: inner.x, y: ey, maxX: inner.maxX)
        ey += 1
        if !e.lossByPosition.isEmpty {
            let lo = e.lossByPosition.min() ?? 0, hi = e.lossByPosition.max() ?? 1
            let width = Swift.min(e.lossByPosition.count, Swift.max(0, inner.width - 40))
            let values = (0..<width).map { i in e.lossByPosition[i * e.lossByPosition.count / Swift.max(1, width)] as Double? }
            let spark = Meter.sparkline(values, lo: lo, hi: hi)
            let positions = contextLength(header).map { "  (0 → \($0 - 1))" } ?? "  (first → last position)"
            canvas.put([Span(" loss by position: ", theme.style(.dim)), Span(spark, theme.style(.series_val_1)),
                        Span(positions, theme.style(.dim))], x: inner.x, y: ey, maxX: inner.maxX)
        }
    }

    /// Glyph and colour for an attention mass in 0…1.
    static func heatCell(_ m: Double, theme: Theme) -> (String, TerminalColor) {
        let t = Swift.max(0, Swift.min(1, m))
        let glyph = t < 0.1 ? "░" : (t < 0.3 ? "▒" : (t < 0.55 ? "▓" : "█"))
        return (glyph, theme.heat(Swift.min(1, t * 1.6)))
    }

    /// The context length from the run's config, under the names a trainer may use.
    static func contextLength(_ header: RunHeader?) -> Int? {
        guard let config = header?.config else { return nil }
        for key in ["T", "contextLength", "context", "blockSize", "sequenceLength"] {
            if case let .number(n)? = config[key] { return Int(n) }
            if case .object? = config["model"], case let .number(n)? = config["model"]?[key] { return Int(n) }
        }
        return nil
    }
}
