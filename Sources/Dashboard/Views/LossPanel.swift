import Telemetry
import Terminal
import Themes

/// Train loss and every validation domain as line charts, weight-change markers, latest and best.
enum LossPanel {
    static func render(_ state: DashboardState, into canvas: inout Canvas, _ rect: Rect, theme: Theme, focused: Bool) {
        let d = state.data
        var title = PanelText.title(.loss, "Loss · nats", theme: theme)
        title.append(Span(" ─ ", theme.style(.border)))
        title.append(Span("train ━", theme.style(.series_train)))
        for (i, name) in d.validationNames.enumerated() {
            title.append(Span(" \(RunData.validationLabel(name)) ━", CellStyle(fg: theme.validationColor(i))))
        }
        if !d.twinLoss.isEmpty { title.append(Span(" twin ┄", theme.style(.dim))) }
        let hints = [Span("l", theme.style(.title)), Span(" log ", theme.style(.dim)), Span("s", theme.style(.title)),
                     Span(" smooth ", theme.style(.dim)), Span("z", theme.style(.title)), Span(" zoom ", theme.style(.dim)),
                     Span("g", theme.style(.title)), Span(" graph", theme.style(.dim))]
        let inner = drawBox(&canvas, rect, title: title, hints: hints, focused: focused, theme: theme)
        guard inner.height >= 2 else { return }
        let refColors = [theme[.ref_1], theme[.ref_2], theme[.ref_3]]
        let legend = ReferenceLegend.rows(state, rows: Swift.max(0, Swift.min(state.references.count, inner.height - 5)))
        // Reference runs and the twin's ghost line first, so the current run is drawn over them.
        var series = legend.flatMap { row in
            [LineChart.Series(data: row.train, color: refColors[row.index % 3], label: row.name)]
                + row.validation.map { LineChart.Series(data: $0, color: refColors[row.index % 3], label: row.name, smooth: false) }
        }
        if !d.twinLoss.isEmpty { series.append(LineChart.Series(data: d.twinLoss, color: theme[.dim], label: "twin")) }
        series.append(LineChart.Series(data: d.trainLoss, color: theme[.series_train], label: "train"))
        for (i, v) in d.validation.enumerated() {
            series.append(LineChart.Series(data: v, color: theme.validationColor(i), label: d.validationNames[i], smooth: false))
        }
        var chart = LineChart(series: series, xRange: state.xRange, smoothing: state.smoothing, logY: state.logY,
                              style: state.graphStyle,
                              markers: d.markers.map { LineChart.Marker(x: $0.step, label: $0.label) },
                              markerColor: theme[.event_weight], axisStyle: theme.style(.dim))
        let chartRect = Rect(x: inner.x, y: inner.y, width: inner.width, height: inner.height - 1 - legend.count)
        chart.render(into: &canvas, chartRect)
        for (k, row) in legend.enumerated() {
            canvas.put(ReferenceLegend.spans(row, color: refColors[row.index % 3], theme: theme),
                       x: inner.x, y: chartRect.maxY + k, maxX: inner.maxX)
        }

        var info: [Span] = [Span(" train ", theme.style(.dim))]
        info.append(Span(d.trainLoss.last.map { Format.fixed($0, 3) } ?? "–", theme.style(.series_train, .bold)))
        if let best = d.bestValidation {
            info.append(Span(" · best val ", theme.style(.dim)))
            info.append(Span(Format.fixed(best.loss, 3), CellStyle(fg: theme.validationColor(0), attributes: .bold)))
            info.append(Span(" @\(Format.grouped(best.step))", theme.style(.dim)))
        }
        if let w = d.twinWindow {
            info.append(Span(" · twin ", theme.style(.dim)))
            info.append(Span(w.sample.summary, theme.style(.title, .bold)))
        }
        let smooth = state.smoothing == 0 ? "off" : "\(state.smoothing)"
        let logText = chart.logUnavailable ? "log-y n/a (values ≤ 0)" : "log-y \(state.logY ? "on" : "off")"
        let zoomText = state.zoom.map { "last \(Format.grouped($0)) steps" } ?? "all steps"
        info.append(Span(" · smooth \(smooth) · \(logText) · \(zoomText)", theme.style(.dim)))
        canvas.put(info, x: inner.x, y: inner.maxY - 1, maxX: inner.maxX)
    }
}
