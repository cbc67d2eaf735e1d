import CNCurses
import Terminal
import Testing

@Suite struct TerminalTests {
    @Test func canvasClipsAndReportsText() {
        var c = Canvas(width: 10, height: 2)
        c.put("hello world", x: 2, y: 0)
        c.put("clip", x: 0, y: 1, clip: Rect(x: 0, y: 1, width: 2, height: 1))
        #expect(c.text(row: 0) == "  hello wo")
        #expect(c.text == "  hello wo\ncl")
        c.set(-1, 5, "x", .plain)   // off-canvas: ignored
        #expect(c[2, 0].character == "h")
    }

    @Test func bufferScreenCountsChangedCells() {
        let s = BufferScreen(size: Size(width: 4, height: 1))
        var c = Canvas(width: 4, height: 1)
        c.put("ab", x: 0, y: 0)
        s.present(c)
        c.put("ac", x: 0, y: 0)
        s.present(c)
        #expect(s.lastChangedCells == 1)
        #expect(s.text(row: 0) == "ac  ")
        s.pendingKeys = [.character("q")]
        #expect(s.readKey(timeout: 0) == .character("q"))
        #expect(s.readKey(timeout: 0) == nil)
    }

    @Test func keyDecoding() {
        #expect(KeyDecoder.decode(code: Int(gf_key_up()), isKeyCode: true) == .up)
        #expect(KeyDecoder.decode(code: Int(gf_key_btab()), isKeyCode: true) == .backTab)
        #expect(KeyDecoder.decode(code: Int(gf_key_sright()), isKeyCode: true) == .shiftRight)
        #expect(KeyDecoder.decode(code: Int(gf_key_resize()), isKeyCode: true) == .resize)
        #expect(KeyDecoder.decode(code: Int(gf_key_f(2)), isKeyCode: true) == .function(2))
        #expect(KeyDecoder.decode(code: 9, isKeyCode: false) == .tab)
        #expect(KeyDecoder.decode(code: 27, isKeyCode: false) == .escape)
        #expect(KeyDecoder.decode(code: 3, isKeyCode: false) == .control("c"))
        #expect(KeyDecoder.decode(code: Int(Character("+").unicodeScalars.first!.value), isKeyCode: false) == .character("+"))
        #expect(KeyDecoder.decode(code: 0xE9, isKeyCode: false) == .character("é"))
    }

    @Test func colourModesFromTheEnvironment() {
        #expect(ColorMode.detect(environment: ["NO_COLOR": "1", "COLORTERM": "truecolor"]) == .none)
        #expect(ColorMode.detect(environment: ["COLORTERM": "24bit", "TERM": "xterm"]) == .truecolor)
        #expect(ColorMode.detect(environment: ["TERM": "xterm-256color"]) == .palette256)
        #expect(ColorMode.detect(environment: ["TERM": "xterm"]) == .ansi16)
    }

    @Test func colourReduction() {
        #expect(ColorMode.palette256.reduce(.rgb(255, 0, 0)) == .indexed(196))
        #expect(ColorMode.palette256.reduce(.rgb(128, 128, 128)) == .indexed(244))
        #expect(ColorMode.ansi16.reduce(.rgb(250, 250, 250)) == .indexed(15))
        #expect(ColorMode.ansi16.reduce(.indexed(196)) == .indexed(9))
        #expect(ColorMode.none.reduce(.rgb(1, 2, 3)) == .default)
        #expect(ColorMode.truecolor.reduce(.rgb(1, 2, 3)) == .rgb(1, 2, 3))
        #expect(XtermPalette.rgb(of: 16) == (0, 0, 0) && XtermPalette.rgb(of: 231) == (255, 255, 255))
    }

    @Test func noTerminalIsAnErrorNotAnExit() {
        // Under `swift test` stdin/stdout are usually not terminals; with an unknown TERM newterm
        // fails either way, and the constructor must throw rather than end the process.
        #expect(throws: TerminalError.self) { try NCursesScreen(environment: ["TERM": "no-such-terminal-xyz"]) }
        #expect(throws: TerminalError.self) { try NCursesScreen(environment: [:]) }
    }
}
