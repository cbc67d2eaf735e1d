import Foundation
import Telemetry
import Terminal
import Testing
@testable import Dashboard

/// A replay stand-in that records actions and reports a status.
final class FakeReplay: ReplayControl, @unchecked Sendable {
    var status = ReplayStatus(speed: 1, paused: false, position: 0, finished: false, generation: 0)
    var actions: [ReplayAction] = []
    func perform(_ action: ReplayAction) { actions.append(action) }
}

@Suite struct RunnerTests {
    @Test func liveQuitSendsStopAndReturnsOnTheEndRecord() {
        let bus = RecordBus()
        bus.publishHeader(SyntheticRun.header())
        let sub = bus.subscribe(name: "dashboard")
        for r in SyntheticRun.records(steps: 50) { bus.publish(r) }
        let sink = CommandRecorder()
        let screen = BufferScreen(size: Size(width: 120, height: 40))
        var frames = 0
        var stopSeenAt: Int?
        screen.onReadKey = { s in
            frames += 1
            if frames == 3 { s.pendingKeys = [.down, .down, .character("+"), .character("q")] }
            // The trainer answers .stop with an end record a few reads later.
            if stopSeenAt == nil, sink.commands.contains(.stop(source: .key)) { stopSeenAt = frames }
            if let at = stopSeenAt, frames == at + 3 {
                bus.publish(.end(EndRecord(step: 50, t: 5, reason: .interrupted, finalLoss: 2, bestValidationLoss: nil)))
            }
        }
        let runner = DashboardRunner(screen: screen, subscription: sub, commands: sink, replay: nil,
                                     options: DashboardOptions(frameInterval: 0))
        let exit = runner.run()
        guard case let .ended(end) = exit else { Issue.record("expected .ended, got \(exit)"); return }
        #expect(end.reason == .interrupted)
        #expect(sink.commands.count == 2)
        #expect(sink.commands.last == .stop(source: .key))
        if let first = sink.commands.first, case let .setWeight(t, v) = first.action {
            #expect(t == WeightTarget(axis: .context, band: 2) && abs(v - 1.36 * 1.1) < 1e-12 && first.source == .key)
        } else { Issue.record("expected a weight command first") }
        #expect(screen.text.contains("Scales"))
        #expect(screen.presentCount >= 6)
    }

    @Test func interruptBehavesLikeQ() {
        let bus = RecordBus()
        bus.publishHeader(SyntheticRun.header())
        let sub = bus.subscribe(name: "dashboard")
        let sink = CommandRecorder()
        let screen = BufferScreen(size: Size(width: 100, height: 30))
        var polls = 0
        let runner = DashboardRunner(screen: screen, subscription: sub, commands: sink, replay: nil,
                                     options: DashboardOptions(frameInterval: 0))
        let exit = runner.run(interrupted: {
            polls += 1
            if polls == 4 { bus.close() }   // the trainer went away without an end record
            return polls >= 2
        })
        #expect(exit == .quit)
        #expect(sink.commands == [.stop(source: .key)])
    }

    @Test func replayGenerationResetsRecordsAndKeysGoToTheReplay() {
        let bus = RecordBus()
        bus.publishHeader(SyntheticRun.header())
        let sub = bus.subscribe(name: "dashboard")
        for r in SyntheticRun.records(steps: 30) { bus.publish(r) }
        let replay = FakeReplay()
        let screen = BufferScreen(size: Size(width: 120, height: 40))
        var frames = 0
        var countBeforeSeek = 0
        var runnerRef: DashboardRunner?
        screen.onReadKey = { s in
            frames += 1
            if frames == 3 {
                countBeforeSeek = runnerRef?.state.data.recordCount ?? 0
                // What the replayer does on a backward seek: restart the bus, publish from earlier.
                replay.status.generation = 1
                bus.restart()
                for r in SyntheticRun.records(steps: 5) { bus.publish(r) }
                s.pendingKeys = [.left, .character("]")]
            }
            if frames == 6 { s.pendingKeys = [.character("q")] }
        }
        let runner = DashboardRunner(screen: screen, subscription: sub, commands: nil, replay: replay,
                                     options: DashboardOptions(frameInterval: 0))
        runnerRef = runner
        #expect(runner.run() == .quit)
        #expect(countBeforeSeek == 30)
        #expect(runner.state.data.recordCount == 5, "a new generation drops what the old stream built")
        #expect(runner.state.data.lastStep?.step == 5)
        #expect(replay.actions == [.seek(steps: -100), .faster])
        #expect(screen.text.contains("REPLAY"))
    }

    @Test func exitWhenFinished() {
        let bus = RecordBus()
        bus.publishHeader(SyntheticRun.header())
        let sub = bus.subscribe(name: "dashboard")
        for r in SyntheticRun.records(steps: 10) { bus.publish(r) }
        bus.publish(.end(EndRecord(step: 10, t: 1, reason: .completed, finalLoss: 3, bestValidationLoss: nil)))
        let runner = DashboardRunner(screen: BufferScreen(size: Size(width: 80, height: 24)), subscription: sub,
                                     commands: CommandRecorder(), replay: nil,
                                     options: DashboardOptions(frameInterval: 0, exitWhenFinished: true))
        guard case .ended = runner.run() else { Issue.record("expected .ended"); return }
    }

    @Test func benchmarkReportsBoundedHistory() {
        let result = DashboardBenchmark.run(steps: 20_000, width: 200, height: 60, frames: 3)
        #expect(result.medianMilliseconds > 0)
        #expect(result.historyBytes > 0 && result.historyBytes < 4_000_000)
    }
}
