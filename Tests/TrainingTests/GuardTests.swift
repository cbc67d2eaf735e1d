import Foundation
import Model
import Refinement
import Telemetry
import Testing
@testable import Training

/// A trainer on the embedded corpus, run to the end: its records split by kind.
struct TrainedRun {
    var steps: [StepRecord] = []
    var events: [EventRecord] = []
    var end: EndRecord?
    var trainer: Trainer

    func events(_ kind: EventRecord.Kind) -> [EventRecord] { events.filter { $0.kind == kind } }
}

func train(_ config: TrainingConfig, refinement: RefinementConfig = RefinementConfig(),
           interventions: InterventionSettings = InterventionSettings(), fault: FaultInjection? = nil,
           runDirectory: String? = nil, resume: Checkpoint? = nil) throws -> TrainedRun {
    let bus = RecordBus()
    let sub = bus.subscribe(name: "test", capacity: 1 << 20)
    let trainer = try Trainer(config: config, refinement: refinement, train: try ByteDataset.embedded(),
                              evalDomains: [], bus: bus, runDirectory: runDirectory, resume: resume)
    trainer.interventions = interventions
    trainer.fault = fault
    trainer.run()
    var out = TrainedRun(trainer: trainer)
    for r in sub.drain() {
        switch r {
        case let .step(s): out.steps.append(s)
        case let .event(e): out.events.append(e)
        case let .end(e): out.end = e
        default: break
        }
    }
    return out
}

private func guardSettings(_ body: (inout DivergenceSettings) -> Void = { _ in }) -> InterventionSettings {
    var s = InterventionSettings()
    s.divergence.snapshotEvery = 10
    body(&s.divergence)
    return s
}

