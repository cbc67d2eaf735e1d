import Telemetry
import Terminal
import Testing
@testable import Dashboard

@Suite struct UpdateTests {
    let long = WeightTarget(axis: .context, band: 2)

    /// State with the selection on context.long (weight 1.36 in the synthetic run).
    func onLong() -> DashboardState {
        var s = makeState()
        _ = press(&s, .down, .down)
        return s
    }

    @Test func plusMultipliesBy1point1AndBuildsOnPending() {
        var s = onLong()
        let first = weightCommands(press(&s, .character("+")))
        #expect(first.count == 1)
        #expect(first[0].0 == long)
        #expect(abs(first[0].1 - 1.36 * 1.1) < 1e-12)
        let second = weightCommands(press(&s, .character("+")))
        #expect(abs(second[0].1 - 1.36 * 1.1 * 1.1) < 1e-12, "the second press starts from the pending value")
        let minus = weightCommands(press(&s, .character("-")))
        #expect(abs(minus[0].1 - 1.36 * 1.1) < 1e-12)
        #expect(s.status?.text.contains("context.long") == true)
    }

    @Test func starDoublesAndSlashHalves() {
        var s = onLong()
        #expect(abs(weightCommands(press(&s, .character("*")))[0].1 - 2.72) < 1e-12)
        #expect(abs(weightCommands(press(&s, .character("/")))[0].1 - 1.36) < 1e-12)
    }

    @Test func arrowsChangeWeightsOnlyInTheScalesPanel() {
        var s = onLong()
        #expect(weightCommands(press(&s, .right)).count == 1)
        #expect(weightCommands(press(&s, .shiftRight)).count == 1)
        _ = press(&s, .tab)
        #expect(s.focus == .oscillation)
        #expect(weightCommands(press(&s, .right)).isEmpty)
    }

    @Test func boundsClampThenRefuse() {
        var s = onLong()
        let a = weightCommands(press(&s, .character("*")))   // 2.72
        let b = weightCommands(press(&s, .character("*")))   // 5.44 → clamped to 4
        #expect(abs(a[0].1 - 2.72) < 1e-12)
        #expect(b[0].1 == 4)
        #expect(s.status?.text.contains("clamped to ceiling") == true)
        let c = press(&s, .character("+"))
        #expect(c.isEmpty, "at the ceiling the key is refused")
        #expect(s.status?.isError == true)
        #expect(s.status?.text.contains("ceiling 4.00") == true)
        // Floor: 0.5 for context.
        var t = onLong()
        _ = press(&t, .character("/"))                        // 0.68
        let f = weightCommands(press(&t, .character("/")))   // 0.34 → 0.5
        #expect(f[0].1 == 0.5)
        #expect(press(&t, .character("-")).isEmpty)
    }

    @Test func zeroResetsAndUndoSendsTheOldValue() {
        var s = onLong()
        let reset = weightCommands(press(&s, .character("0")))
        #expect(reset[0].1 == 1)
        let undo = press(&s, .character("u"))
        #expect(undo == [.command(.setWeight(long, 1.36, source: "key"))])
        #expect(press(&s, .character("u")).isEmpty)
        #expect(s.status?.text == "nothing to undo")
    }

    @Test func confirmedEventClearsPending() {
        var s = onLong()
        _ = press(&s, .character("+"))
        #expect(s.pendingWeights[long] != nil)
        _ = s.apply(.records([.event(EventRecord(step: 1241, t: 1, kind: .weight, axis: .context, band: 2,
                                                  oldValue: 1.36, newValue: 1.496, source: "key"))]))
        #expect(s.pendingWeights[long] == nil)
        #expect(s.data.markers.last?.step == 1241)
    }

    @Test func adaptiveToggleAndItsUndo() {
        var s = onLong()
        #expect(press(&s, .character("a")) == [.command(.setAdaptive(.context, false, source: "key"))])
        #expect(press(&s, .character("u")) == [.command(.setAdaptive(.context, true, source: "key"))])
    }

    @Test func focusCyclesForwardAndBack() {
        var s = makeState()
        #expect(s.focus == .scales)
        _ = press(&s, .tab)
        #expect(s.focus == .oscillation)
        _ = press(&s, .backTab, .backTab)
        #expect(s.focus == .loss)
        _ = press(&s, .backTab)
        #expect(s.focus == .events)
        _ = press(&s, .character("5"))
        #expect(s.focus != .events, "hiding the focused panel moves the focus")
    }

    @Test func arrowsScrollEventsWhenFocused() {
        var s = makeState()
        _ = press(&s, .backTab, .backTab)
        #expect(s.focus == .events)
        _ = press(&s, .down, .down)
        #expect(s.eventsScroll == 2 && s.selectedRow == 0)
        #expect(screen(s, 150, 44).text.contains("2 newer above"))
        _ = press(&s, .home)
        #expect(s.eventsScroll == 0)
    }

