import Telemetry
import Terminal
import Themes

/// One row per axis and band: weight and mode, energy share bar, share trend. The selected row
/// (▶) is where weight keys act.
enum ScalesPanel {
    static func render(_ state: DashboardState, into canvas: inout Canvas, _ rect: Rect, theme: Theme, focused: Bool) {
        let d = state.data
        let title = PanelText.title(.scales, "Scales · weight · share · trend", theme: theme)
        let hints: [Span] = state.mode.steers && state.canControl
            ? KeyBindings.panelHints(.scales, mode: state.mode).compactMap(\.title).flatMap { [Span($0.keys, theme.style(.title)), Span(" \($0.text) ", theme.style(.dim))] }
            : [Span("read-only", theme.style(.dim))]
        let inner = drawBox(&canvas, rect, title: title, hints: hints, focused: focused, theme: theme)
        guard inner.height >= 1, inner.width >= 20 else { return }
        guard !d.rows.isEmpty else {
            canvas.put(d.header == nil ? "waiting for the run header…" : "no scale axes in this run (refinement off)",
                       x: inner.x + 1, y: inner.y, style: theme.style(.dim))
            return
        }
        let layout = Layout(d, inner: inner)
        if layout.leadingBlank && layout.extra { drawHeadings(layout, into: &canvas, theme: theme) }
        var y = inner.y + (layout.leadingBlank ? 1 : 0)
        var previousAxis = -1
        for (i, row) in d.rows.enumerated() {
            if row.axisIndex != previousAxis && previousAxis >= 0 && layout.separators { y += 1 }
            guard y < inner.maxY - (layout.footer ? Layout.footerLines : 0) else { break }
            drawRow(i, firstOfAxis: row.axisIndex != previousAxis, y: y, state, layout, into: &canvas, theme: theme)
            previousAxis = row.axisIndex
            y += 1
        }
        guard layout.footer else { return }
        drawFooter(state, inner: inner, into: &canvas, theme: theme)
    }

    /// What fits and how wide each column is.
    struct Layout {
        static let footerLines = 3
        let inner: Rect
        /// What fits, in order of value: the band rows, the footer (bounds and keys), blank lines
        /// between axes, a blank line on top.
        let footer: Bool, separators: Bool, leadingBlank: Bool
        /// Expanded (or very wide): the bounds and a weight trend as well.
        let extra: Bool
        /// Column widths (0: the column is left out).
        let axisWidth: Int, nameWidth: Int, extentWidth: Int, rangeWidth: Int
        let barWidth: Int, sparkWidth: Int, weightTrendWidth: Int

        init(_ d: RunData, inner: Rect) {
            self.inner = inner
            let axisCount = Set(d.rows.map(\.axisIndex)).count
            var room = inner.height - d.rows.count
            footer = room >= Self.footerLines
            if footer { room -= Self.footerLines }
            separators = room >= axisCount - 1
            if separators { room -= axisCount - 1 }
            leadingBlank = room >= 2
            let wide = inner.width >= 50
            axisWidth = wide ? (d.rows.map { Format.width($0.axis.rawValue) }.max() ?? 7) + 2 : 0
            nameWidth = Swift.min(7, Swift.max(5, (d.rows.map { Format.width($0.info.name) }.max() ?? 5) + 1))
            extentWidth = wide ? Swift.min(8, (d.rows.map { Format.width($0.info.extent) }.max() ?? 0) + 1) : 0
            extra = inner.width >= 90
            rangeWidth = extra ? 11 : 0
            let fixed = 2 + axisWidth + nameWidth + extentWidth + 6 + 2 + rangeWidth + 6  // weight 5 + gap; share 5 + gap
            let rest = Swift.max(4, inner.width - fixed)
            barWidth = Swift.max(3, Swift.min(10, rest * 5 / 9))
            let trendWidth = Swift.max(0, inner.width - fixed - barWidth)
            sparkWidth = extra ? trendWidth / 2 : trendWidth
            weightTrendWidth = extra ? trendWidth - sparkWidth : 0
        }
    }

    private static func drawHeadings(_ l: Layout, into canvas: inout Canvas, theme: Theme) {
        var x = l.inner.x + 2 + l.axisWidth
        for (text, w) in [("band", l.nameWidth), ("extent", l.extentWidth), ("weight", 8), ("range", l.rangeWidth),
                          ("share", l.barWidth + 5), ("share trend", l.sparkWidth), ("weight trend", l.weightTrendWidth)] {
            canvas.put(Format.pad(text, w), x: x, y: l.inner.y, style: theme.style(.dim, .underline))
            x += w
        }
    }

