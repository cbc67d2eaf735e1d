import Refinement
import Telemetry
import Terminal
import Themes

/// Per depth group: flip-rate gauge coloured by zone, cos(g_t, g_t−1), trend; spikes below.
enum OscillationPanel {
    static func render(_ state: DashboardState, into canvas: inout Canvas, _ rect: Rect, theme: Theme, focused: Bool) {
        let d = state.data
        let narrow = rect.width - 2 < 50
        let inner = drawBox(&canvas, rect, title: PanelText.title(.oscillation, narrow ? "Oscillation · flip rate" : "Oscillation · per depth group", theme: theme),
                            focused: focused, theme: theme)
        guard inner.height >= 1, inner.width >= 30 else { return }
        guard let osc = d.lastStep?.oscillation, !osc.isEmpty else {
            canvas.put("no oscillation measured yet", x: inner.x + 1, y: inner.y, style: theme.style(.dim))
            return
        }
        let names = d.groupNames
        let extraLines = inner.height >= osc.count + 2 ? 2 : (inner.height >= osc.count + 1 ? 1 : 0)
        let spaced = inner.height >= 2 * osc.count - 1 + extraLines
        let leading = inner.height >= 2 * osc.count + extraLines + 1
        let nameWidth = Swift.max(6, (names.map(Format.width).max() ?? 5) + 1)
        let fixed = 1 + nameWidth + (narrow ? 5 : 10) + 2 + 10 + 2
        let rest = Swift.max(6, inner.width - fixed)
        let gaugeWidth = narrow ? rest : Swift.max(4, rest * 7 / 10)
        let sparkWidth = narrow ? 0 : Swift.max(0, rest - gaugeWidth)
        var y = inner.y + (spaced && leading ? 1 : 0)
        for (g, o) in osc.enumerated() {
            guard y < inner.maxY - extraLines else { break }
            let zone = theme.style(PanelText.zoneKey(o.flipRate))
            let name = g < names.count ? names[g] : "g\(g)"
            var x = canvas.put(" " + Format.pad(name, nameWidth), x: inner.x, y: y, style: theme.style(.fg))
            if !narrow { x = canvas.put("flip ", x: x, y: y, style: theme.style(.dim)) }
            x = canvas.put(Format.pad(Format.fixed(o.flipRate, 2), 5), x: x, y: y, style: CellStyle(fg: zone.fg, attributes: .bold))
            let bar = Meter.bar(o.flipRate, width: gaugeWidth)
            x = canvas.put("▕", x: x, y: y, style: theme.style(.dim))
            x = canvas.put(bar.filled, x: x, y: y, style: zone)
            x = canvas.put(bar.rest, x: x, y: y, style: theme.style(.border))
            x = canvas.put("▏ cos ", x: x, y: y, style: theme.style(.dim))
            x = canvas.put(Format.pad(Format.signed(o.gradientCosine, 2), 6), x: x, y: y, style: theme.style(.fg))
            if sparkWidth > 2, g < d.flip.count {
                canvas.put(" " + d.flip[g].sparkline(xRange: state.xRange, width: sparkWidth - 2, minSpan: 0.1),
                           x: x, y: y, style: zone)
            }
            y += spaced ? 2 : 1
        }
        if extraLines >= 1 {
            var spikes = " spikes (\(SpikeRule.shortText)): \(d.spikes)"
            if let s = d.lastSpikeStep { spikes += " · last at step \(Format.grouped(s))" }
            if let cv = d.gradNorms.coefficientOfVariation { spikes += " · grad-norm CV(100) \(Format.fixed(cv, 2))" }
            canvas.put(Format.truncateEnd(spikes, inner.width), x: inner.x, y: inner.maxY - extraLines,
                       style: theme.style(d.spikes > 0 ? .zone_watch : .dim))
        }
        if extraLines >= 2 {
            canvas.put([Span(" zones: ", theme.style(.dim)), Span("█ calm", theme.style(.zone_calm)), Span(" < 0.45 ≤ ", theme.style(.dim)),
                        Span("█ watch", theme.style(.zone_watch)), Span(" < 0.55 ≤ ", theme.style(.dim)),
                        Span("█ oscillating", theme.style(.zone_bad))], x: inner.x, y: inner.maxY - 1, maxX: inner.maxX)
        }
    }
}
