import Foundation
import Kernels
import Model
import Refinement
import Telemetry
import Testing
@testable import Training

/// A small model and a run of a few dozen steps on the embedded corpus.
func tinyConfig(steps: Int = 30, checkpointEvery: Int = 0, seed: UInt64 = 3) -> TrainingConfig {
    TrainingConfig(model: GPTConfig(layers: 3, heads: 2, channels: 32, context: 32), preset: "custom",
                   batch: 4, steps: steps, learningRate: 3e-3, seed: seed, threads: 2, evalEvery: 0,
                   checkpointEvery: checkpointEvery)
}

/// Runs a trainer to the end and returns its step records' losses (and all records).
func losses(_ config: TrainingConfig, refinement: RefinementConfig = RefinementConfig(),
            runDirectory: String? = nil, resume: Checkpoint? = nil) throws -> (losses: [Double], records: [Record]) {
    let bus = RecordBus()
    let sub = bus.subscribe(name: "test", capacity: 1 << 20)
    let trainer = try Trainer(config: config, refinement: refinement, train: try ByteDataset.embedded(),
                              evalDomains: [], bus: bus, runDirectory: runDirectory, resume: resume)
    trainer.run()
    let records = sub.drain()
    let l = records.compactMap { r -> Double? in if case let .step(s) = r { return s.loss }; return nil }
    return (l, records)
}

