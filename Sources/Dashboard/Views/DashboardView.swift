import Telemetry
import Terminal
import Themes

/// The pure view: state, size and theme in, a canvas of cells out.
public enum DashboardView {
    /// Below this the dashboard shows what it needs instead of a broken layout.
    public static let minimumSize = Size(width: 80, height: 24)

    /// Whether a screen of `size` has room for the panels.
    public static func fits(_ size: Size) -> Bool {
        size.width >= minimumSize.width && size.height >= minimumSize.height
    }

    public static func render(_ state: DashboardState, size: Size, theme: Theme) -> Canvas {
        var canvas = Canvas(size: size)
        guard fits(size) else {
            renderTooSmall(&canvas, state, theme: theme)
            return canvas
        }
        let layout = Layout(state: state, size: size)
        HeaderView.render(state, into: &canvas, layout.header, theme: theme)
        for (panel, rect) in layout.panels {
            let focused = panel == state.focus
            switch panel {
            case .loss: LossPanel.render(state, into: &canvas, rect, theme: theme, focused: focused)
            case .scales: ScalesPanel.render(state, into: &canvas, rect, theme: theme, focused: focused)
            case .oscillation: OscillationPanel.render(state, into: &canvas, rect, theme: theme, focused: focused)
            case .attention: AttentionPanel.render(state, into: &canvas, rect, theme: theme, focused: focused)
            case .events: EventsPanel.render(state, into: &canvas, rect, theme: theme, focused: focused)
            case .samples: SamplesPanel.render(state, into: &canvas, rect, theme: theme, focused: focused)
            }
        }
        FooterView.render(state, into: &canvas, layout.footer, theme: theme)
        if state.showHelp { HelpOverlay.render(state, into: &canvas, theme: theme) }
        return canvas
    }

    static func renderTooSmall(_ canvas: inout Canvas, _ state: DashboardState, theme: Theme) {
        let lines = [
            "gradflow needs \(minimumSize.width)×\(minimumSize.height), have \(canvas.width)×\(canvas.height)",
            state.mode == .attached ? "enlarge the terminal, or press q to detach (the run goes on)" : "enlarge the terminal, or press q to quit",
        ]
        let top = Swift.max(0, canvas.height / 2 - 1)
        for (i, line) in lines.enumerated() {
            let text = Format.truncateEnd(line, canvas.width)
            let x = Swift.max(0, (canvas.width - Format.width(text)) / 2)
            canvas.put(text, x: x, y: top + i, style: i == 0 ? theme.style(.zone_bad, .bold) : theme.style(.dim))
        }
    }
}

/// Where each part goes for a given size: header row, panel rectangles, footer rows. Rows of
/// panels (loss + scales, oscillation + attention, events) reflow when panels are hidden; small
/// terminals get fewer blank lines, and each panel drops columns it has no room for.
struct Layout {
    var header: Rect
    var footer: Rect
    var panels: [(Panel, Rect)] = []

    init(state: DashboardState, size: Size) {
        let roomy = size.height >= 36
        let footerRows = roomy ? 2 : 1
        header = Rect(x: 0, y: 0, width: size.width, height: 1)
        footer = Rect(x: 0, y: size.height - footerRows, width: size.width, height: footerRows)
        let gap = roomy ? 1 : 0
        let body = Rect(x: 0, y: 1, width: size.width, height: size.height - 1 - footerRows - gap)
        if let e = state.expanded {
            panels = [(e, body)]
            return
        }
        let visible = Set(state.visiblePanels)
        let rows: [[Panel]] = [[.loss, .scales], [.oscillation, .attention], [.events, .samples]]
            .map { $0.filter(visible.contains) }
        let weights = [0.43, 0.28, 0.29]
        let present = rows.indices.filter { !rows[$0].isEmpty }
        let total = present.reduce(0) { $0 + weights[$1] }
        var heights = [Int](repeating: 0, count: 3)
        for i in present { heights[i] = Int(Double(body.height) * weights[i] / total) }
        // The scales panel wants one line per band; the middle row does not need more than 14.
        if !rows[0].isEmpty && rows[0].contains(.scales) {
            heights[0] = Swift.max(heights[0], Swift.min(state.data.rows.count + 2, body.height - 8))
        }
        if !rows[1].isEmpty { heights[1] = Swift.min(heights[1], 14) }
        // The last present row takes what is left.
        if let last = present.last {
            heights[last] = body.height - present.dropLast().reduce(0) { $0 + heights[$1] }
            if heights[last] < 3, present.count > 1 {
                let short = 3 - heights[last]
                heights[present[0]] -= short
                heights[last] = 3
            }
        }
        var y = body.y
        for i in present {
            let rect = Rect(x: 0, y: y, width: size.width, height: heights[i])
            y += heights[i]
            let row = rows[i]
            if row.count == 1 {
                panels.append((row[0], rect))
            } else if row == [.loss, .scales] {
                let scalesWidth = Swift.max(40, Swift.min(64, Int(Double(size.width) * 0.39)))
                let (left, right) = rect.splitLeft(size.width - scalesWidth)
                panels.append((.loss, left))
                panels.append((.scales, right))
            } else if row == [.events, .samples] {
                // Events lines are long (effect since …); the sample reads well at 40–60 columns.
                let samplesWidth = size.width >= 120 ? Swift.max(36, Swift.min(64, size.width - 100)) : size.width * 9 / 20
                let (left, right) = rect.splitLeft(size.width - samplesWidth)
                panels.append((.events, left))
                panels.append((.samples, right))
            } else {
                let (left, right) = rect.splitLeft(size.width / 2)
                panels.append((row[0], left))
                panels.append((row[1], right))
            }
        }
    }
}

/// Small helpers shared by the panels.
enum PanelText {
    /// "¹Loss" style title start: the panel's toggle digit, then the name.
    static func title(_ panel: Panel, _ text: String, theme: Theme) -> [Span] {
        return [Span(panel.superscript, theme.style(.dim)), Span(text, theme.style(.title, .bold))]
    }

    /// Zone of an oscillation value (flip rate): calm < 0.45 ≤ watch < 0.55 ≤ oscillating.
    static func zoneKey(_ flip: Double) -> ThemeKey {
        flip < 0.45 ? .zone_calm : (flip < 0.55 ? .zone_watch : .zone_bad)
    }
}
