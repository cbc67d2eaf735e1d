import Kernels
import Testing
@testable import Model

/// `GPT.trainingBytes`, the memory check's count, adds up what a model allocates for training.
@Suite struct TrainingBytesTests {
    @Test func theEstimateCountsWhatTheModelAllocates() {
        // Parameters and gradients, the two token buffers, and the activation arena.
        let m = GPTConfig.S, B = 8, W = 2
        let model = GPT(config: m, batch: B, seed: 1, parallel: Parallel(threads: W))
        let arena = 4 * Double(Activations.floatCount(config: m, batch: B, workers: W, as: Int.self))
        #expect(GPT.trainingBytes(config: m, batch: B, workers: W) == 2 * 4 * Double(model.layout.count) + arena + 8 * Double(B * m.context))
        #expect(Activations.floatCount(config: m, batch: B, workers: W, as: Double.self)
                == Double(Activations.floatCount(config: m, batch: B, workers: W, as: Int.self)))
    }
}