func temporaryDirectory() -> String {
    let path = NSTemporaryDirectory() + "gradflow-test-" + UUID().uuidString
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

@Suite struct TrainerTests {
    @Test func sameSeedAndThreadsGiveIdenticalLosses() throws {
        let a = try losses(tinyConfig()).losses
        let b = try losses(tinyConfig()).losses
        #expect(a.count == 30)
        #expect(a == b)
        let c = try losses(tinyConfig(seed: 4)).losses
        #expect(a != c)
        // And it learns: the last losses are well below the first.
        let early: Double = a.prefix(5).reduce(0, +) / 5
        let late: Double = a.suffix(5).reduce(0, +) / 5
        #expect(late < early - 0.3)
    }

    @Test func policyWarmupSetsWhenTheAdaptiveContextPolicyActs() throws {
        func contextWeights(_ flags: RefinementFlags) throws -> [[Double]] {
            try losses(tinyConfig(steps: 30), refinement: try RefinementConfig(flags: flags)).records.compactMap { r in
                if case let .step(s) = r { return s.axes.first { $0.axis == .context }?.bands.map(\.weight) }
                return nil
            }
        }
        // Default: 200 steps at 1, so a 30-step run never moves them.
        let standard = try contextWeights(RefinementFlags(adaptive: "context"))
        #expect(standard.count == 30 && standard.allSatisfy { $0.allSatisfy { $0 == 1 } })
        // --policy-warmup 5: at 1 through step 4, then the policy ramps in.
        let early = try contextWeights(RefinementFlags(adaptive: "context", policyWarmup: "5"))
        #expect(early.prefix(5).allSatisfy { $0.allSatisfy { $0 == 1 } })
        #expect(early.suffix(10).contains { $0.contains { $0 != 1 } })
        // The event that the adaptive weights are in force comes when the warm-up ends, also for 0.
        for (warmup, step) in [("5", 5), ("0", 1)] {
            let records = try losses(tinyConfig(steps: 10), refinement: try RefinementConfig(flags: RefinementFlags(adaptive: "context", policyWarmup: warmup))).records
            let inForce = records.compactMap { r -> Int? in
                if case let .event(e) = r, e.message.contains("adaptive weights in force") { return e.step }
                return nil
            }
            #expect(inForce == [step], "warm-up \(warmup)")
        }
        // The run header's refinement summary names it.
        #expect(try RefinementConfig(flags: RefinementFlags(adaptive: "context,time", timeLambda: "0.5", policyWarmup: "5")).summary
                == "context=adaptive warm-up 5; time=adaptive β 0.9,0.99 λ 0.5")
    }

    @Test func allWeightsOneReproducesPlainTrainingBitForBit() throws {
        let plain = try losses(tinyConfig(steps: 50)).losses
        let flags = RefinementFlags(contextBands: "3,7", contextWeights: "1,1,1", timeWeights: "1,1,1",
                                    depthWeights: "1,1,1")
        let unit = try RefinementConfig(flags: flags)
        #expect(!unit.isPlain)
        let refined = try losses(tinyConfig(steps: 50), refinement: unit).losses
        #expect(plain.count == 50)
        #expect(refined == plain)
        // Non-unit weights on every axis do change the run.
        let other = try RefinementConfig(flags: RefinementFlags(contextBands: "3,7", contextWeights: "0.5,1,2",
                                                               timeWeights: "0.5,1,2", depthWeights: "0.5,1,2"))
        #expect(try losses(tinyConfig(steps: 50), refinement: other).losses != plain)
    }

    @Test func resumeContinuesWithIdenticalLosses() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let full = try losses(tinyConfig(steps: 30)).losses
        // First half, checkpointing at step 15 (written at the end of the shortened run).
        var half = tinyConfig(steps: 30, checkpointEvery: 15)
        let first = try losses(half, runDirectory: dir)
        #expect(first.losses == full)
        let ckpt = try Checkpoint.read(path: Trainer.checkpointPath(runDirectory: dir, step: 15))
        #expect(ckpt.metadata.step == 15)
        half.checkpointEvery = 0
        let resumed = try losses(half, resume: ckpt).losses
        #expect(resumed == Array(full[15...]))
    }

    @Test func resumeWithAdaptiveRefinementIsExact() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let refinement = try RefinementConfig(flags: RefinementFlags(adaptive: "all"))
        let full = try losses(tinyConfig(steps: 24), refinement: refinement).losses
        _ = try losses(tinyConfig(steps: 24, checkpointEvery: 12), refinement: refinement, runDirectory: dir)
        let ckpt = try Checkpoint.read(path: Trainer.checkpointPath(runDirectory: dir, step: 12))
        #expect(ckpt.metadata.refinement == refinement)
        #expect(ckpt.sections["time.fast"] != nil)
        let resumed = try losses(tinyConfig(steps: 24), refinement: refinement, resume: ckpt).losses
        #expect(resumed == Array(full[12...]))
        // A checkpoint that says the time axis had started but lost its EMAs is refused, by name
        // (it used to resume with the axis silently restarted).
        var broken = ckpt
        broken.sections["time.slow"] = nil
        do {
            _ = try losses(tinyConfig(steps: 24), refinement: refinement, resume: broken)
            Issue.record("a resume without time.slow must fail")
        } catch let e as CheckpointError {
            // Named with the file it was read from.
            #expect(e.description == "\(try #require(ckpt.path)): checkpoint records a started time axis but has no sections time.fast and time.slow")
        }
    }

    @Test func aCheckpointSectionOfTheWrongSizeIsNamedWithItsCount() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = try losses(tinyConfig(steps: 4, checkpointEvery: 4), runDirectory: dir)
        var ckpt = try Checkpoint.read(path: Trainer.checkpointPath(runDirectory: dir, step: 4))
        let count = try #require(ckpt.sections["params"]).count
        ckpt.sections["params"]?.removeLast()
        #expect(throws: CheckpointError.self) { try ckpt.model() }
        do { _ = try ckpt.model() } catch let e as CheckpointError {
            #expect(e.description == "checkpoint section params has \(count - 1) values; this model needs \(count)")
        }
        ckpt.sections["adam.m"] = nil
        do { _ = try losses(tinyConfig(steps: 8), resume: ckpt); Issue.record("a resume without adam.m must fail") } catch let e as CheckpointError {
            #expect(e.description.contains("checkpoint section params has") || e.description == "checkpoint has no section adam.m")
        }
    }

    @Test func depthWeightsScaleEachGroupsUpdate() throws {
        // One step from the same state: the update of every tensor in group k is φ_k times the
        // plain update (weight decay included), to float rounding.
        func oneStep(_ refinement: RefinementConfig) throws -> (before: [Float], after: [Float], groups: [Int]) {
            let trainer = try Trainer(config: tinyConfig(steps: 1), refinement: refinement, train: try ByteDataset.embedded(),
                                      evalDomains: [], bus: RecordBus(), runDirectory: nil)
            let n = trainer.model.layout.count
            let before = Array(UnsafeBufferPointer(start: trainer.model.params, count: n))
            _ = trainer.trainStep()
            let after = Array(UnsafeBufferPointer(start: trainer.model.params, count: n))
            var groups: [Int] = []
            for (i, t) in trainer.model.layout.tensors.enumerated() {
                groups += Array(repeating: trainer.engine.groupOfTensor[i], count: t.count)
            }
            return (before, after, groups)
        }
        let plain = try oneStep(RefinementConfig())
        let phi = [0.5, 1.0, 2.0]
        let scaled = try oneStep(RefinementConfig(flags: RefinementFlags(depthWeights: "0.5,1,2")))
        #expect(plain.before == scaled.before)
        var worst = 0.0
        for i in 0..<plain.before.count {
            let u0 = Double(plain.after[i] - plain.before[i]), u1 = Double(scaled.after[i] - scaled.before[i])
            let expected = u0 * phi[plain.groups[i]]
            if abs(expected) > 1e-6 { worst = max(worst, abs(u1 - expected) / abs(expected)) }
        }
        #expect(worst < 2e-2, "worst relative deviation \(worst)")
        #expect(Set(plain.groups) == [0, 1, 2])
    }

    @Test func stepRecordsCarryTheStatistics() throws {
        let config = tinyConfig(steps: 5)
        let (_, records) = try losses(config, refinement: try RefinementConfig(flags: RefinementFlags(adaptive: "all")))
        guard case let .step(s)? = records.first(where: { if case .step = $0 { return true }; return false }) else {
            Issue.record("no step record")
            return
        }
        #expect(s.axes.map(\.axis) == [.context, .time, .depth])
        #expect(s.axes.allSatisfy { $0.mode == .adaptive })
        #expect(s.attentionMass.count == 3)
        for layer in s.attentionMass { #expect(abs(layer.reduce(0, +) - 1) < 1e-4) }
        #expect(s.oscillation.count == 3)
        #expect(s.axes[0].bands.allSatisfy { $0.energy > 0 })
        #expect(records.contains { if case .end = $0 { return true }; return false })
        #expect(records.contains { if case .eval = $0 { return true }; return false })
    }

    @Test func commandsApplyAtStepBoundariesWithEvents() throws {
        let bus = RecordBus()
        let sub = bus.subscribe(name: "test", capacity: 1 << 20)
        let trainer = try Trainer(config: tinyConfig(steps: 3), refinement: RefinementConfig(), train: try ByteDataset.embedded(),
                                  evalDomains: [], bus: bus, runDirectory: nil)
        trainer.commands.send(.setWeight(WeightTarget(axis: .context, band: 1), 1.5, source: .api))
        trainer.commands.send(.setWeight(WeightTarget(axis: .depth, band: 0), 99, source: .api))
        trainer.commands.send(.setWeight(WeightTarget(axis: .time, band: 0), 0.5, source: .api))
        trainer.run()
        let events = sub.drain().compactMap { r -> EventRecord? in if case let .event(e) = r { return e }; return nil }
        let weight = events.first { $0.kind == .weight }
        let w = try #require(weight)
        #expect(w.axis == .context)
        #expect(w.band == 1)
        #expect(w.oldValue == 1)
        #expect(w.newValue == 1.5)
        #expect(w.step == 0)
        let refused = events.filter { $0.kind == .refused }
        #expect(refused.count == 1)
        let depthRefusal = try #require(refused.first { $0.axis == .depth })
        #expect(depthRefusal.message.contains("99 is outside the manual range"), "\(depthRefusal.message)")
        #expect(depthRefusal.newValue == 99)
        // The time axis was off; the change turns it on instead of being refused.
        let time = try #require(events.first { $0.kind == .weight && $0.axis == .time })
        #expect(time.newValue == 0.5)
        #expect(time.message.contains("time axis on"))
    }

    /// A training state taken while the time axis was off, restored after a change turned it on,
    /// leaves the axis off with no EMAs: turned on again, it starts afresh as the first time, and
    /// the steps after the restore repeat the losses of the steps after the capture.
    @Test func restoringAStateFromBeforeTheTimeAxisDropsItsEMAs() throws {
        let trainer = try Trainer(config: tinyConfig(steps: 20), refinement: RefinementConfig(), train: try ByteDataset.embedded(),
                                  evalDomains: [], bus: RecordBus(), runDirectory: nil)
        let state = trainer.main.copy()
        func restore() {
            trainer.main.assign(from: state)
            trainer.step = 0
        }
        func steps(_ n: Int) -> [Double] { (0..<n).map { _ in let r = trainer.trainStep(); trainer.advance(); return r.loss } }
        #expect(trainer.engine.timeFilter == nil)
        let first = steps(3)
        restore()
        #expect(steps(3) == first, "restore, the same steps: the same losses")
        _ = trainer.engine.apply(.setWeight(WeightTarget(axis: .time, band: 0), 0.5, source: .key), step: trainer.step, t: 0)
        #expect(trainer.engine.timeFilter != nil)
        _ = steps(2)
        restore()
        #expect(trainer.engine.timeFilter == nil, "the restored state had the time axis off")
        #expect(!trainer.engine.weights.isOn(.time))
        #expect(steps(3) == first, "after the restore the same steps give the same losses")
    }

    /// Bug: `a` (or a weight) on the time axis of a plain run was refused ("the time axis is off").
    /// Turning it on mid-run starts its EMAs from the next gradient, is recorded, and a checkpoint
    /// taken after it resumes to exactly the losses of the uninterrupted run.
    @Test func timeAxisTurnsOnMidRunAndResumesExactly() throws {
        func run(steps: Int, dir: String?, resume: Checkpoint? = nil, checkpointEvery: Int = 0) throws -> (losses: [Double], events: [EventRecord], steps: [StepRecord]) {
            let bus = RecordBus()
            let sub = bus.subscribe(name: "test", capacity: 1 << 20)
            let trainer = try Trainer(config: tinyConfig(steps: steps, checkpointEvery: checkpointEvery), refinement: RefinementConfig(),
                                      train: try ByteDataset.embedded(), evalDomains: [], bus: bus, runDirectory: dir, resume: resume)
            if resume == nil {
                // Sent before the run: applied at step 0's boundary, like a key press.
                trainer.commands.send(.setAdaptive(.time, true, source: .key))
                trainer.commands.send(.setWeight(WeightTarget(axis: .time, band: 0), 0.5, source: .key))
            }
            trainer.run()
            let records = sub.drain()
            return (records.compactMap { if case let .step(s) = $0 { return s.loss }; return nil },
                    records.compactMap { if case let .event(e) = $0 { return e }; return nil },
                    records.compactMap { if case let .step(s) = $0 { return s }; return nil })
        }
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let plain = try losses(tinyConfig(steps: 20)).losses
        let full = try run(steps: 20, dir: dir, checkpointEvery: 10)
        let mode = try #require(full.events.first { $0.kind == .mode && $0.axis == .time })
        #expect(mode.kind != .refused)
        #expect(mode.message.contains("time axis on"), "\(mode.message)")
        #expect(full.steps.last?.axes.first { $0.axis == .time }?.bands.first?.weight == 0.5, "the step records carry the time axis")
        #expect(full.losses != plain, "the time axis acts once it is on")
        let ckpt = try Checkpoint.read(path: Trainer.checkpointPath(runDirectory: dir, step: 10))
        #expect(ckpt.sections["time.fast"] != nil, "the checkpoint holds the EMAs of an axis turned on mid-run")
        let resumed = try run(steps: 20, dir: nil, resume: ckpt)
        #expect(resumed.losses == Array(full.losses.suffix(10)))
    }
}

