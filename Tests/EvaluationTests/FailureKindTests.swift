import Foundation
import Model
import Refinement
import Telemetry
import Testing
@testable import Training
@testable import Evaluation

/// The end record's `failure` kind (schema 1.3): the trainer writes it, the codec keeps it, and the
/// study runner decides a run's outcome from it — from the end message's words only in older files.
@Suite struct FailureKindTests {
    private func end(_ text: String) throws -> EndRecord {
        guard case let .end(e) = try RecordDecoder.record(Array(text.utf8)) else { throw DataError("not an end record") }
        return e
    }

    @Test func codecKeepsTheKindAndOldFilesReadWithout() throws {
        for kind in EndRecord.Failure.allCases {
            let r = EndRecord(step: 7, t: 1.5, reason: .failed, finalLoss: nil, bestValidationLoss: nil, message: "x", failure: kind)
            var e = RecordEncoder()
            let text = String(decoding: e.encode(.end(r)).dropLast(), as: UTF8.self)
            #expect(text.contains(#""reason":"failed","failure":"\#(kind.rawValue)""#))
            #expect(try end(text) == r)
        }
        let completed = EndRecord(step: 7, t: 1.5, reason: .completed, finalLoss: 2, bestValidationLoss: nil)
        var e = RecordEncoder()
        #expect(!String(decoding: e.encode(.end(completed)), as: UTF8.self).contains("failure"))
        // An unknown kind (a later minor version) reads as error; a file before 1.3 has none.
        #expect(try end(#"{"type":"end","step":1,"t":0,"reason":"failed","failure":"melted","message":""}"#).failure == .error)
        #expect(try end(#"{"type":"end","step":1,"t":0,"reason":"failed","message":"loss became nan at step 3"}"#).failure == nil)
    }

    @Test func studyOutcomeComesFromTheKindAndFromTheMessageOnlyInOlderFiles() throws {
        func failed(_ message: String, _ kind: EndRecord.Failure?) -> EndRecord {
            EndRecord(step: 3, t: 1, reason: .failed, finalLoss: nil, bestValidationLoss: nil, message: message, failure: kind)
        }
        #expect(TrainingFailure.isTraining(failed("anything", .diverged)))
        #expect(TrainingFailure.isTraining(failed("anything", .nonFinite)))
        // The kind wins over the words.
        #expect(!TrainingFailure.isTraining(failed("diverged at step 3: words only", .error)))
        // Older files: the words decide.
        #expect(TrainingFailure.isTraining(failed("diverged at step 3: loss nan", nil)))
        #expect(TrainingFailure.isTraining(failed("loss became nan at step 3", nil)))
        #expect(!TrainingFailure.isTraining(failed("checkpoint could not be written", nil)))
        #expect(!TrainingFailure.isTraining(EndRecord(step: 3, t: 1, reason: .completed, finalLoss: 1, bestValidationLoss: nil)))
    }

    @Test func trainerWritesTheKind() throws {
        let config = TrainingConfig(model: GPTConfig(layers: 2, heads: 2, channels: 16, context: 32), preset: "custom",
                                    batch: 2, steps: 12, learningRate: 3e-3, seed: 1, threads: 2, evalEvery: 0,
                                    checkpointEvery: 0)
        func end(_ policy: DivergencePolicy) throws -> EndRecord {
            let trainer = try Trainer(config: config, refinement: RefinementConfig(), train: try ByteDataset.embedded(),
                                      evalDomains: [], bus: RecordBus(), runDirectory: nil)
            var s = InterventionSettings()
            s.divergence.policy = policy
            trainer.interventions = s
            trainer.beforeStep = { t in if t.step == 5 { t.model.params[0] = .nan } }
            return trainer.run()
        }
        let off = try end(.off)
        #expect(off.reason == .failed && off.failure == .nonFinite)
        let stop = try end(.stop)
        #expect(stop.reason == .failed && stop.failure == .diverged)
    }
}
