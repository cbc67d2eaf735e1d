/// An off-screen buffer of cells. Views draw into it; a `Screen` presents it.
///
/// Drawing is clipped to the canvas and, where a `clip` rectangle is given, to that rectangle, so a
/// widget cannot paint outside the area it was handed.
public struct Canvas: Equatable, Sendable {
    public let width: Int
    public let height: Int
    /// Row-major cells.
    public private(set) var cells: [Cell]

    public init(width: Int, height: Int, fill: Cell = .blank) {
        self.width = Swift.max(0, width)
        self.height = Swift.max(0, height)
        cells = Array(repeating: fill, count: self.width * self.height)
    }

    public init(size: Size, fill: Cell = .blank) {
        self.init(width: size.width, height: size.height, fill: fill)
    }

    public var size: Size { Size(width: width, height: height) }
    public var bounds: Rect { Rect(x: 0, y: 0, width: width, height: height) }

    public subscript(x: Int, y: Int) -> Cell {
        get { cells[y * width + x] }
        set { if x >= 0 && x < width && y >= 0 && y < height { cells[y * width + x] = newValue } }
    }

    /// Sets one cell if it lies on the canvas (and inside `clip`).
    public mutating func set(_ x: Int, _ y: Int, _ character: Unicode.Scalar, _ style: CellStyle, clip: Rect? = nil) {
        guard x >= 0, x < width, y >= 0, y < height else { return }
        if let c = clip, !c.contains(x: x, y: y) { return }
        cells[y * width + x] = Cell(character, style: style)
    }

    /// Changes only the style of a cell (keeps the character).
    public mutating func restyle(_ x: Int, _ y: Int, _ change: (inout CellStyle) -> Void) {
        guard x >= 0, x < width, y >= 0, y < height else { return }
        change(&cells[y * width + x].style)
    }

    /// Writes text from (x, y) to the right, one column per Unicode scalar; returns the column
    /// after the last character written (or that would have been written).
    @discardableResult
    public mutating func put(_ text: String, x: Int, y: Int, style: CellStyle = .plain, clip: Rect? = nil) -> Int {
        var cx = x
        for scalar in text.unicodeScalars {
            // Combining marks take no column; the common ones (U+0300–036F) are skipped cheaply.
            if scalar.value >= 0x300 && scalar.value < 0x370 { continue }
            set(cx, y, scalar, style, clip: clip)
            cx += 1
        }
        return cx
    }

    /// Fills a rectangle with one cell.
    public mutating func fill(_ rect: Rect, with cell: Cell = .blank) {
        let r = rect.intersection(bounds)
        guard !r.isEmpty else { return }
        for y in r.y..<r.maxY {
            let base = y * width
            for x in r.x..<r.maxX { cells[base + x] = cell }
        }
    }

    /// Applies a style change to every cell of a rectangle (e.g. a selection background).
    public mutating func restyle(_ rect: Rect, _ change: (inout CellStyle) -> Void) {
        let r = rect.intersection(bounds)
        guard !r.isEmpty else { return }
        for y in r.y..<r.maxY {
            for x in r.x..<r.maxX { change(&cells[y * width + x].style) }
        }
    }

    /// The characters of one row, trailing spaces kept.
    public func text(row y: Int) -> String {
        guard y >= 0, y < height else { return "" }
        var s = String.UnicodeScalarView()
        for x in 0..<width { s.append(cells[y * width + x].character) }
        return String(s)
    }

    /// The whole canvas as lines of text (trailing spaces trimmed), for tests and plain output.
    public var text: String {
        (0..<height).map { row in
            var line = text(row: row)
            while line.last == " " { line.removeLast() }
            return line
        }.joined(separator: "\n")
    }
}