@Suite struct GuardTests {
    @Test func outlierRuleHasAnAbsoluteFloor() {
        // A task learned to a loss near zero: a 0.9-nat bump is no divergence, a 1.1-nat one is.
        var nearZero = DivergenceRule()
        for i in 0..<50 { #expect(nearZero.observe(loss: 0.001 + 0.0001 * Double(i % 5), gradNorm: 0.1).divergence == nil) }
        #expect(nearZero.divergence(loss: 0.9, gradNorm: 0.1) == nil)
        #expect(nearZero.divergence(loss: 1.1, gradNorm: 0.1)?.kind == .outlier)
        // At a language model's loss: median 1.5, MAD 0.05, 10 MAD = 0.5 < the 1-nat floor.
        var text = DivergenceRule()
        for i in 0..<50 { _ = text.observe(loss: 1.5 + (i % 2 == 0 ? 0.05 : -0.05), gradNorm: 1) }
        #expect(abs(text.outlierLimit! - 2.5) < 1e-9)
        // Where the deviation is large, k · MAD decides: MAD 0.3 → 3 nats.
        var noisy = DivergenceRule()
        for i in 0..<50 { _ = noisy.observe(loss: 4 + (i % 2 == 0 ? 0.3 : -0.3), gradNorm: 1) }
        #expect(abs(noisy.outlierLimit! - 7.0) < 1e-9)
        #expect(text.divergence(loss: .nan, gradNorm: 1)?.kind == .nonFinite)
        #expect(text.divergence(loss: 1.5, gradNorm: .infinity)?.kind == .nonFinite)
    }

    @Test func climbsAreCaughtFromTheFirstSteps() {
        // An early blow-up before any window fills: the smoothed loss passes start + 1 nat.
        var early = DivergenceRule()
        let blowUp = [5.55, 5.5, 5.45, 5.4, 8, 12, 20, 30]
        let hit = blowUp.indices.first { early.observe(loss: blowUp[$0], gradNorm: 1).divergence != nil }
        #expect(hit != nil && hit! <= 6, "caught at index \(String(describing: hit))")
        // A slow climb: down to 2.5, then up 0.05 a step; no single step is an outlier, the
        // smoothed loss passes 2 × its best (5.0) … or the starting loss + 1 first.
        var slow = DivergenceRule()
        var losses = (0..<60).map { 5.5 - 3.0 * Double($0) / 59 }
        losses += (1...120).map { 2.5 + 0.05 * Double($0) }
        var first: (Int, DivergenceRule.Divergence)?
        for (i, l) in losses.enumerated() {
            if let d = slow.observe(loss: l, gradNorm: 1).divergence { first = (i, d); break }
        }
        let (at, d) = try! #require(first)
        #expect(d.kind == .climb)
        #expect(at > 60 && at < 60 + 120)
        #expect(d.message.contains("smoothed loss"))
        // The same fall without the climb is never flagged.
        #expect(DivergenceRule.replay(losses.prefix(60).enumerated().map { DivergenceRule.Step(step: $0.offset, loss: $0.element, gradNorm: 1) }).detections.isEmpty)
    }

    @Test func aTaskLearnedToNearZeroNeitherDivergesNorFloodsWarnings() {
        // Loss near 0 with bumps of up to 0.4 nats: no divergence and no warning; one of 0.8 nats
        // is a warning, not a divergence.
        var steps: [DivergenceRule.Step] = []
        for i in 0..<600 {
            var l = 0.001 * Double(1 + i % 7)
            if i % 37 == 0 { l += 0.4 }
            steps.append(.init(step: i, loss: l, gradNorm: 0.5))
        }
        let calm = DivergenceRule.replay(steps)
        #expect(calm.detections.isEmpty && calm.warnings.isEmpty)
        steps[300].loss = 0.8
        let bumped = DivergenceRule.replay(steps)
        #expect(bumped.detections.isEmpty)
        #expect(bumped.warnings.map(\.step) == [300])
        #expect(bumped.warnings[0].message.hasPrefix("loss bump"))
    }

    @Test func rollbackRestoresTheRuleOfItsSnapshot() throws {
        // Before the snapshot the loss is about 2; after it, the task is learned (0.03). The state
        // a rollback restores is judged against the losses of its own time, not the later ones.
        let trainer = try Trainer(config: tinyConfig(), refinement: RefinementConfig(), train: try ByteDataset.embedded(),
                                  evalDomains: [], bus: RecordBus(), runDirectory: nil)
        var g = DivergenceGuard(settings: DivergenceSettings())
        var state = trainer.main
        for i in 0..<50 { _ = state.guardWindow.observe(loss: 2 + 0.01 * Double(i % 3), gradNorm: 1) }
        g.takeSnapshot(of: state, step: 50)
        for i in 0..<50 { _ = state.guardWindow.observe(loss: 0.03 + 0.001 * Double(i % 3), gradNorm: 1) }
        #expect(state.guardWindow.divergence(loss: 1.9, gradNorm: 1) != nil)
        #expect(g.rollBack(&state) == 50)
        #expect(state.guardWindow.divergence(loss: 1.9, gradNorm: 1) == nil)
        #expect(state.guardWindow.divergence(loss: 3.5, gradNorm: 1) != nil)
    }

    @Test func repeatedDivergenceIsCountedInItsWindow() {
        var g = DivergenceGuard(settings: DivergenceSettings())
        #expect(g.countRollback(at: 100) == .first)
        #expect(g.countRollback(at: 500) == .first)       // 400 steps later: not the same divergence
        #expect(g.countRollback(at: 600) == .lowerRate)
        var s = DivergenceSettings()
        s.onRepeat = .stop
        var stop = DivergenceGuard(settings: s)
        #expect(stop.countRollback(at: 10) == .first)
        #expect(stop.countRollback(at: 20) == .stop)
    }

    @Test func theEvaluatorReplaysTheLiveRule() throws {
        // The same fault, once with the guard stopping the run and once off (every step
        // recorded): the replay over the recorded losses flags the step the live guard stopped at.
        let fault = FaultInjection(kind: .learningRate, step: 15, factor: 50)
        let stopped = try train(tinyConfig(steps: 40), interventions: guardSettings { $0.policy = .stop }, fault: fault)
        #expect(stopped.end?.reason == .failed)
        let message = try #require(stopped.end?.message)
        #expect(message.hasPrefix("diverged at step ") && message.contains(" at learning rate "), "\(message)")
        let off = try train(tinyConfig(steps: 40), interventions: guardSettings { $0.policy = .off }, fault: fault)
        let replay = DivergenceRule.replay(off.steps.map { .init(step: $0.step, loss: $0.loss, gradNorm: $0.gradNorm) })
        let first = try #require(replay.detections.first)
        #expect(message.hasPrefix("diverged at step \(first.step) "))
        #expect(first.step >= 15 && first.step <= 18, "caught \(first.step - 15) steps after the fault")
        // The live warnings are the replay's (same rule, same losses).
        #expect(off.events(.warning).map(\.step) == replay.warnings.map(\.step))
    }

    @Test func repeatedDivergenceLowersTheRateAndTheRunRecovers() throws {
        // lr × 200 from step 15 on (0.6, a rate far too high): rolled back, then each repeat
        // halves the rate (an lr event each) until training holds.
        let fault = FaultInjection(kind: .learningRate, step: 15, factor: 200)
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try train(tinyConfig(steps: 160, checkpointEvery: 80), interventions: guardSettings(), fault: fault, runDirectory: dir)
        let rollbacks = r.events(.rollback)
        let lowered = r.events(.lr)
        #expect(rollbacks.count >= 2)
        #expect(rollbacks.first.map { $0.step >= 15 && $0.step <= 18 } == true)
        let firstLowering = try #require(lowered.first)
        #expect(firstLowering.oldValue == 1 && firstLowering.newValue == 0.5 && firstLowering.source == .divergenceGuard)
        #expect(firstLowering.message.contains("learning rate × 0.5"))
        #expect(r.end?.reason == .completed, "\(r.end?.message ?? "")")
        #expect(r.steps.allSatisfy { $0.loss.isFinite })
        let scale = r.trainer.learningRateScale
        #expect(scale == pow(0.5, Double(lowered.count)))
        // The rate in the records is the schedule × the fault × the scale.
        let last = try #require(r.steps.last)
        #expect(last.learningRate == tinyConfig(steps: 160).schedule.rate(at: last.step) * scale * 200)
        // A resume after the lowering keeps the scale and the guard's state: the same losses.
        let ckpt = try Checkpoint.read(path: Trainer.checkpointPath(runDirectory: dir, step: 80))
        let resumed = try train(tinyConfig(steps: 160), interventions: guardSettings(), fault: fault, resume: ckpt)
        #expect(resumed.steps.map(\.loss) == r.steps.filter { $0.step >= 80 }.map(\.loss))

        // With --on-repeated-divergence stop, the second rollback ends the run, naming the rate.
        let stopped = try train(tinyConfig(steps: 160), interventions: guardSettings { $0.onRepeat = .stop }, fault: fault)
        #expect(stopped.end?.reason == .failed)
        let message = stopped.end?.message ?? ""
        #expect(message.hasPrefix("diverged at step ") && message.contains("learning rate") && message.contains("--on-repeated-divergence stop"), "\(message)")
        #expect(stopped.events(.rollback).count == 1)
        #expect(TrainingFailure.isTraining(try #require(stopped.end)))
    }

    @Test func injectedFaultsAreCaughtAtOnce() throws {
        // Late enough that the loss window is flat (early on, while the loss falls fast, the
        // window's spread is wide and a random batch is no outlier).
        for (fault, kind) in [(FaultInjection(kind: .nanGradient, step: 100), DivergenceRule.Kind.nonFinite),
                              (FaultInjection(kind: .randomBatch, step: 100), .outlier)] {
            let r = try train(tinyConfig(steps: 110), interventions: guardSettings(), fault: fault)
            let rollback = try #require(r.events(.rollback).first, "\(fault.kind)")
            #expect(rollback.step == 100, "\(fault.kind) caught at \(rollback.step)")
            #expect(rollback.message.hasPrefix(kind == .nonFinite ? "gradient norm is" : "loss outlier"), "\(rollback.message)")
            #expect(r.end?.reason == .completed)
        }
        #expect(FaultInjection.parse("lr×50@300") == FaultInjection(kind: .learningRate, step: 300, factor: 50))
        #expect(FaultInjection.parse("lrx2.5@7") == FaultInjection(kind: .learningRate, step: 7, factor: 2.5))
        #expect(FaultInjection.parse("nan-grad@3")?.kind == .nanGradient)
        #expect(FaultInjection.parse("random-bytes@3")?.kind == .randomBatch)
        for bad in ["lr@3", "nan-grad", "x@1", "lr×0@3", "random-bytes@-1"] { #expect(FaultInjection.parse(bad) == nil, "\(bad)") }
    }

    @Test func healthyRunIsLeftAloneAndUnchanged() throws {
        // A healthy run: no rollback, no lr event, and the guard's bookkeeping changes no loss.
        let guarded = try train(tinyConfig(steps: 40), interventions: guardSettings())
        let off = try train(tinyConfig(steps: 40), interventions: guardSettings { $0.policy = .off })
        #expect(guarded.events(.rollback).isEmpty && guarded.events(.lr).isEmpty)
        #expect(guarded.steps.map(\.loss) == off.steps.map(\.loss))
    }
}
