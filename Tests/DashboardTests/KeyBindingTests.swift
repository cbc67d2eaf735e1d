import Terminal
import Testing
@testable import Dashboard

/// The key table is the one source of the keys: the update dispatches through it, and the help,
/// the footer and the Scales panel's hints are drawn from it.
@Suite struct KeyBindingTests {
    static let modes: [DashboardMode] = [.live, .attached, .replay]

    @Test(arguments: modes)
    func everyRowsKeysDispatchToItsAction(mode: DashboardMode) {
        var s = makeState(mode: mode)
        for row in KeyBindings.table where row.modes.contains(mode) {
            // A row without a focus is tested with a panel that has no rows of its own.
            s.focus = row.focus ?? .loss
            for key in row.keys {
                #expect(s.keyBinding(for: key)?.action == row.action,
                        "\(KeyBindings.name(key)) in \(mode) with \(s.focus) focused: \(row.action)")
            }
        }
    }

    @Test(arguments: modes)
    func helpListsEveryBindingOfTheMode(mode: DashboardMode) {
        var s = makeState(mode: mode, size: Size(width: 150, height: 60))
        _ = press(&s, .character("?"))
        let text = screen(s, 150, 60).text
        let lines = KeyBindings.helpLines(mode: mode)
        let rows = KeyBindings.table.filter { $0.modes.contains(mode) }
        #expect(lines.flatMap(\.rows) == rows, "every row of the mode is on one help line, in table order")
        for line in lines {
            #expect(text.contains(line.keys) && text.contains(line.text), "help shows \(line.keys): \(line.text)")
            for row in line.rows {
                #expect(line.keys.contains(KeyBindings.name(row.keys[0])), "\(line.keys) names \(KeyBindings.name(row.keys[0]))")
                if !row.label.isEmpty { #expect(line.keys.contains(row.label)) }
            }
        }
    }

    @Test(arguments: modes)
    func helpScrollsToEveryLineOnAnEightyByTwentyFourScreen(mode: DashboardMode) {
        var s = makeState(mode: mode, size: Size(width: 80, height: 24))
        _ = press(&s, .character("?"))
        let layout = HelpOverlay.layout(s)
        #expect(layout.maxScroll > 0, "the help is taller than 24 rows")
        #expect(screen(s, 80, 24).text.contains("↑↓ scroll"))
        // Page by page, every help line's key and the start of its text is shown once.
        var seen = ""
        while true {
            seen += screen(s, 80, 24).text
            if s.helpScroll == layout.maxScroll { break }
            _ = press(&s, .pageDown)
            #expect(s.showHelp, "a scroll key keeps the help open")
        }
        for line in KeyBindings.helpLines(mode: mode) {
            let start = String(line.text.split(separator: " ").prefix(2).joined(separator: " "))
            #expect(seen.contains(line.keys) && seen.contains(start), "\(line.keys): \(start)")
        }
        _ = press(&s, .pageDown)
        #expect(s.helpScroll == layout.maxScroll, "no scrolling past the end")
        _ = press(&s, .home)
        #expect(s.helpScroll == 0)
        _ = press(&s, .character("x"))
        #expect(!s.showHelp && !s.confirmingStop, "another key only closes the help")
        // On a large screen there is nothing to scroll: ↓ closes the help, as any key does.
        var large = makeState(mode: mode, size: Size(width: 150, height: 60))
        _ = press(&large, .character("?"))
        #expect(HelpOverlay.layout(large).maxScroll == 0 && screen(large, 150, 60).text.contains("any key closes"))
        _ = press(&large, .down)
        #expect(!large.showHelp)
    }

    @Test func helpWrapsAtSpacesAndCutsAWordLongerThanTheLine() {
        #expect(HelpOverlay.wrap("stop the run and leave", width: 10) == ["stop the", "run and", "leave"])
        #expect(HelpOverlay.wrap("abcdefghijkl x", width: 5) == ["abcde", "fghij", "kl x"])
        #expect(HelpOverlay.wrap("", width: 5) == [""])
    }

    @Test(arguments: modes)
    func footerAndScalesHintsComeFromTheTable(mode: DashboardMode) {
        let s = makeState(mode: mode)
        let text = screen(s, 400, 44).text
        let footer = KeyBindings.footerHints(mode: mode)
        #expect(!footer.isEmpty)
        for (_, hint) in footer { #expect(text.contains("\(hint.keys) \(hint.text)"), "footer shows \(hint.keys) \(hint.text)") }
        // The Scales panel's hints, expanded so that the whole line fits; a replay is read-only.
        var expanded = s
        expanded.expanded = .scales
        let scales = screen(expanded, 150, 44).text
        if mode.steers {
            for hint in KeyBindings.panelHints(.scales, mode: mode) {
                #expect(scales.contains("\(hint.hint.keys) \(hint.hint.text)"), "Scales shows \(hint.hint.keys) \(hint.hint.text)")
            }
        } else {
            #expect(scales.contains("replay: weights are read-only"))
        }
        // Every footer and panel hint belongs to a row the mode dispatches.
        for row in KeyBindings.table where row.modes.contains(mode) && (row.footer != nil || row.panelHint != nil) {
            #expect(row.focus == nil, "a hint shown whatever the focus has a row without a focus")
        }
    }

    @Test func quitSaysWhatItDoesInEachMode() {
        #expect(FooterView.keyHints(makeState(mode: .live)).first! == ("q", "quit"))
        var attached = makeState(mode: .attached)
        attached.canControl = true
        #expect(FooterView.keyHints(attached).first! == ("q", "detach"))
        #expect(HelpOverlay.lines(attached).first!.1.hasPrefix("detach"))
        _ = press(&attached, .character("x"))
        #expect(attached.confirmingStop)
        #expect(FooterView.keyHints(makeState(mode: .replay)).map(\.0).contains("x") == false)
    }

    @Test func pausedRunSaysResumeInTheFooter() {
        var s = makeState()
        #expect(FooterView.keyHints(s).contains { $0 == ("space", "pause") })
        _ = press(&s, .character(" "))
        #expect(FooterView.keyHints(s).contains { $0 == ("space", "resume") })
    }

    @Test func keysOfTheOtherModeSaySo() {
        var replay = makeState(mode: .replay)
        for key in [Key.character("x"), .character("_"), .character("0"), .character("c"), .character("b")] {
            replay.status = nil
            #expect(press(&replay, key).isEmpty)
            #expect(replay.status?.text.contains("read-only") == true, "\(KeyBindings.name(key)) in a replay")
        }
        var live = makeState()
        #expect(press(&live, .character("]")).isEmpty)
        #expect(live.status?.text.contains("[ ] is a replay key") == true)
        live.status = nil
        live.focus = .loss
        _ = press(&live, .left)
        #expect(live.status == nil, "← is a weight key in Scales, not only a replay key")
        // Keys every mode binds mean the same everywhere: no read-only notice for them.
        replay.status = nil
        _ = press(&replay, .character("l"))
        #expect(replay.status?.isError != true)
    }

    @Test func levelsInTheHelpComeFromTheState() {
        let text = KeyBindings.helpLines(mode: .live).map(\.text)
        #expect(text.contains("smoothing: off, EMA 0.6, 0.9, 0.98"))
        #expect(text.contains("zoom: all steps, last 5,000, 1,000, 200"))
        #expect(text.contains("graph style: braille, block, ascii"))
    }
}
