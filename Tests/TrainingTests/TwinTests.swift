import Foundation
import Model
import Refinement
import Telemetry
import Testing
@testable import Training

/// A trainer on the embedded corpus with the given interventions, run to the end.
private func run(_ config: TrainingConfig, refinement: RefinementConfig = RefinementConfig(),
                 interventions: InterventionSettings = InterventionSettings(), runDirectory: String? = nil,
                 beforeStep: ((Trainer) -> Void)? = nil) throws -> (steps: [StepRecord], events: [EventRecord], end: EndRecord?) {
    let bus = RecordBus()
    let sub = bus.subscribe(name: "test", capacity: 1 << 20)
    let trainer = try Trainer(config: config, refinement: refinement, train: try ByteDataset.embedded(),
                              evalDomains: [], bus: bus, runDirectory: nil)
    trainer.interventions = interventions
    trainer.beforeStep = beforeStep
    var recorder: RunRecorder?
    if let runDirectory {
        let header = trainer.header(runName: "twin-test")
        bus.publishHeader(header)
        recorder = try RunRecorder.create(runDirectory: runDirectory, header: header, bus: bus)
    }
    trainer.run()
    try recorder?.finish()
    var steps: [StepRecord] = [], events: [EventRecord] = []
    var end: EndRecord?
    for r in sub.drain() {
        switch r {
        case let .step(s): steps.append(s)
        case let .event(e): events.append(e)
        case let .end(e): end = e
        default: break
        }
    }
    return (steps, events, end)
}

private func settings(twinSteps: Int = 15, _ scheduled: [(Int, Command)] = []) -> InterventionSettings {
    var s = InterventionSettings()
    s.twinSteps = twinSteps
    s.scheduled = scheduled.map { ScheduledCommand(step: $0.0, command: $0.1) }
    return s
}

/// The second context band (the tiny model's T = 32 has two: local and phrase).
private let longBand = Command.setWeight(WeightTarget(axis: .context, band: 1), 4, source: .api)

@Suite struct TwinTests {
    @Test func snapshotRoundTripIsBitForBit() throws {
        let adaptive = try RefinementConfig(flags: RefinementFlags(contextBands: "3,7", adaptive: "all"))
        let trainer = try Trainer(config: tinyConfig(steps: 40), refinement: adaptive, train: try ByteDataset.embedded(),
                                  evalDomains: [], bus: RecordBus(), runDirectory: nil)
        for _ in 0..<12 { _ = trainer.trainStep(); trainer.advance() }
        let (stateStep, state) = (trainer.step, trainer.main.copy())
        #expect(stateStep == 12)
        #expect(state.refinement.timeFilter != nil)
        func restore() {
            trainer.main.assign(from: state)
            trainer.step = stateStep
        }
        func steps() -> ([Double], [Float]) {
            var l: [Double] = []
            for _ in 0..<8 { l.append(trainer.trainStep().loss); trainer.advance() }
            return (l, Array(UnsafeBufferPointer(start: trainer.model.params, count: trainer.model.layout.count)))
        }
        let (a, pa) = steps()
        #expect(trainer.step == 20)
        restore()
        #expect(trainer.step == 12)
        let (b, pb) = steps()
        #expect(a == b)
        #expect(pa == pb)
        // The state after the restore equals the state taken: a copy, not a view.
        restore()
        let again = trainer.main.copy()
        func floats(_ p: UnsafeMutablePointer<Float>) -> [Float] { Array(UnsafeBufferPointer(start: p, count: state.optimizer.count)) }
        #expect(again.params.values == state.params.values && floats(again.optimizer.v) == floats(state.optimizer.v))
        #expect(again.refinement.timeFilter?.saveState() == state.refinement.timeFilter?.saveState())
        #expect(again.data == state.data && again.optimizer.stepCount == state.optimizer.stepCount)
        #expect(state.params.pointer != trainer.model.params, "the copy has its own arena")
    }

