import Telemetry
import Terminal
import Themes

/// The key reference, drawn over the dashboard on `?` or `h`. Descriptions wrap to the box; when
/// the rows do not fit the screen (80 × 24 holds about 18), ↑↓ PgUp PgDn Home scroll them and any
/// other key closes the help.
enum HelpOverlay {
    /// The key table's help lines for the mode (`KeyBindings.helpLines`).
    static func lines(_ state: DashboardState) -> [(String, String)] {
        KeyBindings.helpLines(mode: state.mode).map { ($0.keys, $0.text) }
    }

    /// Where the help goes on a screen of `state.size`, and its rows: a key, then its description
    /// wrapped to the text column (the continuation rows have no key).
    struct Layout {
        var rect: Rect
        var keyWidth: Int
        var rows: [(key: String, text: String)]
        /// Rows the box shows at once.
        var visible: Int
        /// The furthest `helpScroll` that still fills the box.
        var maxScroll: Int { Swift.max(0, rows.count - visible) }
    }

    static func layout(_ state: DashboardState) -> Layout {
        let entries = lines(state)
        let size = state.size
        // The keys column fits the longest label (at least 12 columns); the box fits the longest line.
        let labelWidth = Swift.max(12, (entries.map { Format.width($0.0) }.max() ?? 0) + 4)
        let longest = entries.map { Format.width($0.1) }.max() ?? 0
        let width = Swift.min(size.width - 4, Swift.max(88, labelWidth + longest + 3))
        let innerWidth = Swift.max(0, width - 2)
        let keyWidth = Swift.min(labelWidth, Swift.max(12, innerWidth / 3))
        let textWidth = Swift.max(8, innerWidth - keyWidth - 1)
        var rows: [(key: String, text: String)] = []
        for (key, what) in entries {
            for (i, line) in wrap(what, width: textWidth).enumerated() { rows.append((i == 0 ? key : "", line)) }
        }
        let height = Swift.min(size.height - 2, rows.count + 3)   // borders and a blank first row
        let rect = Rect(x: (size.width - width) / 2, y: (size.height - height) / 2, width: width, height: height)
        return Layout(rect: rect, keyWidth: keyWidth, rows: rows, visible: Swift.max(0, height - 3))
    }

    /// `text` in lines of at most `width` columns, broken at spaces (a word longer than the line
    /// is cut).
    static func wrap(_ text: String, width: Int) -> [String] {
        var lines: [String] = [], line = ""
        for word in text.split(separator: " ", omittingEmptySubsequences: true).map(String.init) {
            if line.isEmpty {
                line = word
            } else if Format.width(line) + 1 + Format.width(word) <= width {
                line += " " + word
            } else {
                lines.append(line)
                line = word
            }
            while Format.width(line) > width {
                lines.append(String(line.unicodeScalars.prefix(width)))
                line = String(line.unicodeScalars.dropFirst(width))
            }
        }
        if !line.isEmpty || lines.isEmpty { lines.append(line) }
        return lines
    }

    static func render(_ state: DashboardState, into canvas: inout Canvas, theme: Theme) {
        let layout = layout(state)
        let top = Swift.min(state.helpScroll, layout.maxScroll)
        let rect = layout.rect
        canvas.fill(rect, with: Cell(" ", style: .plain))
        var hints = "any key closes"
        if layout.maxScroll > 0 {
            let below = layout.rows.count - top - layout.visible
            hints = (below > 0 ? "↓ \(below) more" : "end") + " · ↑↓ scroll · other keys close"
        }
        let inner = drawBox(&canvas, rect, title: [Span("Help · keys", theme.style(.title, .bold))],
                            hints: [Span(hints, theme.style(.dim))], focused: true, theme: theme)
        var y = inner.y + 1
        for row in layout.rows.dropFirst(top) {
            guard y < inner.maxY else { break }
            if !row.key.isEmpty {
                canvas.put(Format.pad(Format.truncateEnd("  " + row.key, layout.keyWidth - 1), layout.keyWidth), x: inner.x, y: y,
                           style: theme.style(.title, .bold))
            }
            canvas.put(Format.truncateEnd(row.text, inner.width - layout.keyWidth - 1), x: inner.x + layout.keyWidth, y: y,
                       style: theme.style(.fg))
            y += 1
        }
    }
}
