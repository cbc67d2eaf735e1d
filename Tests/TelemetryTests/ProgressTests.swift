import Foundation
import Testing
@testable import RunFormat
@testable import Telemetry

/// Records numbered like the trainer's: step records 0..<n, evals and end at steps completed.
private func trainerLikeRun(steps: Int = 40) -> [Record] {
    var rng = TestRNG(seed: 11)
    var out: [Record] = []
    for i in 0..<steps {
        var s = Fixtures.step(i, rng: &rng, byHead: false)
        s.spike = i == 7 || i == 23
        s.guardFallbacks = i / 10
        out.append(.step(s))
        if i == 14 {
            out.append(.event(EventRecord(step: 15, t: s.t, kind: .weight, axis: .context, band: 2, oldValue: 1, newValue: 1.5, source: .key)))
        }
        if (i + 1) % 20 == 0 {
            out.append(.eval(EvalRecord(step: i + 1, t: s.t, domains: [DomainEval(name: "train-val", loss: 3 - Double(i) / 100),
                                                                        DomainEval(name: "sonnets", loss: 3.5 - Double(i) / 200)])))
        }
    }
    out.append(.checkpoint(CheckpointRecord(step: steps, t: 4, path: "runs/x/ckpt-40.bin", bytes: 3_500_000, milliseconds: 12)))
    out.append(.end(EndRecord(step: steps, t: 4.1, reason: .completed, finalLoss: 1.5, bestValidationLoss: 2.61)))
    return out
}

@Suite("Progress lines and summary")
struct ProgressTests {
    @Test("one step line per interval, plus the first and last step, evals, events, checkpoint and end")
    func lines() {
        var f = ProgressFormatter(header: Fixtures.header(totalSteps: 40), interval: 10)
        var lines: [String] = []
        for r in trainerLikeRun() { lines += f.lines(for: r) }
        let steps = lines.filter { $0.hasPrefix("step ") }
        #expect(steps.map { $0.split(separator: " ", omittingEmptySubsequences: true)[1] } == ["1/40", "10/40", "20/40", "30/40", "40/40"])
        #expect(lines.contains { $0.hasPrefix("eval      20  train-val 2.8100 nats 4.054 bpb | sonnets") })
        #expect(lines.contains { $0 == "event     15  weight context/long (all layers) 1.00 -> 1.50 [key]" })
        #expect(lines.contains { $0.hasPrefix("ckpt      40  runs/x/ckpt-40.bin (3.5 MB, 12 ms)") })
        #expect(lines.last == "end       40  completed  final loss 1.5000  best val 2.6100")
        let line30 = steps[3]
        #expect(line30.contains("val 2.8100 (4.054 bpb) sonnets 3.4050 (4.912 bpb)"))
        #expect(line30.contains("| ctx ") && line30.contains("* ") && line30.contains("depth "))
        #expect(line30.contains("spikes 2") && line30.contains("guard 2") && line30.contains("flip ."))
        #expect(line30.contains(" eta "))
        #expect(!steps[4].contains(" eta "))
    }

    @Test("the default interval gives about 20 lines, rounded to 1-2-5")
    func defaultInterval() {
        #expect(ProgressFormatter.defaultInterval(totalSteps: 5000) == 200)
        #expect(ProgressFormatter.defaultInterval(totalSteps: 1_000_000) == 50_000)
        #expect(ProgressFormatter.defaultInterval(totalSteps: 30) == 1)
        #expect(ProgressFormatter.defaultInterval(totalSteps: 700) == 20)
    }

    @Test("the summary has final losses, best validation with its step, events, spikes and duration")
    func summary() {
        var s = RunSummary(header: Fixtures.header(totalSteps: 40))
        for r in trainerLikeRun() { s.add(r) }
        #expect(s.stepsDone == 40 && s.stepRecords == 40 && s.spikes == 2 && s.eventCount == 1 && s.checkpoints == 1)
        #expect(s.bestValidation?.step == 40 && s.bestValidation?.loss == 3 - 39.0 / 100)
        let text = s.lines().joined(separator: "\n")
        #expect(text.contains("steps       40 of 40 in 0:04 (completed)"))
        #expect(text.contains("best val    2.6100 nats 3.765 bpb at step 40 (train-val)"))
        #expect(text.contains("spikes 2, guard fallbacks 3, checkpoints 1"))
        #expect(text.contains("step 15: weight context/long (all layers) 1.00 -> 1.50 [key]"))
    }

    @Test("a session resumed from an earlier checkpoint: the steps, evaluations and end after it no longer count")
    func summaryOfAResumedRun() {
        var s = RunSummary(header: Fixtures.header(totalSteps: 40))
        let first = trainerLikeRun()
        for r in first { s.add(r) }
        #expect(s.end != nil && s.bestValidation?.step == 40)
        s.add(.event(EventRecord(step: 20, t: 9, kind: .resume_run, source: .trainer, message: "resumed from step 20")))
        #expect(s.end == nil && s.stepsDone == 20)
        let kept = first.compactMap { r -> (Double, Int)? in
            if case let .eval(e) = r, e.step <= 20, let d = e.domains.first { return (d.loss, e.step) }
            return nil
        }
        // The best of the evaluations up to step 20, or none when there were none.
        #expect(s.bestValidation?.step == kept.min { $0.0 < $1.0 }?.1)
        #expect(s.lastEval?.step == 20, "the evaluation at step 20 is the latest that counts")
        #expect(s.guardFallbacks == 1, "the count of the last step kept (19), not of the replaced ones")
        for r in first { if case let .step(x) = r, x.step >= 20 && x.step < 30 { s.add(r) } }
        #expect(s.stepsDone == 30 && s.end == nil)
    }

    @Test("the bus observer prints exactly what the synchronous path prints")
    func observerMatchesDirect() {
        let records = trainerLikeRun()
        let direct = LineBox()
        let p1 = ProgressPrinter(interval: 10, output: direct.append)
        p1.consume(header: Fixtures.header(totalSteps: 40))
        for r in records { p1.consume(r) }
        p1.printSummary()

        let observed = LineBox()
        let bus = RecordBus()
        let p2 = ProgressPrinter(interval: 10, output: observed.append)
        bus.publishHeader(Fixtures.header(totalSteps: 40))
        p2.attach(to: bus)
        for r in records { bus.publish(r) }
        bus.close()
        p2.finish()
        #expect(observed.lines == direct.lines)
        #expect(direct.lines.count > 15)
    }
}

/// Collects printed lines (from any thread).
final class LineBox: @unchecked Sendable {
    private let lock = NSLock()
    private var _lines: [String] = []
    func append(_ s: String) { lock.lock(); _lines.append(s); lock.unlock() }
    var lines: [String] { lock.lock(); defer { lock.unlock() }; return _lines }
}
