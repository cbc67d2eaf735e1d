import Foundation
import Model
import Refinement
import Telemetry
import Testing
@testable import Training

/// The loss mask of a synthetic task reaches training and validation.
@Suite struct MaskedTrainingTests {
    func trainer(_ task: SyntheticTask, steps: Int = 5) throws -> Trainer {
        var c = TrainingConfig(model: GPTConfig(layers: 2, heads: 2, channels: 16, context: 32), preset: "custom",
                               batch: 2, steps: steps, learningRate: 3e-3, seed: 1, threads: 2, evalEvery: 0,
                               checkpointEvery: 0)
        c.evalWindows = 6
        return try Trainer(config: c, refinement: RefinementConfig(), train: task.dataset, evalDomains: [],
                           bus: RecordBus(), runDirectory: nil)
    }

    @Test func validationLossIsTheMeanOverAnswersOnly() throws {
        let task = SyntheticTask(kind: .recall)
        let t = try trainer(task)
        let (loss, _) = t.validationLoss(task.dataset, T: 32, window: nil, collectPositions: false)
        // The same by hand: every validation window, the model's per-position losses at the answers.
        var sum = 0.0, n = 0
        for first in stride(from: 0, to: 6, by: 2) {
            var answers: [[SyntheticTask.Answer]] = []
            for b in 0..<2 {
                let w = task.validationWindow(first + b, T: 32)
                SyntheticTask.fill(w, row: b, T: 32, inputs: t.model.inputs, targets: t.model.targets, mask: nil)
                answers.append(w.answers)
            }
            t.model.forward(T: 32)
            for b in 0..<2 { for a in answers[b] { sum += Double(t.model.losses[b * 32 + a.position]); n += 1 } }
        }
        #expect(n > 0)
        #expect(abs(loss - sum / Double(n)) < 1e-9)
    }

    @Test func scoringAfterEachEvaluationLeavesTrainingUnchanged() throws {
        let task = SyntheticTask(kind: .induction, span: 8)
        func make() throws -> Trainer {
            var c = TrainingConfig(model: GPTConfig(layers: 2, heads: 2, channels: 16, context: 32), preset: "custom",
                                   batch: 2, steps: 6, learningRate: 3e-3, seed: 1, threads: 2, evalEvery: 2,
                                   checkpointEvery: 0)
            c.evalWindows = 4
            return try Trainer(config: c, refinement: RefinementConfig(), train: task.dataset, evalDomains: [],
                               bus: RecordBus(), runDirectory: nil)
        }
        let plain = try make(), scored = try make()
        var steps: [Int] = []
        scored.afterEvaluation = { t in
            steps.append(t.step)
            #expect(t.syntheticScores(windows: 4)?.count == 2)
        }
        plain.run()
        scored.run()
        #expect(steps == [2, 4, 6])
        let n = plain.model.layout.count
        #expect(Array(UnsafeBufferPointer(start: plain.model.params, count: n)) == Array(UnsafeBufferPointer(start: scored.model.params, count: n)))
    }

    @Test func trainingStepUsesTheMaskedMean() throws {
        let task = SyntheticTask(kind: .copy)
        let t = try trainer(task)
        let record = t.trainStep()
        // The step's loss is the mean over the 2 × 4 copied letters of the batch just drawn.
        var sum = 0.0, n = 0
        for r in 0..<(2 * 32) where t.lossMask![r] == 1 { sum += Double(t.model.losses[r]); n += 1 }
        #expect(n == 2 * SyntheticTask.copyLength)
        #expect(abs(record.loss - sum / Double(n)) < 1e-5)
        // Scores per band after training: finite, one entry per band.
        let scores = try #require(t.syntheticScores(windows: 8))
        #expect(scores.count == 2)
        #expect(scores.reduce(0) { $0 + $1.answers } == 8 * SyntheticTask.copyLength)
    }
}
