import CNCurses
import Foundation

/// Why a real terminal could not be opened; the executable then falls back to plain output.
public enum TerminalError: Error, CustomStringConvertible, Equatable {
    /// Neither stdin/stdout nor /dev/tty is a terminal (a pipe, CI).
    case noTerminal(String)
    /// ncurses does not know $TERM (newterm returned NULL).
    case unknownTerminal(String)

    public var description: String {
        switch self {
        case let .noTerminal(why): return "no terminal: \(why)"
        case let .unknownTerminal(term): return "terminal type '\(term)' is unknown to ncurses (check $TERM)"
        }
    }
}

/// The real screen: ncursesw through `newterm`, so that an unknown terminal is an error the caller
/// can handle instead of an exit. Presents canvases by writing only the cells that changed.
///
/// Every way out restores the terminal: `close()` is idempotent, and an `atexit` hook closes any
/// screen still open when the process exits.
public final class NCursesScreen: Screen {
    public let colorMode: ColorMode
    private var screen: OpaquePointer?
    private var window: UnsafeMutablePointer<WINDOW>?
    private var input: UnsafeMutablePointer<FILE>?
    private var output: UnsafeMutablePointer<FILE>?
    private var ownsFiles = false
    private var previous: Canvas?
    private var attributeCache: [CellStyle: (attr_t, Int32)] = [:]
    private var pairs: [UInt64: Int32] = [:]
    private var nextPair: Int32 = 1
    private var directColor = false
    private var closed = false

    /// Opens the terminal on stdin/stdout when both are ttys, else on /dev/tty.
    public init(environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        guard let term = environment["TERM"], !term.isEmpty, term != "dumb" else {
            throw TerminalError.unknownTerminal(environment["TERM"] ?? "")
        }
        if isatty(0) == 1 && isatty(1) == 1 {
            input = fdopen(dup(0), "r")
            output = fdopen(dup(1), "w")
        } else {
            let fd = open("/dev/tty", O_RDWR | O_NOCTTY)
            guard fd >= 0 else { throw TerminalError.noTerminal("stdin/stdout are not terminals and /dev/tty cannot be opened") }
            input = fdopen(fd, "r")
            output = fdopen(dup(fd), "w")
        }
        ownsFiles = true
        guard let input, let output else {
            throw TerminalError.noTerminal("cannot open the terminal's file streams")
        }
        setlocale(LC_ALL, "")
        guard let scr = newterm(term, output, input) else {
            fclose(input); fclose(output)
            self.input = nil; self.output = nil
            throw TerminalError.unknownTerminal(term)
        }
        screen = scr
        set_term(scr)
        window = gf_stdscr()
        cbreak()
        noecho()
        nonl()
        keypad(window, true)
        curs_set(0)
        set_escdelay(25)
        var mode = ColorMode.detect(environment: environment)
        if mode != .none && has_colors() {
            start_color()
            use_default_colors()
            let colors = gf_colors()
            if colors >= 0x100_0000 {
                directColor = true
                if mode != .truecolor { mode = .palette256 }
            } else if colors >= 256 {
                if mode == .truecolor { mode = .palette256 }
            } else if colors >= 8 {
                mode = .ansi16
            } else {
                mode = .none
            }
        } else {
            mode = .none
        }
        colorMode = mode
        NCursesScreen.register(self)
    }

    deinit { close() }

    public var size: Size {
        guard let window, !closed else { return Size(width: 0, height: 0) }
        return Size(width: Int(gf_getmaxx(window)), height: Int(gf_getmaxy(window)))
    }

    public func present(_ canvas: Canvas) {
        guard let window, !closed else { return }
        let current = size
        var old = previous
        if old?.size != canvas.size || canvas.size != current {
            werase(window)
            old = nil
        }
        let width = Swift.min(canvas.width, current.width)
        let height = Swift.min(canvas.height, current.height)
        for y in 0..<height {
            for x in 0..<width {
                let cell = canvas[x, y]
                if let o = old, o[x, y] == cell { continue }
                let (attr, pair) = attributes(for: cell.style)
                _ = gf_put_cell(window, Int32(y), Int32(x), Int32(bitPattern: cell.character.value), attr, pair)
            }
        }
        previous = canvas
        wnoutrefresh(window)
        doupdate()
    }