    @Test func aaWindowHasZeroDifferencesAndNoEffect() throws {
        let adaptive = try RefinementConfig(flags: RefinementFlags(contextBands: "3,7", adaptive: "all"))
        let r = try run(tinyConfig(steps: 40), refinement: adaptive, interventions: settings([(10, .openTwin(source: .api))]))
        let paired = r.steps.filter { $0.twin != nil }
        #expect(paired.count == 15)
        #expect(paired.first?.step == 10)
        for s in paired {
            #expect(s.twin!.loss == s.loss)
            #expect(s.twin!.delta == 0)
        }
        let verdicts = r.events.filter { $0.kind == .verdict }
        #expect(verdicts.count == 1)
        let v = try #require(verdicts.first?.verdict)
        #expect(v.word == .noEffect)
        #expect(v.delta == 0 && v.low == 0 && v.high == 0)
        #expect(v.steps == 15 && v.changeStep == 10 && !v.partial)
        #expect(v.validation.count == 1 && v.validation[0].delta == 0)
        // The main run is the plain one.
        #expect(r.steps.map(\.loss) == (try losses(tinyConfig(steps: 40), refinement: adaptive)).losses)
    }

    @Test func scriptedChangeYieldsVerdictWithNumbers() throws {
        let r = try run(tinyConfig(steps: 40), interventions: settings([(10, longBand)]))
        let weight = try #require(r.events.first { $0.kind == .weight })
        #expect(weight.step == 10 && weight.newValue == 4)
        let e = try #require(r.events.first { $0.kind == .verdict })
        let v = try #require(e.verdict)
        #expect(e.step == 25)
        #expect(v.changeStep == 10 && v.steps == 15 && !v.partial)
        let lo = try #require(v.low), hi = try #require(v.high)
        #expect(lo <= v.delta && v.delta <= hi && lo < hi)
        #expect(v.delta != 0)
        #expect(v.validation.count == 1 && v.validation[0].delta.isFinite && v.validation[0].delta != 0)
        // The verdict word follows the interval.
        #expect(v.word == (hi < 0 ? .helped : lo > 0 ? .hurt : .noEffect))
        // The twin's losses are those of a run that never had the change.
        let plain = try losses(tinyConfig(steps: 40)).losses
        let twins = r.steps.compactMap { s in s.twin.map { (s.step, $0.loss) } }
        #expect(twins.count == 15)
        for (step, loss) in twins { #expect(loss == plain[step]) }
        // The first paired step's forward pass precedes any effect of the weight.
        #expect(twins.first?.1 == r.steps[10].loss)
        #expect(r.steps[11].loss != plain[11])
    }

    @Test func newChangeClosesOpenWindowAsPartial() throws {
        let other = Command.setWeight(WeightTarget(axis: .context, band: 0), 0.5, source: .api)
        let r = try run(tinyConfig(steps: 40), interventions: settings([(10, longBand), (16, other)]))
        let verdicts = r.events.compactMap(\.verdict)
        #expect(verdicts.count == 2)
        #expect(verdicts[0].partial && verdicts[0].steps == 6 && verdicts[0].changeStep == 10)
        #expect(!verdicts[1].partial && verdicts[1].steps == 15 && verdicts[1].changeStep == 16)
    }

    @Test("several changes at one step are one window against a twin with none of them (undo after a)")
    func changesAtOneStepShareAWindow() throws {
        let other = Command.setWeight(WeightTarget(axis: .context, band: 0), 0.5, source: .api)
        let r = try run(tinyConfig(steps: 40), interventions: settings([(10, longBand), (10, other)]))
        let verdicts = r.events.filter { $0.kind == .verdict }
        #expect(verdicts.count == 1, "\(verdicts.map(\.message))")
        let e = try #require(verdicts.first), v = try #require(e.verdict)
        #expect(v.changeStep == 10 && v.steps == 15 && !v.partial)
        #expect(e.message.hasPrefix("context.long 1 → 4, context.local 1 → 0.5 at step 10") && e.axis == .context && e.band == nil, "\(e.message)")
        // The twin's losses are those of a run without either change.
        let plain = try losses(tinyConfig(steps: 40)).losses
        for s in r.steps { if let t = s.twin { #expect(t.loss == plain[s.step]) } }
    }

    @Test("a weight set to the value it already has is answered but opens no window and closes none")
    func anUnchangedWeightOpensNoWindow() throws {
        let same = Command.setWeight(WeightTarget(axis: .context, band: 1), 4, source: .api)
        let r = try run(tinyConfig(steps: 40), interventions: settings([(10, longBand), (14, same)]))
        #expect(r.events.filter { $0.kind == .weight }.map(\.step) == [10, 14])
        let verdicts = r.events.compactMap(\.verdict)
        #expect(verdicts.count == 1 && verdicts[0].changeStep == 10 && verdicts[0].steps == 15 && !verdicts[0].partial)
    }

    @Test func revertMakesTheTwinTheMainRun() throws {
        let plain = try losses(tinyConfig(steps: 40)).losses
        let r = try run(tinyConfig(steps: 40), interventions: settings(twinSteps: 20, [(10, longBand), (18, .revert(source: .api))]))
        #expect(r.events.contains { $0.kind == .revert })
        let verdict = try #require(r.events.first { $0.kind == .verdict }?.verdict)
        #expect(verdict.partial && verdict.steps == 8)
        let losses = r.steps.map(\.loss)
        #expect(losses.count == 40)
        #expect(Array(losses[11..<18]) != Array(plain[11..<18]))
        // From the revert on, the run is the one that never had the change, bit for bit.
        #expect(Array(losses[18...]) == Array(plain[18...]))
        // A revert with no twin is refused.
        let none = try run(tinyConfig(steps: 12), interventions: settings([(5, .revert(source: .api))]))
        #expect(none.events.contains { $0.kind == .refused && $0.message.contains("nothing to revert") })
    }

    @Test("a target share on a manual context axis is kept but opens no twin window: it changes nothing yet")
    func aTargetOnAManualAxisOpensNoWindow() throws {
        let target = Command(.setTarget(band: 1, share: 0.4), source: .api)
        var weights = RefinementConfig()
        weights.contextWeights = [1, 1]  // two bands at the tiny config's T = 32
        let manual = try run(tinyConfig(steps: 30), refinement: weights, interventions: settings([(10, target)]))
        #expect(manual.events.contains { $0.kind == .target }, "\(manual.events.map { "\($0.kind) \($0.message)" })")
        #expect(manual.steps.allSatisfy { $0.twin == nil })
        var adaptive = RefinementConfig()
        adaptive.adaptive = [.context]
        let steered = try run(tinyConfig(steps: 30), refinement: adaptive, interventions: settings([(10, target)]))
        #expect(steered.steps.contains { $0.twin != nil }, "on an adaptive axis the target steers the run: a window opens; \(steered.events.map { "\($0.kind) \($0.message)" })")
    }

    @Test func twinsOffMeansNoWindow() throws {
        let r = try run(tinyConfig(steps: 30), interventions: settings(twinSteps: 0, [(10, longBand)]))
        #expect(r.steps.allSatisfy { $0.twin == nil })
        #expect(!r.events.contains { $0.kind == .verdict })
    }

    @Test func rollbackAfterInjectedFaultContinuesFinite() throws {
        var s = settings()
        s.divergence.snapshotEvery = 10
        s.scheduled = [ScheduledCommand(step: 22, command: longBand)]
        // A poisoned parameter at step 25: the loss is NaN.
        let r = try run(tinyConfig(steps: 40), interventions: s) { t in
            if t.step == 25 { t.model.params[0] = .nan }
        }
        #expect(r.end?.reason == .completed)
        let rollback = try #require(r.events.first { $0.kind == .rollback })
        let info = try #require(rollback.rollback)
        #expect(rollback.step == 25)
        #expect(info.restoredStep == 20 && info.stepsLost == 6 && info.batchesSkipped == 6)
        #expect(info.reverted.count == 1 && info.reverted[0].contains("context"))
        #expect(r.steps.count == 39)          // the bad step has no step record
        #expect(!r.steps.contains { $0.step == 25 })
        #expect(r.steps.allSatisfy { $0.loss.isFinite })
        // The change's window closed (partial) before the rollback.
        #expect(r.events.first { $0.kind == .verdict }?.verdict?.partial == true)

        // A finite blow-up (parameters × 200) is caught by the outlier rule (median + k·MAD).
        var t = settings()
        t.divergence.snapshotEvery = 10
        t.divergence.rule.window = 10
        let spiked = try run(tinyConfig(steps: 40), interventions: t) { tr in
            if tr.step == 33 {
                let p = tr.model.params + tr.model.layout.wte
                for i in 0..<tr.model.layout.tensors[0].count { p[i] *= 200 }
            }
        }
        let spike = try #require(spiked.events.first { $0.kind == .rollback })
        #expect(spike.message.contains("MAD"))
        #expect(spike.rollback?.restoredStep == 30)
        #expect(spiked.end?.reason == .completed)

        // With the guard off, the NaN ends the run as before.
        var off = settings()
        off.divergence.policy = .off
        let failed = try run(tinyConfig(steps: 40), interventions: off) { tr in
            if tr.step == 25 { tr.model.params[0] = .nan }
        }
        #expect(failed.end?.reason == .failed)
        // skip drops the bad batch without going back.
        // skip drops bad batches; three in a row mean the state is bad, and it rolls back.
        var skip = settings()
        skip.divergence.policy = .skip
        skip.divergence.snapshotEvery = 10
        let skipped = try run(tinyConfig(steps: 40), interventions: skip) { tr in
            if tr.step == 25 { tr.model.params[0] = .nan }
        }
        #expect(skipped.end?.reason == .completed)
        #expect(skipped.events.filter { $0.message.hasPrefix("batch skipped") }.map(\.step) == [25, 26, 27])
        #expect(skipped.events.first { $0.kind == .rollback }?.rollback?.restoredStep == 20)
        #expect(skipped.steps.allSatisfy { $0.loss.isFinite })
    }

    @Test func scheduleReplayReproducesLossesBitForBit() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let other = Command.setWeight(WeightTarget(axis: .depth, band: 1), 2, source: .api)
        let first = try run(tinyConfig(steps: 40), interventions: settings([(8, longBand), (20, other), (30, .setAdaptive(.context, true, source: .api))]),
                            runDirectory: dir)
        let scheduled = try Schedule.read(path: dir) { _ in [] }
        #expect(scheduled.map(\.step) == [8, 20, 30])
        #expect(scheduled.first?.command == .setWeight(WeightTarget(axis: .context, band: 1), 4, source: .schedule))
        var again = settings()
        again.scheduled = scheduled
        let second = try run(tinyConfig(steps: 40), interventions: again)
        #expect(first.steps.map(\.loss) == second.steps.map(\.loss))
        #expect(second.events.filter { $0.kind == .weight || $0.kind == .mode }.count == 3)

        // A text schedule in the --change syntax, band names resolved.
        let file = dir + "/changes.txt"
        try "# two changes\n8:context.phrase=4\n\n20:depth.1=2   # by index\n30:context=adaptive\n".write(toFile: file, atomically: true, encoding: .utf8)
        let names: (ScaleAxis) -> [String] = { $0 == .context ? ["local", "phrase", "long"] : ["lower", "middle", "upper"] }
        let text = try Schedule.read(path: file, bandNames: names)
        #expect(text.map(\.command) == scheduled.map(\.command))
        #expect(throws: InterventionError.self) { try Schedule.read(path: dir + "/nope", bandNames: names) }
        try "8:context.far=2\n".write(toFile: file, atomically: true, encoding: .utf8)
        #expect(throws: InterventionError.self) { try Schedule.read(path: file, bandNames: names) }
    }

    @Test func changeSpecParsing() throws {
        let a = try ChangeSpec.parse("200:context.long=4", place: "--change")
        #expect(a.step == 200 && a.axis == .context && a.band == "long" && a.value == 4)
        let b = try ChangeSpec.parse("300:time=adaptive", place: "--change")
        #expect(b.adaptive == true && b.band == nil)
        for bad in ["context.long=4", "x:context.long=4", "5:space.long=1", "5:context.long=", "5:time=auto", "5:context.=2"] {
            #expect(throws: InterventionError.self) { try ChangeSpec.parse(bad, place: "--change") }
        }
    }

    @Test func batchMeansInterval() {
        var d = PairedDifferences()
        for _ in 0..<20 { d.append(0) }
        #expect(d.interval! == (0, 0))
        #expect(d.word == .noEffect)
        var up = PairedDifferences()
        for i in 0..<100 { up.append(0.01 + 0.001 * Double(i % 3)) }
        #expect(up.word == .hurt)
        var down = PairedDifferences()
        for i in 0..<100 { down.append(-0.01 - 0.001 * Double(i % 3)) }
        #expect(down.word == .helped)
        var noise = PairedDifferences()
        for i in 0..<100 { noise.append(0.05 * sin(Double(i) * 1.7)) }
        #expect(noise.word == .noEffect)
        var few = PairedDifferences()
        few.append(1); few.append(1); few.append(1)
        #expect(few.interval == nil && few.word == .noEffect)
    }
}
