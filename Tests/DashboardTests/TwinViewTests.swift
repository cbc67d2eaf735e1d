import Telemetry
import Terminal
import Testing
@testable import Dashboard

@Suite struct TwinViewTests {
    /// The synthetic run, then a context.long change at step 1240 and `paired` steps of its window.
    func stateWithWindow(paired: Int) -> DashboardState {
        var state = makeState()
        let last = state.data.lastStep!
        var records: [Record] = [.event(EventRecord(step: 1240, t: 100, kind: .weight, axis: .context, band: 2,
                                                    oldValue: 1.36, newValue: 1.5, source: .key))]
        for k in 0..<paired {
            var s = last
            s.step = 1240 + k
            s.loss = 1.5 - 0.001 * Double(k)
            s.twin = TwinSample(loss: s.loss + 0.01, pairedSteps: k + 1, windowSteps: 200, changeStep: 1240,
                                delta: -0.01, low: k >= 3 ? -0.015 : nil, high: k >= 3 ? -0.005 : nil)
            records.append(.step(s))
        }
        _ = state.apply(.records(records))
        return state
    }

    @Test func openWindowShowsGhostLineHeaderAndScalesMark() {
        let state = stateWithWindow(paired: 120)
        #expect(state.data.twinWindow?.band == 2)
        #expect(state.data.twinLoss.count == 120)
        let text = screen(state, 150, 44).text
        #expect(text.contains("twin 120/200"))
        #expect(text.contains("twin ┄"))
        #expect(text.contains("paired Δ −0.010 [−0.015, −0.005] 120/200"))
        #expect(text.contains("M◐") || text.contains("A◐"), "the changed band's row marks the open window")
    }

    @Test func verdictClosesTheWindowAndShowsOnTheChange() {
        var state = stateWithWindow(paired: 200)
        var e = EventRecord(step: 1440, t: 120, kind: .verdict, axis: .context, band: 2, source: .twin,
                            message: "context.long 1.36 → 1.5 at step 1240: helped")
        e.verdict = VerdictInfo(changeStep: 1240, word: .helped, delta: -0.012, low: -0.018, high: -0.006, steps: 200,
                                partial: false, validation: [.init(name: "val:shakespeare", delta: -0.01)])
        var after = state.data.lastStep!
        after.step = 1440
        after.twin = nil
        _ = state.apply(.records([.event(e), .step(after)]))
        #expect(state.data.twinWindow == nil)
        let change = state.data.events.last { $0.kind == .weight }
        #expect(change?.verdict == "helped · train −0.012 nats [−0.018, −0.006] over 200 paired steps · val:shakespeare −0.010")
        let text = screen(state, 200, 60).text
        #expect(text.contains("verdict helped · train −0.012 nats"))
        #expect(!text.contains("twin 200/200"))
        #expect(!text.contains("M◐") && !text.contains("A◐"))
    }

    @Test func keysOpenAnAACheckAndRevert() {
        var state = makeState()
        let effects = press(&state, .character("b"), .character("r"))
        #expect(effects.contains { if case .command(.openTwin(source: .key)) = $0 { return true }; return false })
        #expect(effects.contains { if case .command(.revert(source: .key)) = $0 { return true }; return false })
        var replay = makeState(mode: .replay)
        #expect(press(&replay, .character("r")).isEmpty)
        #expect(replay.status?.text.contains("read-only") == true)
    }
}