    public func readKey(timeout: Double) -> Key? {
        guard let window, !closed else { return nil }
        let ms = Int32(Swift.max(0, Swift.min(10_000, timeout * 1000)))
        wtimeout(window, ms)
        let start = DispatchTime.now().uptimeNanoseconds
        var isKeyCode: Int32 = 0
        let code = gf_read_key(window, &isKeyCode)
        if code < 0 {
            // Without a working tty wget_wch returns at once: wait out the timeout instead of spinning.
            let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            if elapsed < timeout * 0.5 { usleep(UInt32((timeout - elapsed) * 1e6)) }
            return nil
        }
        let key = KeyDecoder.decode(code: Int(code), isKeyCode: isKeyCode != 0)
        if key == .resize { previous = nil }
        return key
    }

    /// Ends curses mode and gives the terminal back. Safe to call more than once.
    public func close() {
        guard !closed else { return }
        closed = true
        NCursesScreen.unregister(self)
        if let screen {
            set_term(screen)
            endwin()
            delscreen(screen)
        }
        screen = nil
        window = nil
        if ownsFiles {
            if let output { fflush(output); fclose(output) }
            if let input { fclose(input) }
        }
        input = nil
        output = nil
    }

    // MARK: - Colours

    private func attributes(for style: CellStyle) -> (attr_t, Int32) {
        if let cached = attributeCache[style] { return cached }
        var attr = gf_a_normal()
        if style.attributes.contains(.bold) { attr |= gf_a_bold() }
        if style.attributes.contains(.dim) { attr |= gf_a_dim() }
        if style.attributes.contains(.reverse) { attr |= gf_a_reverse() }
        if style.attributes.contains(.underline) { attr |= gf_a_underline() }
        let pair = colorMode == .none ? 0 : pairNumber(fg: curses(style.fg), bg: curses(style.bg))
        attributeCache[style] = (attr, pair)
        return (attr, pair)
    }

    /// The ncurses colour number: -1 for the default, a palette index, or packed RGB (direct colour).
    private func curses(_ color: TerminalColor) -> Int32 {
        let c = colorMode.reduce(color)
        if c.isDefault { return -1 }
        if let i = c.index { return Int32(i) }
        if let rgb = c.rgbComponents {
            if directColor { return Int32(rgb.r) << 16 | Int32(rgb.g) << 8 | Int32(rgb.b) }
            return Int32(XtermPalette.nearest256(rgb.r, rgb.g, rgb.b))
        }
        return -1
    }

    private func pairNumber(fg: Int32, bg: Int32) -> Int32 {
        if fg == -1 && bg == -1 { return 0 }
        let key = UInt64(UInt32(bitPattern: fg)) << 32 | UInt64(UInt32(bitPattern: bg))
        if let p = pairs[key] { return p }
        guard nextPair < gf_color_pairs() else { return 0 }
        let p = nextPair
        nextPair += 1
        init_extended_pair(p, fg, bg)
        pairs[key] = p
        return p
    }

    // MARK: - Restoring at exit

    private static let registry = Registry()

    private final class Registry: @unchecked Sendable {
        let lock = NSLock()
        var open: [ObjectIdentifier: Weak] = [:]
        var hookInstalled = false
    }

    private struct Weak { weak var screen: NCursesScreen? }

    private static func register(_ s: NCursesScreen) {
        registry.lock.lock()
        registry.open[ObjectIdentifier(s)] = Weak(screen: s)
        let install = !registry.hookInstalled
        registry.hookInstalled = true
        registry.lock.unlock()
        if install { atexit { NCursesScreen.closeAll() } }
    }

    private static func unregister(_ s: NCursesScreen) {
        registry.lock.lock()
        registry.open[ObjectIdentifier(s)] = nil
        registry.lock.unlock()
    }

    /// Closes every screen still open (the atexit hook; the executable may call it from a signal path).
    public static func closeAll() {
        registry.lock.lock()
        let screens = registry.open.values.compactMap(\.screen)
        registry.lock.unlock()
        for s in screens { s.close() }
    }
}