    @Test func slashFiltersEventsWhenFocusedWithALiveCount() {
        var s = makeState()
        let all = s.data.events.count
        let evals = s.data.events.filter { $0.kind == .eval }.count
        #expect(all > evals && evals > 0)
        _ = press(&s, .backTab, .backTab)
        #expect(s.focus == .events)
        #expect(press(&s, .character("/")).isEmpty, "/ with Events focused sends no weight command")
        #expect(s.editingEventFilter)
        _ = press(&s, .character("E"), .character("v"), .character("a"), .character("x"))
        #expect(s.eventFilter == "Evax" && s.filteredEvents.isEmpty)
        #expect(screen(s, 150, 44).text.contains("no event matches"))
        _ = press(&s, .backspace, .character("l"))
        #expect(s.filteredEvents.count == evals, "case-insensitive match on the kind")
        #expect(screen(s, 150, 44).text.contains("/Eval▏ \(evals) of \(all)"))
        _ = press(&s, .enter)
        #expect(!s.editingEventFilter && s.eventFilter == "Eval")
        #expect(screen(s, 150, 44).text.contains("/Eval \(evals) of \(all)"))
        _ = press(&s, .escape)
        #expect(s.eventFilter.isEmpty && s.filteredEvents.count == all)
        // Elsewhere / still halves the selected weight.
        var t = onLong()
        #expect(weightCommands(press(&t, .character("/"))).count == 1 && !t.editingEventFilter)
    }

    @Test func typingIntoTheFilterSendsNoCommands() {
        var s = makeState()
        _ = press(&s, .backTab, .backTab, .character("/"))
        let effects = press(&s, .character("q"), .character("+"), .character(" "), .character("c"))
        #expect(effects.isEmpty && !s.quitting && s.eventFilter == "q+ c")
        _ = press(&s, .escape)
        #expect(!s.editingEventFilter && s.eventFilter.isEmpty)
    }

    @Test func selectionStaysInRange() {
        var s = makeState()
        _ = press(&s, .up)
        #expect(s.selectedRow == 0)
        for _ in 0..<20 { _ = press(&s, .character("j")) }
        #expect(s.selectedRow == s.data.rows.count - 1)
    }

    @Test func displayToggles() {
        var s = makeState()
        _ = press(&s, .character("l"))
        #expect(s.logY)
        _ = press(&s, .character("s"))
        #expect(s.smoothing == 0.6)
        _ = press(&s, .character("s"), .character("s"), .character("s"))
        #expect(s.smoothing == 0)
        _ = press(&s, .character("z"))
        #expect(s.zoom == 5000)
        _ = press(&s, .character("t"))
        #expect(s.themeIndex == 1)
        _ = press(&s, .character("v"))
        #expect(s.perHead)
    }

    @Test func pauseAndCheckpointSendCommands() {
        var s = makeState()
        #expect(press(&s, .character(" ")) == [.command(.pause)])
        #expect(press(&s, .character(" ")) == [.command(.resume)])
        #expect(press(&s, .character("c")) == [.command(.checkpointNow)])
    }

    @Test func quitInLiveModeSendsStopAndWaitsForEnd() {
        var s = makeState()
        _ = s.apply(.tick(now: 10))
        #expect(press(&s, .character("q")) == [.command(.stop)])
        #expect(s.quitting)
        #expect(s.apply(.tick(now: 11)).isEmpty)
        let end = Record.end(EndRecord(step: 1241, t: 130, reason: .interrupted, finalLoss: 1.4, bestValidationLoss: 1.5))
        #expect(s.apply(.records([end])) == [.quit])
    }

    @Test func quitGivesUpAfterTheTimeout() {
        var s = makeState()
        _ = s.apply(.tick(now: 10))
        _ = press(&s, .character("q"))
        #expect(s.apply(.tick(now: 10 + DashboardState.quitTimeout + 0.1)) == [.quit])
    }

    @Test func secondQLeavesAtOnce() {
        var s = makeState()
        _ = press(&s, .character("q"))
        #expect(press(&s, .character("q")) == [.quit])
    }

    @Test func interruptActsLikeQ() {
        var s = makeState()
        #expect(s.apply(.interrupt) == [.command(.stop)])
    }

    @Test func replayKeysDriveTheReplay() {
        var s = makeState(mode: .replay)
        #expect(press(&s, .character(" ")) == [.replay(.togglePause)])
        #expect(press(&s, .character("]")) == [.replay(.faster)])
        #expect(press(&s, .character("[")) == [.replay(.slower)])
        #expect(press(&s, .character(".")) == [.replay(.stepOnce)])
        #expect(press(&s, .right) == [.replay(.seek(steps: 100))])
        #expect(press(&s, .left) == [.replay(.seek(steps: -100))])
        #expect(press(&s, .character("+")).isEmpty)
        #expect(s.status?.text.contains("read-only") == true)
        #expect(press(&s, .character("q")) == [.quit])
    }

    @Test func resetRecordsKeepsPreferences() {
        var s = makeState(mode: .replay)
        _ = press(&s, .character("l"), .character("s"), .down)
        _ = s.apply(.resetRecords)
        #expect(s.data.recordCount == 0)
        #expect(s.data.rows.count == 9, "the header survives")
        #expect(s.logY && s.smoothing == 0.6 && s.selectedRow == 1)
    }

    @Test func pureUpdateLeavesTheInputAlone() {
        let s = onLong()
        let (next, effects) = DashboardState.update(s, .key(.character("+")))
        #expect(s.pendingWeights.isEmpty)
        #expect(next.pendingWeights[long] != nil)
        #expect(effects.count == 1)
    }

    @Test func readOnlyLiveViewRefusesCommands() {
        var s = DashboardState(mode: .live, canControl: false)
        _ = s.apply(.header(SyntheticRun.header()))
        #expect(press(&s, .character("+")).isEmpty)
        #expect(s.status?.text.contains("read-only") == true)
        #expect(press(&s, .character("q")) == [.quit])
    }
}
