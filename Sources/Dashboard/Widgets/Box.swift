import Telemetry
import Terminal
import Themes

/// A run of text with one style, for titles, hints and legends.
public struct Span: Sendable, Equatable {
    public var text: String
    public var style: CellStyle
    public init(_ text: String, _ style: CellStyle) {
        self.text = text
        self.style = style
    }
}

extension Canvas {
    /// Writes spans left to right, clipped to `maxX`; returns the column after the last one.
    @discardableResult
    mutating func put(_ spans: [Span], x: Int, y: Int, maxX: Int) -> Int {
        var cx = x
        for s in spans {
            let room = maxX - cx
            if room <= 0 { break }
            let text = Format.width(s.text) > room ? Format.truncateEnd(s.text, room) : s.text
            cx = put(text, x: cx, y: y, style: s.style)
        }
        return cx
    }
}

/// A bordered box with the title and key hints inside the border (btop style): light lines, heavy
/// when focused. Returns the inner rectangle.
@discardableResult
func drawBox(_ canvas: inout Canvas, _ rect: Rect, title: [Span], hints: [Span] = [], focused: Bool, theme: Theme) -> Rect {
    guard rect.width >= 2, rect.height >= 2 else { return Rect(x: rect.x, y: rect.y, width: 0, height: 0) }
    let style = focused ? theme.style(.border_focus, .bold) : theme.style(.border)
    let (h, v, tl, tr, bl, br): (Unicode.Scalar, Unicode.Scalar, Unicode.Scalar, Unicode.Scalar, Unicode.Scalar, Unicode.Scalar) =
        focused ? ("━", "┃", "┏", "┓", "┗", "┛") : ("─", "│", "┌", "┐", "└", "┘")
    let x0 = rect.x, y0 = rect.y, x1 = rect.maxX - 1, y1 = rect.maxY - 1
    for x in (x0 + 1)..<x1 {
        canvas.set(x, y0, h, style)
        canvas.set(x, y1, h, style)
    }
    for y in (y0 + 1)..<y1 {
        canvas.set(x0, y, v, style)
        canvas.set(x1, y, v, style)
    }
    canvas.set(x0, y0, tl, style); canvas.set(x1, y0, tr, style)
    canvas.set(x0, y1, bl, style); canvas.set(x1, y1, br, style)
    if !title.isEmpty && rect.width > 6 {
        canvas.set(x0 + 2, y0, " ", style)
        let end = canvas.put(title, x: x0 + 3, y: y0, maxX: x1 - 1)
        canvas.set(end, y0, " ", style)
    }
    if !hints.isEmpty {
        let w = hints.reduce(0) { $0 + Format.width($1.text) } + 2
        let start = x1 - 1 - w
        if start > x0 + 2 {
            canvas.set(start, y1, " ", style)
            canvas.put(hints, x: start + 1, y: y1, maxX: x1 - 1)
            canvas.set(x1 - 2, y1, " ", style)
        }
    }
    return rect.inset(1)
}
