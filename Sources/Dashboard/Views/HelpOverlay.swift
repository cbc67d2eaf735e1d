import Telemetry
import Terminal

/// The key reference, drawn over the dashboard on `?` or `h`; any key closes it.
enum HelpOverlay {
    static func lines(_ state: DashboardState) -> [(String, String)] {
        var out: [(String, String)] = [
            ("q", quitHelp(state.mode)),
            ("? h", "this help (any key closes it)"),
            ("Tab ⇧Tab", "focus the next / previous panel"),
            ("e Enter", "expand the focused panel to the whole screen (Esc or e returns)"),
            (Panel.keyRange, "hide or show a panel: " + Panel.keyList),
            ("↑↓ j k", "select a band (Events panel focused: scroll, PgUp PgDn Home)"),
            ("/", "Events panel focused: filter events by kind or text (Enter keeps, Esc clears)"),
        ]
        if state.mode.steers {
            out += [
                ("x", "stop the run: a checkpoint and its end record (y confirms)"),
                ("space", "pause / resume training (at the next step boundary)"),
                ("+ -", "selected weight ×1.1 / ÷1.1 (also → ← in the Scales panel)"),
                ("* /", "selected weight ×2 / ÷2 (also ⇧→ ⇧← in the Scales panel; / filters when Events is focused)"),
                ("0", "reset the selected weight to 1"),
                ("a", "toggle adaptive / manual for the selected band's axis"),
                ("u", "undo your last change (sends the old value)"),
                ("c", "write a checkpoint now"),
                ("r", "revert: the twin of the last change becomes the main run"),
                ("b", "A/A check: open a twin window with no change"),
            ]
        } else {
            out += [
                ("space", "pause / resume the replay"),
                ("← →", "seek back / forward (⇧ for ten times as far)"),
                ("[ ]", "replay slower / faster"),
                (".", "while paused: one record"),
                ("f", "fork: continue training from here as a new live run"),
            ]
        }
        out += [
            ("l", "log-y on the loss chart"),
            ("s", "smoothing: off, EMA 0.6, 0.9, 0.98"),
            ("z", "zoom: all steps, last 5,000, 1,000, 200"),
            ("g", "graph style: braille, block, ascii"),
            ("v", "attention per head / per layer"),
            ("t", "next theme"),
        ]
        return out
    }

    static func quitHelp(_ mode: DashboardMode) -> String {
        switch mode {
        case .live: return "stop the run (checkpoint, end record) and leave; q again: leave now"
        case .attached: return "detach: leave the dashboard, the run goes on (gradflow attach to come back)"
        case .replay: return "quit"
        }
    }

    static func render(_ state: DashboardState, into canvas: inout Canvas, theme: Theme) {
        let entries = lines(state)
        let width = Swift.min(canvas.width - 4, 88)
        let height = Swift.min(canvas.height - 2, entries.count + 4)
        let rect = Rect(x: (canvas.width - width) / 2, y: (canvas.height - height) / 2, width: width, height: height)
        canvas.fill(rect, with: Cell(" ", style: .plain))
        let inner = drawBox(&canvas, rect, title: [Span("Help · keys", theme.style(.title, .bold))],
                            hints: [Span("any key closes", theme.style(.dim))], focused: true, theme: theme)
        var y = inner.y + 1
        for (key, what) in entries {
            guard y < inner.maxY else { break }
            canvas.put(Format.pad("  " + key, 12), x: inner.x, y: y, style: theme.style(.title, .bold))
            canvas.put(Format.truncateEnd(what, inner.width - 13), x: inner.x + 12, y: y, style: theme.style(.fg))
            y += 1
        }
    }
}
