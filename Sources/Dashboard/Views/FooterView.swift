import Telemetry
import Terminal
import Themes

/// The bottom lines: key hints, then facts about the run and the latest status message.
enum FooterView {
    /// The key table's footer hints for the mode; space says "resume" while a steered run is paused.
    static func keyHints(_ state: DashboardState) -> [(String, String)] {
        KeyBindings.footerHints(mode: state.mode).map { action, hint in
            if action == .togglePause && state.mode.steers && state.data.paused { return (hint.keys, "resume") }
            return (hint.keys, hint.text)
        }
    }

    static func render(_ state: DashboardState, into canvas: inout Canvas, _ rect: Rect, theme: Theme) {
        guard rect.height > 0 else { return }
        let keysRow = rect.y
        let statusRow = rect.height >= 2 ? rect.y + 1 : nil
        if statusRow == nil, state.status != nil {
            renderStatus(state, into: &canvas, row: keysRow, width: rect.width, theme: theme)
            return
        }
        var spans: [Span] = [Span(" ", .plain)]
        for (key, what) in keyHints(state) {
            spans.append(Span(key, theme.style(.title, .bold)))
            spans.append(Span(" \(what)  ", theme.style(.dim)))
        }
        canvas.put(spans, x: rect.x, y: keysRow, maxX: rect.maxX)
        if let statusRow { renderStatus(state, into: &canvas, row: statusRow, width: rect.width, theme: theme) }
    }

    static func renderStatus(_ state: DashboardState, into canvas: inout Canvas, row: Int, width: Int, theme: Theme) {
        let bg = theme[.status_bg]
        canvas.fill(Rect(x: 0, y: row, width: width, height: 1), with: Cell(" ", style: CellStyle(bg: bg)))
        var facts: [String] = []
        if let f = state.runFile { facts.append("run file \(f)") }
        facts.append("\(Format.grouped(state.data.recordCount)) records")
        facts.append("theme \(state.themeNames.isEmpty ? "default" : state.themeNames[state.themeIndex % state.themeNames.count])")
        if !state.colorModeLabel.isEmpty { facts.append(state.colorModeLabel) }
        facts.append("graph \(state.graphStyle.rawValue)")
        var x = 1
        if let s = state.status {
            let style = CellStyle(fg: theme[s.isError ? .event_warn : .fg], bg: bg, attributes: .bold)
            let text = Format.truncateEnd(s.text, width - 2)
            x = canvas.put(text, x: x, y: row, style: style) + 3
        }
        let factText = facts.joined(separator: " · ")
        let room = width - x - 1
        if room > 10 {
            let text = Format.truncateMiddle(factText, room)
            canvas.put(text, x: width - 1 - Format.width(text), y: row, style: CellStyle(fg: theme[.dim], bg: bg))
        }
    }
}
