import Foundation
import Refinement
import Telemetry
import Testing
@testable import Training

/// The twin never leaks into the main run (issue 18's invariants), with every stateful feature on:
/// adaptive context and depth policies (short warm-up), Grokfast on the time axis, and the
/// divergence guard with its rolling snapshots.
@Suite struct TwinInvariantTests {
    static func mainLosses(_ scheduled: [(Int, Command)], twinSteps: Int) throws -> (losses: [Double], events: [EventRecord]) {
        let refinement = try RefinementConfig(flags: RefinementFlags(adaptive: "context,depth", grokfast: "0.98,2", policyWarmup: "4"))
        let bus = RecordBus()
        let sub = bus.subscribe(name: "test", capacity: 1 << 20)
        let trainer = try Trainer(config: tinyConfig(steps: 40), refinement: refinement, train: try ByteDataset.embedded(),
                                  evalDomains: [], bus: bus, runDirectory: nil)
        var s = InterventionSettings()
        s.twinSteps = twinSteps
        s.divergence.snapshotEvery = 7
        s.scheduled = scheduled.map { ScheduledCommand(step: $0.0, command: $0.1) }
        trainer.interventions = s
        trainer.run()
        var losses: [Double] = [], events: [EventRecord] = []
        for r in sub.drain() {
            if case let .step(st) = r { losses.append(st.loss) }
            if case let .event(e) = r { events.append(e) }
        }
        return (losses, events)
    }

    @Test func anAAWindowLeavesTheMainRunBitForBit() throws {
        let plain = try Self.mainLosses([], twinSteps: 12)
        let aa = try Self.mainLosses([(10, .openTwin(source: .api)), (25, .openTwin(source: .api))], twinSteps: 12)
        #expect(aa.events.filter { $0.kind == .verdict }.count == 2)
        #expect(plain.losses.count == 40 && aa.losses == plain.losses)
    }

    @Test func aChangeWithItsTwinEqualsTheChangeWithoutOne() throws {
        let change = Command.setWeight(WeightTarget(axis: .depth, band: 0), 1.5, source: .api)
        let withTwin = try Self.mainLosses([(10, change)], twinSteps: 15)
        let withoutTwin = try Self.mainLosses([(10, change)], twinSteps: 0)
        #expect(withTwin.events.contains { $0.kind == .verdict })
        #expect(!withoutTwin.events.contains { $0.kind == .verdict })
        #expect(withTwin.losses.count == 40 && withTwin.losses == withoutTwin.losses)
    }

    /// An A/A twin opened after the time axis was turned on mid-run starts from the same state,
    /// EMAs included, so it steps exactly as the main run does: d = 0 at every paired step.
    @Test func anAATwinAfterTheTimeAxisWasTurnedOnTracksTheMainRunExactly() throws {
        let refinement = try RefinementConfig(flags: RefinementFlags(adaptive: "context,depth", policyWarmup: "4"))
        let bus = RecordBus()
        let sub = bus.subscribe(name: "test", capacity: 1 << 20)
        let trainer = try Trainer(config: tinyConfig(steps: 30), refinement: refinement, train: try ByteDataset.embedded(),
                                  evalDomains: [], bus: bus, runDirectory: nil)
        var s = InterventionSettings()
        s.twinSteps = 8
        s.scheduled = [ScheduledCommand(step: 4, command: .setWeight(WeightTarget(axis: .time, band: 0), 0.5, source: .api)),
                       ScheduledCommand(step: 16, command: .openTwin(source: .api))]
        trainer.interventions = s
        trainer.run()
        var paired: [(main: Double, twin: Double)] = []
        for r in sub.drain() {
            if case let .step(st) = r, let twin = st.twin, twin.changeStep == 16 { paired.append((st.loss, twin.loss)) }
        }
        #expect(paired.count == 8)
        for p in paired { #expect(p.main == p.twin) }
    }
}
