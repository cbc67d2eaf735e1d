import Foundation
import Refinement
import Telemetry
import Terminal
import Testing
@testable import Dashboard

@Suite struct UpdateTests {
    let long = WeightTarget(axis: .context, band: 2)

    @Test("attached: a command the channel could not take says so and waits for no answer")
    func attachedCommandNotSent() {
        var s = steerableAttached()
        let effects = press(&s, .character("x"), .character("y"))
        guard case let .command(stop)? = effects.last else { Issue.record("no stop command: \(effects)"); return }
        #expect(s.awaitingAnswer[stop.id ?? ""] != nil)
        _ = s.apply(.notSent(stop, "cannot write runs/a/commands.jsonl: No space left on device"))
        #expect(s.awaitingAnswer.isEmpty)
        #expect(s.status?.isError == true)
        #expect(s.status?.text == "stop: not sent (cannot write runs/a/commands.jsonl: No space left on device)")
    }

    @Test("attached: a weight the channel could not take leaves no pending value and no undo entry")
    func attachedWeightNotSent() {
        var s = steerableAttached()
        _ = press(&s, .down, .down)
        let before = s.currentWeight(row: s.selectedRow)
        let effects = press(&s, .character("+"))
        guard case let .command(plus)? = effects.last else { Issue.record("no weight command: \(effects)"); return }
        #expect(s.pendingWeights[long] != nil && s.undo.count == 1)
        _ = s.apply(.notSent(plus, "cannot write runs/a/commands.jsonl: No space left on device"))
        #expect(s.pendingWeights.isEmpty && s.unconfirmedWeights.isEmpty && s.undo.isEmpty)
        #expect(s.currentWeight(row: s.selectedRow) == before)
        // The next press builds on the run's value, not on the change that never left.
        let next = weightCommands(press(&s, .character("+")))
        #expect(abs(next[0].1 - before * 1.1) < 1e-12)
    }

    @Test("attached: a run is silent by its run file's age, however recently the history was read in")
    func attachedSilenceFollowsTheRunFile() {
        var s = makeState(steps: 50, mode: .attached)
        _ = s.apply(.runFileAge(5))
        #expect(s.runStateLabel == "ATTACHED · RUNNING")
        // A dead writer's file: old records just folded do not make the run look alive.
        _ = s.apply(.records(SyntheticRun.records(steps: 10)))
        _ = s.apply(.runFileAge(3_600))
        #expect(s.runStateLabel == "SILENT 1:00:00")
        _ = s.apply(.runFileAge(nil))
        #expect(s.runStateLabel == "ATTACHED · RUNNING")
    }