@Suite struct CheckpointTests {
    @Test func refusesFilesThatAreNotGoodCheckpoints() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = try losses(tinyConfig(steps: 2), runDirectory: dir)
        let good = Trainer.checkpointPath(runDirectory: dir, step: 2)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: good))
        #expect(try Checkpoint.read(path: good).metadata.step == 2)

        func expectError(_ data: Data, _ fragment: String) {
            let p = dir + "/bad-\(UUID().uuidString).gfck"
            _ = FileManager.default.createFile(atPath: p, contents: data)
            do {
                _ = try Checkpoint.read(path: p)
                Issue.record("accepted a bad checkpoint (\(fragment))")
            } catch {
                #expect("\(error)".contains(fragment), "\(error)")
                #expect("\(error)".contains(p))
            }
        }
        expectError(Data("hello, not a checkpoint".utf8), "not a gradflow checkpoint")
        expectError(bytes.prefix(bytes.count / 2), "truncated")
        var flipped = bytes
        flipped[bytes.count / 2] ^= 0x40
        expectError(flipped, "checksum")

        // A checkpoint from another model shape is refused by name.
        let ckpt = try Checkpoint.read(path: good)
        var other = tinyConfig()
        other.model.channels = 64
        #expect(throws: CheckpointError.self) {
            _ = try Trainer(config: other, refinement: RefinementConfig(), train: try ByteDataset.embedded(), evalDomains: [],
                            bus: RecordBus(), runDirectory: nil, resume: ckpt)
        }
    }

    @Test func neverOverwritesAFileThatIsNotACheckpoint() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/precious.txt"
        _ = FileManager.default.createFile(atPath: path, contents: Data("keep me".utf8))
        let meta = Checkpoint.Metadata(config: tinyConfig(), refinement: nil, step: 0, rngState: [1, 2, 3, 4], adamSteps: 0,
                                       bestValidationLoss: nil, sections: [], extra: [:])
        #expect(throws: CheckpointError.self) { try Checkpoint.write(path: path, metadata: meta, sections: []) }
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "keep me")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["precious.txt"])
    }
}

@Suite struct DataTests {
    @Test func splitIsTheLastTenPercentOfEachFile() {
        let a = [UInt8](repeating: 1, count: 100), b = [UInt8](repeating: 2, count: 50)
        let d = ByteDataset(name: "x", path: "x", files: [a, b])
        #expect(d.train.count == 90 + 45)
        #expect(d.validation.array == [UInt8](repeating: 1, count: 10) + [UInt8](repeating: 2, count: 5))
    }

    @Test func badDataGivesClearErrors() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let empty = dir + "/empty.txt"
        _ = FileManager.default.createFile(atPath: empty, contents: Data())
        #expect(throws: DataError.self) { _ = try ByteDataset.load(name: "e", path: empty) }
        do { _ = try ByteDataset.load(name: "m", path: dir + "/missing.txt") } catch {
            #expect("\(error)".contains("missing.txt: no such file"))
        }
        let small = dir + "/small.txt"
        _ = FileManager.default.createFile(atPath: small, contents: Data(String(repeating: "ab", count: 50).utf8))
        let d = try ByteDataset.load(name: "s", path: small)
        do {
            try d.check(context: 128)
            Issue.record("accepted a context longer than the data")
        } catch {
            #expect("\(error)".contains("context 128"))
        }
    }
}