    /// Band row `i` at line `y`: marker, axis, band, extent, weight and mode, bounds, share bar, trends.
    private static func drawRow(_ i: Int, firstOfAxis: Bool, y: Int, _ state: DashboardState, _ l: Layout,
                                into canvas: inout Canvas, theme: Theme) {
        let d = state.data
        let row = d.rows[i]
        let inner = l.inner
        let selected = i == state.selectedRow
        let bandColor = theme.bandColor(row.band)
        var x = inner.x
        let base = CellStyle(fg: theme[.fg])
        x = canvas.put(selected ? " ▶" : "  ", x: x, y: y, style: theme.style(.title, .bold), clip: inner)
        if l.axisWidth > 0 {
            let label = firstOfAxis ? row.axis.rawValue : ""
            x = canvas.put(Format.pad(" " + label, l.axisWidth), x: x, y: y, style: theme.style(.dim), clip: inner)
        } else {
            x = canvas.put(" ", x: x, y: y, style: base, clip: inner)
        }
        x = canvas.put(Format.pad(Format.truncateMiddle(row.info.name, l.nameWidth - 1), l.nameWidth), x: x, y: y,
                       style: CellStyle(fg: bandColor, attributes: selected ? .bold : []), clip: inner)
        if l.extentWidth > 0 {
            x = canvas.put(Format.pad(row.info.extent, l.extentWidth), x: x, y: y, style: theme.style(.dim), clip: inner)
        }
        let pending = state.pendingWeights[row.target]
        let weight = pending ?? d.weight(row: i)
        let measured = d.lastStep?.axes.contains { $0.axis == row.axis } ?? true
        x = canvas.put(Format.pad(weight.map { Format.fixed($0, 2) } ?? (measured ? "–" : "off"), 5, right: true) + " ", x: x, y: y,
                       style: theme.style(weight == nil ? .dim : .fg, .bold), clip: inner)
        let mode = d.mode(of: row.axis)
        let modeText = pending != nil ? "… " : (mode == .adaptive ? "A " : (mode == .manual ? "M " : "- "))
        if d.twinWindow?.covers(row) == true {
            // A twin window is open on this band: ◐ until its verdict.
            x = canvas.put(String(modeText.prefix(1)), x: x, y: y, style: theme.style(pending != nil ? .title : .dim), clip: inner)
            x = canvas.put("◐", x: x, y: y, style: theme.style(.title, .bold), clip: inner)
        } else {
            x = canvas.put(modeText, x: x, y: y, style: theme.style(pending != nil ? .title : .dim), clip: inner)
        }
        if l.rangeWidth > 0 {
            let b = d.bounds(row: i)
            let range = "\(Format.fixed(b.floor, 2))–\(Format.fixed(b.ceiling, 2))"
            x = canvas.put(Format.pad(range, l.rangeWidth), x: x, y: y, style: theme.style(.dim), clip: inner)
        }
        let share = i < d.latestShares.count ? d.latestShares[i] : nil
        let bar = Meter.bar(share ?? 0, width: l.barWidth)
        x = canvas.put(bar.filled, x: x, y: y, style: CellStyle(fg: bandColor), clip: inner)
        x = canvas.put(bar.rest, x: x, y: y, style: theme.style(.border), clip: inner)
        x = canvas.put(Format.pad(share.map { Format.percent($0) } ?? "–", 5, right: true) + " ", x: x, y: y, style: base, clip: inner)
        if l.sparkWidth > 1 {
            let spark = d.shares[i].sparkline(xRange: state.xRange, width: l.sparkWidth - 1, minSpan: 0.1)
            x = canvas.put(spark + " ", x: x, y: y, style: CellStyle(fg: bandColor), clip: inner)
        }
        if l.weightTrendWidth > 1 {
            let spark = d.weights[i].sparkline(xRange: state.xRange, width: l.weightTrendWidth - 1, minSpan: 0.1)
            canvas.put(spark, x: x, y: y, style: theme.style(.fg), clip: inner)
        }
        if selected {
            let bg = theme[.selected_bg]
            canvas.restyle(Rect(x: inner.x, y: y, width: inner.width, height: 1)) { $0.bg = bg }
        }
    }

    /// Guard fallbacks and the legend, the selected band's weight and bounds, the keys.
    private static func drawFooter(_ state: DashboardState, inner: Rect, into canvas: inout Canvas, theme: Theme) {
        let d = state.data
        var fy = inner.maxY - Layout.footerLines
        let fallbacks = d.lastStep?.guardFallbacks ?? 0
        canvas.put([Span(" guard fallbacks: time \(fallbacks)", theme.style(fallbacks > 0 ? .zone_watch : .dim)),
                    Span(" · A adaptive · M manual · ◐ twin window open", theme.style(.dim))], x: inner.x, y: fy, maxX: inner.maxX)
        fy += 1
        if let row = state.selectedBand {
            let w = state.currentWeight(row: state.selectedRow)
            let b = d.bounds(row: state.selectedRow)
            canvas.put([Span(" ▶ \(row.label)", CellStyle(fg: theme.bandColor(row.band), attributes: .bold)),
                        Span(" \(Format.fixed(w, 2)) · range \(Format.fixed(b.floor, 2))–\(Format.fixed(b.ceiling, 2))",
                             theme.style(.dim))], x: inner.x, y: fy, maxX: inner.maxX)
        }
        fy += 1
        let keys: [Span] = state.mode.steers
            ? [Span(" ", theme.style(.dim))] + KeyBindings.panelHints(.scales, mode: state.mode).flatMap { [Span($0.hint.keys, theme.style(.title)), Span(" \($0.hint.text)  ", theme.style(.dim))] }
            : [Span(" replay: weights are read-only", theme.style(.dim))]
        canvas.put(keys, x: inner.x, y: fy, maxX: inner.maxX)
    }
}
