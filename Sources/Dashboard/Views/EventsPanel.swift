import Telemetry
import Terminal
import Themes

/// The latest weight changes, evals, checkpoints, warnings and refusals, newest first; a change
/// shows its twin's verdict once the window closed, until then the unpaired before → after
/// (share, oscillation, validation), labelled as such.
enum EventsPanel {
    static func render(_ state: DashboardState, into canvas: inout Canvas, _ rect: Rect, theme: Theme, focused: Bool) {
        let d = state.data
        let events = state.filteredEvents
        var title = PanelText.title(.events, "Events", theme: theme)
        if state.editingEventFilter || !state.eventFilter.isEmpty {
            let cursor = state.editingEventFilter ? "▏" : ""
            title.append(Span(" · /\(state.eventFilter)\(cursor)", theme.style(.title, .bold)))
            title.append(Span(" \(events.count) of \(d.events.count)", theme.style(.dim)))
        }
        if state.eventsScroll > 0 { title.append(Span(" · \(state.eventsScroll) newer above (Home)", theme.style(.dim))) }
        let hints = focused ? [Span("↑↓", theme.style(.title)), Span(" scroll ", theme.style(.dim)),
                               Span("/", theme.style(.title)), Span(" filter", theme.style(.dim))] : []
        let inner = drawBox(&canvas, rect, title: title, hints: hints, focused: focused, theme: theme)
        guard inner.height >= 1, inner.width >= 20 else { return }
        if d.events.isEmpty {
            canvas.put(Format.truncateEnd(" no events yet: weight changes, evals, checkpoints and warnings appear here", inner.width),
                       x: inner.x, y: inner.y, style: theme.style(.dim))
            return
        }
        if events.isEmpty {
            canvas.put(" no event matches \"\(state.eventFilter)\" (Esc clears the filter)", x: inner.x, y: inner.y,
                       style: theme.style(.dim))
            return
        }
        var y = inner.y
        for e in events.reversed().dropFirst(state.eventsScroll) {
            guard y < inner.maxY else { break }
            let (icon, kind, key) = look(e.kind)
            var x = canvas.put(Format.pad(Format.grouped(e.step), 7, right: true) + "  ", x: inner.x, y: y, style: theme.style(.dim))
            x = canvas.put("\(icon) \(Format.pad(kind, 11))", x: x, y: y, style: theme.style(key, .bold))
            x = canvas.put(Format.truncateEnd(e.text, Swift.max(0, inner.maxX - x)), x: x, y: y, style: theme.style(.fg))
            if let verdict = e.verdict, inner.maxX - x > 12 {
                canvas.put([Span("   verdict ", theme.style(.dim)), Span(verdict, theme.style(.title, .bold))], x: x, y: y, maxX: inner.maxX)
            } else if let effect = e.effect, let text = effectText(effect), inner.maxX - x > 20 {
                canvas.put([Span("      unpaired before → after: ", theme.style(.dim)), Span(text, theme.style(.dim))], x: x, y: y, maxX: inner.maxX)
            }
            y += 1
        }
    }

    static func look(_ kind: EventEntry.Kind) -> (String, String, ThemeKey) {
        switch kind {
        case .weight: return ("▲", "weight", .event_weight)
        case .mode: return ("◆", "mode", .event_weight)
        case .target: return ("◆", "target", .event_weight)
        case .revert: return ("↶", "revert", .event_warn)
        case .lr: return ("◆", "lr", .event_weight)
        case .rollback: return ("↶", "rollback", .event_warn)
        case .eval: return ("◆", "eval", .event_eval)
        case .checkpoint: return ("■", "checkpoint", .event_checkpoint)
        case .warning: return ("!", "warning", .event_warn)
        case .refused: return ("✗", "refused", .event_warn)
        case .info: return ("·", "run", .dim)
        case .end: return ("●", "end", .title)
        case .verdict: return ("≈", "verdict", .title)
        }
    }

    /// "long share 9% → 11%, flip(upper) 0.55 → 0.58, val Δ −0.012", from what has been measured.
    static func effectText(_ e: WeightEffect) -> String? {
        var parts: [String] = []
        if let a = e.shareBefore, let b = e.shareAfter { parts.append("\(e.bandName) share \(Format.percent(a)) → \(Format.percent(b))") }
        if let a = e.flipBefore, let b = e.flipAfter { parts.append("flip(\(e.flipGroupName)) \(Format.fixed(a, 2)) → \(Format.fixed(b, 2))") }
        if let a = e.valBefore, let b = e.valAfter {
            parts.append("val Δ \(Format.delta(b - a))")
        }
        return parts.isEmpty ? nil : parts.joined(separator: ", ")
    }
}
