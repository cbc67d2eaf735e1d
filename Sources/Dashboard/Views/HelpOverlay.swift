import Telemetry
import Terminal
import Themes

/// The key reference, drawn over the dashboard on `?` or `h`; any key closes it.
enum HelpOverlay {
    /// The key table's help lines for the mode (`KeyBindings.helpLines`).
    static func lines(_ state: DashboardState) -> [(String, String)] {
        KeyBindings.helpLines(mode: state.mode).map { ($0.keys, $0.text) }
    }

    static func render(_ state: DashboardState, into canvas: inout Canvas, theme: Theme) {
        let entries = lines(state)
        // The keys column fits the longest label (at least 12 columns); the box fits the longest line.
        let labelWidth = Swift.max(12, (entries.map { Format.width($0.0) }.max() ?? 0) + 4)
        let textWidth = entries.map { Format.width($0.1) }.max() ?? 0
        let width = Swift.min(canvas.width - 4, Swift.max(88, labelWidth + textWidth + 3))
        let height = Swift.min(canvas.height - 2, entries.count + 4)
        let rect = Rect(x: (canvas.width - width) / 2, y: (canvas.height - height) / 2, width: width, height: height)
        canvas.fill(rect, with: Cell(" ", style: .plain))
        let inner = drawBox(&canvas, rect, title: [Span("Help · keys", theme.style(.title, .bold))],
                            hints: [Span("any key closes", theme.style(.dim))], focused: true, theme: theme)
        let keyWidth = Swift.min(labelWidth, Swift.max(12, inner.width / 3))
        var y = inner.y + 1
        for (key, what) in entries {
            guard y < inner.maxY else { break }
            canvas.put(Format.pad(Format.truncateEnd("  " + key, keyWidth - 1), keyWidth), x: inner.x, y: y, style: theme.style(.title, .bold))
            canvas.put(Format.truncateEnd(what, inner.width - keyWidth - 1), x: inner.x + keyWidth, y: y, style: theme.style(.fg))
            y += 1
        }
    }
}
