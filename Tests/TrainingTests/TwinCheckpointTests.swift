import Foundation
import Model
import Refinement
import Telemetry
import Testing
@testable import Training

/// The second context band (the tiny model's T = 32 has two: local and phrase).
private let phraseBand = Command.setWeight(WeightTarget(axis: .context, band: 1), 4, source: .api)

private func settings(twinSteps: Int = 20, _ scheduled: [(Int, Command)]) -> InterventionSettings {
    var s = InterventionSettings()
    s.twinSteps = twinSteps
    s.scheduled = scheduled.map { ScheduledCommand(step: $0.0, command: $0.1) }
    return s
}

/// A verdict event without its wall-clock time: what must match bit for bit.
private func verdicts(_ r: TrainedRun) -> [EventRecord] {
    r.events(.verdict).map { var e = $0; e.t = 0; return e }
}

@Suite struct TwinCheckpointTests {
    @Test func aResumeInsideAWindowWritesTheUninterruptedVerdict() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // Change at step 10, 20-step window (verdict at 30); a checkpoint at 15, inside it.
        let plan = settings([(10, phraseBand)])
        let full = try train(tinyConfig(steps: 40, checkpointEvery: 15), interventions: plan, runDirectory: dir)
        let expected = verdicts(full)
        #expect(expected.count == 1 && expected[0].step == 30 && expected[0].verdict?.partial == false)

        let ckpt = try Checkpoint.read(path: Trainer.checkpointPath(runDirectory: dir, step: 15))
        #expect(ckpt.version == 2)
        #expect(ckpt.metadata.extra["twin"] != nil && ckpt.sections["twin.params"] != nil)
        let resumed = try train(tinyConfig(steps: 40), interventions: plan, resume: ckpt)
        // The same verdict event (all but its time), the same twin samples and losses.
        #expect(verdicts(resumed) == expected)
        let tail = full.steps.filter { $0.step >= 15 }
        #expect(resumed.steps.map(\.loss) == tail.map(\.loss))
        #expect(resumed.steps.map(\.twin) == tail.map(\.twin))
        #expect(resumed.steps.first?.twin?.pairedSteps == 6)
    }

    @Test func theTwinKeptForARevertSurvivesTooAndOldCheckpointsLoad() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // Window 10…20 closes at 20; a checkpoint at 24 holds the kept twin; revert at 28.
        let plan = settings(twinSteps: 10, [(10, phraseBand), (28, .revert(source: .api))])
        let full = try train(tinyConfig(steps: 36, checkpointEvery: 24), interventions: plan, runDirectory: dir)
        #expect(full.events(.revert).count == 1)
        let path = Trainer.checkpointPath(runDirectory: dir, step: 24)
        let ckpt = try Checkpoint.read(path: path)
        let resumed = try train(tinyConfig(steps: 36), interventions: plan, resume: ckpt)
        #expect(resumed.events(.revert).map(\.message) == full.events(.revert).map(\.message))
        #expect(resumed.steps.map(\.loss) == full.steps.filter { $0.step >= 24 }.map(\.loss))

        // The same state written as version 1 (no twin, no guard state) still loads: the run goes
        // on without a twin, so the revert is refused, as it was before version 2.
        var meta = ckpt.metadata
        for key in ["twin", "guard", "lr.scale"] { meta.extra[key] = nil }
        let names = ckpt.metadata.sections.map(\.name).filter { !$0.hasPrefix("twin.") }
        let old = dir + "/old.gfck"
        try withPointers(names.map { ($0, ckpt.sections[$0]!) }) { _ = try Checkpoint.write(path: old, metadata: meta, sections: $0, version: 1) }
        let v1 = try Checkpoint.read(path: old)
        #expect(v1.version == 1)
        let fromOld = try train(tinyConfig(steps: 36), interventions: plan, resume: v1)
        #expect(fromOld.steps.prefix(4).map(\.loss) == full.steps.filter { $0.step >= 24 }.prefix(4).map(\.loss))
        #expect(fromOld.events(.refused).contains { $0.message.contains("nothing to revert") })

        // A version this gradflow does not know is refused by name.
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: old)))
        bytes[8] = 3
        let future = dir + "/future.gfck"
        _ = FileManager.default.createFile(atPath: future, contents: Data(bytes))
        #expect {
            _ = try Checkpoint.read(path: future)
        } throws: { "\($0)".contains("checkpoint format version 3; this gradflow reads versions 1–2") }
    }
}
