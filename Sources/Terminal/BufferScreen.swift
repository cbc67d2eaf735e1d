/// An in-memory screen for tests: keys come from a queue, presented canvases are kept.
public final class BufferScreen: Screen {
    public var size: Size
    public let colorMode: ColorMode
    /// The last canvas presented.
    public private(set) var canvas: Canvas
    /// Number of present calls, and the cells each one changed.
    public private(set) var presentCount = 0
    public private(set) var lastChangedCells = 0
    /// Keys that readKey will return, in order.
    public var pendingKeys: [Key] = []
    public private(set) var isClosed = false
    /// Called on every readKey before the queue is consulted (tests use it to script a session).
    public var onReadKey: ((BufferScreen) -> Void)?

    public init(size: Size, colorMode: ColorMode = .truecolor) {
        self.size = size
        self.colorMode = colorMode
        canvas = Canvas(size: size)
    }

    public func present(_ canvas: Canvas) {
        if canvas.size == self.canvas.size {
            lastChangedCells = zip(canvas.cells, self.canvas.cells).reduce(0) { $0 + ($1.0 == $1.1 ? 0 : 1) }
        } else {
            lastChangedCells = canvas.cells.count
        }
        self.canvas = canvas
        presentCount += 1
    }

    public func readKey(timeout: Double) -> Key? {
        onReadKey?(self)
        return pendingKeys.isEmpty ? nil : pendingKeys.removeFirst()
    }

    public func close() { isClosed = true }

    /// Text of one row of the last canvas.
    public func text(row: Int) -> String { canvas.text(row: row) }

    /// The whole last canvas as text.
    public var text: String { canvas.text }

    /// One cell of the last canvas.
    public func cell(x: Int, y: Int) -> Cell { canvas[x, y] }
}
