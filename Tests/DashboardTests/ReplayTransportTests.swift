import Telemetry
import Terminal
import Testing
@testable import Dashboard

@Suite struct ReplayTransportTests {
    func replay(paused: Bool = false, finished: Bool = false, recorded: Int? = 2000) -> DashboardState {
        var state = makeState(mode: .replay)
        _ = state.apply(.replayStatus(ReplayStatus(speed: 20, paused: paused, position: 1240, finished: finished,
                                                   generation: 0, recordedSteps: recorded)))
        return state
    }

    @Test(arguments: [(80, 24), (120, 40), (150, 44)])
    func headerShowsSpeedAndPositionInTheRecordingWithoutETA(width: Int, height: Int) {
        let text = screen(replay(), width, height).text
        let top = text.split(separator: "\n").first.map(String.init) ?? ""
        #expect(top.contains("REPLAY ×20"), "\(width)×\(height): \(top)")
        #expect(top.contains("▶ step 1,241 of 2,000 recorded"), "\(width)×\(height): \(top)")
        #expect(!top.contains("ETA"), "a replay has no ETA: \(top)")
    }

    @Test func pausedAndEndedReplaysSaySo() {
        let paused = screen(replay(paused: true), 150, 44).text
        #expect(paused.contains("‖ step 1,241 of 2,000 recorded"))
        #expect(paused.contains("REPLAY PAUSED"))
        var ended = replay(finished: true)
        _ = ended.apply(.records([.end(EndRecord(step: 1241, t: 122, reason: .interrupted, finalLoss: 1.4, bestValidationLoss: 1.5))]))
        let text = screen(ended, 150, 44).text
        #expect(text.contains("■ step 1,241 of 2,000 recorded"))
        #expect(text.contains("REPLAY END · INTERRUPTED"))
    }

    @Test func aLiveRunThatEndedHasNoETA() {
        var state = makeState()
        #expect(screen(state, 150, 44).text.contains("ETA"), "a running run has one")
        _ = state.apply(.records([.end(EndRecord(step: 1240, t: 122, reason: .completed, finalLoss: 1.37, bestValidationLoss: 1.5))]))
        let text = screen(state, 150, 44).text
        #expect(!text.contains("ETA"))
        #expect(text.contains("FINISHED"))
    }

    @Test func aRecordedRefusalGoesToEventsNotTheStatusLine() {
        let refusal = Record.event(EventRecord(step: 1241, t: 122, kind: .refused, axis: .context, band: 2, source: .key,
                                               message: "weight 9 is above the ceiling 4"))
        var replayed = replay()
        _ = replayed.apply(.records([refusal]))
        #expect(replayed.status == nil)
        #expect(replayed.data.events.last?.kind == .refused)
        #expect(screen(replayed, 150, 44).text.contains("✗ refused"))
        var live = makeState()
        _ = live.apply(.records([refusal]))
        #expect(live.status?.isError == true, "live, the refusal answers the viewer's own key")
    }
}

@Suite struct ReplayForkKeyTests {
    @Test func fForksFromTheLatestCheckpointAtOrBeforeThePosition() {
        var state = makeState(mode: .replay)   // position: 1,241 steps done
        state.forkSteps = [500, 1000, 1500]
        #expect(press(&state, .character("f")) == [.fork(step: 1000)])
        state.forkSteps = [1500]
        #expect(press(&state, .character("f")).isEmpty)
        #expect(state.status?.text == "fork: no checkpoint at or before step 1,241 (the first is at 1,500)")
        state.forkSteps = []
        #expect(press(&state, .character("f")).isEmpty)
        #expect(state.status?.isError == true)
        var live = makeState()
        live.forkSteps = [500]
        #expect(!press(&live, .character("f")).contains(.fork(step: 500)), "f forks only a replay")
        #expect(screen(state, 150, 44).text.contains("f fork"), "the replay footer shows the key")
    }
}
