/// Where a dashboard draws and reads keys: a real terminal or an in-memory buffer for tests.
public protocol Screen: AnyObject {
    /// The current size in cells.
    var size: Size { get }
    /// How many colours it can show (NO_COLOR ⇒ .none).
    var colorMode: ColorMode { get }
    /// Shows a canvas, writing only the cells that differ from the last one presented.
    func present(_ canvas: Canvas)
    /// Waits up to `timeout` seconds for a key; nil when none came.
    func readKey(timeout: Double) -> Key?
    /// Gives the terminal back as it was. Idempotent.
    func close()
}