    /// State with the selection on context.long (weight 1.36 in the synthetic run).
    /// An attached dashboard on a channel it can write, with its own command id prefix.
    func steerableAttached() -> DashboardState {
        var s = makeState(steps: 50, mode: .attached)
        s.canControl = true
        s.commandIdPrefix = "host-1-x"
        return s
    }

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
        // A key press makes the axis manual, so keys clamp to the manual range [0.05, 10] of the
        // context axis (Refinement's table), not to the adaptive bounds in the header.
        var s = onLong()
        _ = press(&s, .character("*"), .character("*"))     // 2.72, 5.44
        let b = weightCommands(press(&s, .character("*")))   // 10.88 → clamped to 10
        #expect(b[0].1 == 10)
        #expect(s.status?.text.contains("clamped to ceiling") == true)
        let c = press(&s, .character("+"))
        #expect(c.isEmpty, "at the ceiling the key is refused")
        #expect(s.status?.isError == true)
        #expect(s.status?.text.contains("ceiling 10.00") == true)
        var t = onLong()
        for _ in 0..<4 { _ = press(&t, .character("/")) }      // 1.36 / 16 = 0.085
        let f = weightCommands(press(&t, .character("/")))   // 0.0425 → 0.05
        #expect(f[0].1 == 0.05)
        #expect(press(&t, .character("-")).isEmpty)
    }

    /// Bug: on an adaptive axis the dashboard clamped to the adaptive bounds from the header, so a
    /// weight the trainer accepts (time.high above 1, manual range 0–6) was refused as "at its
    /// ceiling". The key uses the manual bounds the trainer checks.
    @Test func keysOnAnAdaptiveAxisUseTheManualBounds() {
        var s = makeState()
        let highRow = s.data.rows.firstIndex { $0.axis == .time && $0.band == 0 }!
        s.selectedRow = highRow
        let manual = AxisBounds.manual(.time)
        let sent = weightCommands(press(&s, .character("*")))
        #expect(sent.count == 1, "a press on time.high is not refused: \(s.status?.text ?? "")")
        #expect(sent.first.map { manual.contains($0.1) } == true)
        #expect(sent.first.map { abs($0.1 - 0.62 * 2) < 1e-12 } == true, "not clamped to the adaptive ceiling 1")
        #expect(s.data.bounds(row: highRow) == AxisBounds.bounds(.time, band: 0, mode: s.data.mode(of: .time)))
    }

    /// Bug: three fast presses gave 1.21, not 1.331, because the trainer's event for the first press
    /// cleared the pending value before a step record carried the new weight.
    @Test func fastPressesComposeWhateverTheEventTiming() {
        var s = onLong()
        func event(_ old: Double, _ new: Double) -> Record {
            .event(EventRecord(step: 1240, t: 1, kind: .weight, axis: .context, band: 2,
                               oldValue: old, newValue: new, source: .key))
        }
        let a = weightCommands(press(&s, .character("+")))[0].1
        _ = s.apply(.records([event(1.36, a)]))            // answered before any step record
        let b = weightCommands(press(&s, .character("+")))[0].1
        let c = weightCommands(press(&s, .character("+")))[0].1
        _ = s.apply(.records([event(a, b)]))               // one answered, one still in flight
        let d = weightCommands(press(&s, .character("+")))[0].1
        #expect(abs(b - 1.36 * 1.1 * 1.1) < 1e-12)
        #expect(abs(c - 1.36 * pow(1.1, 3)) < 1e-12)
        #expect(abs(d - 1.36 * pow(1.1, 4)) < 1e-12)
        _ = s.apply(.records([event(b, c), event(c, d)]))
        #expect(s.pendingWeights[long] == nil, "every press answered: nothing pending")
        #expect(abs(s.currentWeight(row: s.selectedRow) - d) < 1e-12, "the applied weight, before a step record carries it")
    }

    @Test func zeroResetsAndUndoSendsTheOldValue() {
        var s = onLong()
        let reset = weightCommands(press(&s, .character("0")))
        #expect(reset[0].1 == 1)
        let undo = press(&s, .character("u"))
        #expect(undo == [.command(.setWeight(long, 1.36, source: .key))])
        #expect(press(&s, .character("u")).isEmpty)
        #expect(s.status?.text == "nothing to undo")
    }

    /// `onLong`, with the context axis manual from a new step on.
    func onLongManual() -> (DashboardState, StepRecord) {
        var s = onLong()
        var step = s.data.lastStep!
        step.step += 1
        step.axes = step.axes.map { a in var a = a; if a.axis == .context { a.mode = .manual }; return a }
        _ = s.apply(.records([.step(step)]))
        return (s, step)
    }

    @Test("undoing a switch from manual to adaptive gives the weights back, not only the mode")
    func undoAdaptiveRestoresTheWeights() {
        var (s, step) = onLongManual()
        let before = step.axes.first { $0.axis == .context }!.bands.map(\.weight)
        #expect(press(&s, .character("a")) == [.command(.setAdaptive(.context, true, source: .key))])
        let undo = weightCommands(press(&s, .character("u")))
        #expect(undo.map(\.0.band) == [0, 1, 2] && undo.allSatisfy { $0.0.axis == .context && $0.0.layer == nil })
        #expect(undo.map(\.1) == before)
    }

    @Test func confirmedEventClearsPending() {
        var s = onLong()
        _ = press(&s, .character("+"))
        #expect(s.pendingWeights[long] != nil)
        _ = s.apply(.records([.event(EventRecord(step: 1241, t: 1, kind: .weight, axis: .context, band: 2,
                                                  oldValue: 1.36, newValue: 1.496, source: .key))]))
        #expect(s.pendingWeights[long] == nil)
        #expect(s.data.markers.last?.step == 1241)
    }

    @Test func adaptiveToggleAndItsUndo() {
        var s = onLong()
        #expect(press(&s, .character("a")) == [.command(.setAdaptive(.context, false, source: .key))])
        #expect(press(&s, .character("u")) == [.command(.setAdaptive(.context, true, source: .key))])
    }

    @Test("a pressed twice before the trainer answers toggles back; the answers settle it")
    func adaptiveTwiceQuicklyTogglesBack() {
        var s = onLong()
        #expect(press(&s, .character("a")) == [.command(.setAdaptive(.context, false, source: .key))])
        #expect(press(&s, .character("a")) == [.command(.setAdaptive(.context, true, source: .key))])
        for (old, new) in [(1.0, 0.0), (0.0, 1.0)] {
            _ = s.apply(.records([.event(EventRecord(step: 1241, t: 1, kind: .mode, axis: .context, oldValue: old,
                                                      newValue: new, source: .key))]))
        }
        #expect(s.pendingModes.isEmpty)
    }

    @Test("weight commands count as manual for a: a, u (weights back), a asks for adaptive again")
    func adaptiveAfterUndoneWeightsAsksForAdaptive() {
        var (s, _) = onLongManual()
        #expect(press(&s, .character("a")) == [.command(.setAdaptive(.context, true, source: .key))])
        #expect(weightCommands(press(&s, .character("u"))).count == 3)
        #expect(press(&s, .character("a")) == [.command(.setAdaptive(.context, true, source: .key))])
    }

    @Test("attached: an answer settles its command's pending state by id, also a refusal that names no axis")
    func attachedAnswersSettleByID() {
        var s = steerableAttached()
        _ = press(&s, .down, .down)
        let sent = press(&s, .character("a"), .character("+"))
        let ids = sent.compactMap { effect -> String? in if case let .command(c) = effect { return c.id }; return nil }
        #expect(ids.count == 2 && !s.pendingModes.isEmpty && !s.pendingWeights.isEmpty)
        for id in ids {
            var refusal = EventRecord(step: 51, t: 1, kind: .refused, source: .attach, message: "commands.jsonl:1: refused: no refiner")
            refusal.commandId = id
            _ = s.apply(.records([.event(refusal)]))
        }
        #expect(s.pendingModes.isEmpty && s.pendingWeights.isEmpty && s.awaitingAnswer.isEmpty)
    }

    @Test("after a revert, u has nothing to undo: the reverted change is gone, and no no-op command goes out")
    func undoAfterRevertSendsNothing() {
        var s = onLong()
        let before = s.currentWeight(row: s.selectedRow)
        #expect(weightCommands(press(&s, .character("*"))).count == 1)
        _ = s.apply(.records([.event(EventRecord(step: 1241, t: 1, kind: .weight, axis: .context, band: 2,
                                                  oldValue: before, newValue: 2 * before, source: .key)),
                              .event(EventRecord(step: 1260, t: 2, kind: .revert, axis: .context, band: 2, source: .key,
                                                 message: "reverted context.long"))]))
        #expect(press(&s, .character("u")).isEmpty && s.status?.text == "nothing to undo")
    }

    @Test("a screen too small for the panels takes q and nothing else")
    func tooSmallTakesOnlyQ() {
        var s = onLong()
        _ = s.apply(.resize(Size(width: 70, height: 20)))
        #expect(press(&s, .character("+"), .character("a"), .character(" "), .character("x")).isEmpty)
        #expect(s.pendingWeights.isEmpty && s.undo.isEmpty)
        var attached = makeState(steps: 50, mode: .attached)
        _ = attached.apply(.resize(Size(width: 70, height: 20)))
        #expect(press(&attached, .character("q")) == [.quit])
    }

    @Test("a session resumed from a checkpoint shows the checkpoint's step and weights, not the replaced steps'")
    func resumeGoesBackToTheCheckpointsState() {
        var s = makeState(steps: 0)
        // The last step before the checkpoint read as scalars only, as attach reads a long file in.
        var scalarsOnly = SyntheticRun.step(599)
        scalarsOnly.axes = []
        let before = (0..<599).map { Record.step(SyntheticRun.step($0)) } + [.step(scalarsOnly)]
        let checkpoint = Record.checkpoint(CheckpointRecord(step: 600, t: 600, path: "ckpt-000600.gfck", bytes: 1, milliseconds: 1))
        let replaced = (600..<606).map { Record.step(SyntheticRun.step($0, weights: [1, 0.25, 1, 1, 1, 1, 1, 1, 1])) }
        let resumed = Record.event(EventRecord(step: 600, t: 700, kind: .resume_run, source: .trainer, message: "resumed"))
        let evals = [Record.eval(SyntheticRun.eval(600)), .eval(SyntheticRun.eval(604))]
        _ = s.apply(.records(before + [evals[0], checkpoint] + replaced.prefix(4) + [evals[1]] + replaced.suffix(2)))
        #expect(s.data.stepsDone == 606 && s.data.weight(row: 1) == 0.25 && s.data.lastEval?.step == 604)
        _ = s.apply(.records([resumed]))
        #expect(s.data.stepsDone == 600 && s.data.weight(row: 1) == 1 && s.data.latestCheckpointStep == 600)
        #expect(s.data.lastEval?.step == 600 && !s.data.events.contains { $0.kind == .eval && $0.step == 604 })
        #expect(s.data.mode(of: .context) != .off, "the mode comes back with the weights")
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
        #expect(press(&s, .character(" ")) == [.command(.pause(source: .key))])
        #expect(press(&s, .character(" ")) == [.command(.resume(source: .key))])
        #expect(press(&s, .character("c")) == [.command(.checkpointNow(source: .key))])
    }

    @Test func quitInLiveModeSendsStopAndWaitsForEnd() {
        var s = makeState()
        _ = s.apply(.tick(now: 10))
        #expect(press(&s, .character("q")) == [.command(.stop(source: .key))])
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
        #expect(s.apply(.interrupt) == [.command(.stop(source: .key))])
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

    @Test func panelDigitsComeFromThePanelList() {
        #expect(Panel.keyRange == "1-6")
        #expect(Panel.keyList == "¹loss ²scales ³oscillation ⁴attention ⁵events ⁶samples")
        #expect(Panel(key: "5") == .events && Panel(key: "6") == .samples)
        #expect(Panel(key: "0") == nil && Panel(key: "7") == nil && Panel(key: "x") == nil)
    }
}
