import Telemetry
import Terminal
import Themes

/// What the model writes: the newest evaluation's sample, wrapped, with the prompt dimmed; below
/// it, one line per earlier sample (newest first), so a replay shows how the text improved.
enum SamplesPanel {
    static func render(_ state: DashboardState, into canvas: inout Canvas, _ rect: Rect, theme: Theme, focused: Bool) {
        let samples = state.data.samples
        var title = PanelText.title(.samples, "Samples", theme: theme)
        if let s = samples.last {
            title.append(Span(" · step \(Format.grouped(s.step)) · prompt \"\(visible(s.prompt))\"", theme.style(.dim)))
        }
        let inner = drawBox(&canvas, rect, title: title, focused: focused, theme: theme)
        guard inner.height >= 1, inner.width >= 12 else { return }
        guard let latest = samples.last else {
            canvas.put(Format.truncateEnd(" no sample yet: the model writes one at each evaluation", inner.width),
                       x: inner.x, y: inner.y, style: theme.style(.dim))
            return
        }
        let earlier = Array(samples.dropLast().reversed())
        // The newest sample gets the room the earlier ones leave (at least two thirds).
        let historyRows = Swift.min(earlier.count, inner.height / 3)
        let lines = wrap(prompt: latest.prompt, text: latest.text, width: inner.width - 1)
        var y = inner.y
        for line in lines.prefix(inner.height - historyRows) {
            var x = inner.x + 1
            for (text, isPrompt) in line {
                x = canvas.put(text, x: x, y: y, style: theme.style(isPrompt ? .dim : .fg))
            }
            y += 1
        }
        y = inner.maxY - historyRows
        for s in earlier.prefix(historyRows) {
            let x = canvas.put(Format.pad(Format.grouped(s.step), 7, right: true) + " │ ", x: inner.x, y: y, style: theme.style(.dim))
            canvas.put(Format.truncateEnd(visible(s.text), Swift.max(0, inner.maxX - x)), x: x, y: y, style: theme.style(.fg))
            y += 1
        }
    }

    /// One line of text: newline as ⏎, tab as a space, other control bytes as ·.
    static func visible(_ text: String) -> String {
        String(String.UnicodeScalarView(text.unicodeScalars.map(visible)))
    }

    /// One character as the panel draws it: a newline as ⏎, a tab as a space, other control
    /// characters as ·.
    static func visible(_ s: Unicode.Scalar) -> Unicode.Scalar {
        if s == "\n" { return "⏎" }
        if s == "\t" { return " " }
        return s.value < 0x20 || s.value == 0x7F ? "·" : s
    }

    /// Prompt then text, broken at newlines and at `width` columns; each line a list of
    /// (text, is prompt) runs.
    static func wrap(prompt: String, text: String, width: Int) -> [[(String, Bool)]] {
        guard width > 0 else { return [] }
        var lines: [[(String, Bool)]] = []
        var current: [(String, Bool)] = []
        var run = "", runIsPrompt = true, column = 0
        func flushRun() {
            if !run.isEmpty { current.append((run, runIsPrompt)); run = "" }
        }
        func newLine() {
            flushRun()
            lines.append(current)
            current = []
            column = 0
        }
        for (part, isPrompt) in [(prompt, true), (text, false)] {
            if isPrompt != runIsPrompt { flushRun(); runIsPrompt = isPrompt }
            for s in part.unicodeScalars {
                if s == "\n" { newLine(); continue }
                if column == width { newLine() }
                run.unicodeScalars.append(visible(s))
                column += 1
            }
        }
        flushRun()
        if !current.isEmpty { lines.append(current) }
        // A prompt that is only a newline leaves an empty first line: drop it.
        if let first = lines.first, first.isEmpty, lines.count > 1 { lines.removeFirst() }
        return lines
    }
}
