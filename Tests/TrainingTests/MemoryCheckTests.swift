import Foundation
import Model
import Telemetry
import Testing
@testable import Training

/// A shape or batch far too large for the machine is an error that names the flags, said before
/// anything is allocated (it used to crash in the allocation, or overflow `Int`).
@Suite struct MemoryCheckTests {
    func config(_ model: GPTConfig, batch: Int = 8, threads: Int = 2) -> TrainingConfig {
        TrainingConfig(model: model, preset: "custom", batch: batch, steps: 10, learningRate: 3e-3, seed: 1, threads: threads,
                       evalEvery: 0, checkpointEvery: 0)
    }

    @Test func preset_M_fitsAndAHugeShapeIsRefusedByName() {
        #expect(Trainer.memoryProblem(config: config(.M), batch: 8, physicalMemory: 8 << 30) == nil)
        let huge = GPTConfig(layers: 64, heads: 64, channels: 65536, context: 128)
        let problem = Trainer.memoryProblem(config: config(huge), batch: 8, physicalMemory: 24 << 30)
        #expect(problem?.contains("53.1 TB of memory") == true && problem?.contains("this machine has 25.8 GB") == true
                && problem?.contains("(--layers 64 --dim 65536 --context 128, ") == true
                && problem?.contains("--dim, --layers, --context or --batch") == true, "\(problem ?? "nil")")
        // Ranks on one machine share its memory.
        let m = config(.M)
        let one = GPT.trainingBytes(config: m.model, batch: 8, workers: m.threads) + 8 * Double(ParameterLayout(m.model).count)
        #expect(Trainer.memoryProblem(config: m, batch: 8, ranksOnMachine: 4, physicalMemory: UInt64(3.5 * one)) != nil)
        #expect(Trainer.memoryProblem(config: m, batch: 8, ranksOnMachine: 3, physicalMemory: UInt64(3.5 * one)) == nil)
        // The largest batch allowed is still counted, and refused.
        let problem2 = Trainer.memoryProblem(config: config(.M, batch: TrainingConfig.maxBatch), batch: TrainingConfig.maxBatch)
        #expect(problem2?.contains("at batch 1048576 needs at least") == true, "\(problem2 ?? "nil")")
        let widest = GPTConfig(layers: GPTConfig.maxLayers, heads: 1, channels: GPTConfig.maxWidth, context: 16)
        let problem3 = Trainer.memoryProblem(config: config(widest, batch: TrainingConfig.maxBatch), batch: TrainingConfig.maxBatch)
        #expect(problem3?.contains("needs at least a petabyte") == true, "\(problem3 ?? "nil")")
    }

    @Test func outOfRangeShapesAndThreadsAreRefused() {
        #expect(GPTConfig(layers: 1, heads: 1, channels: 99_999_999_999, context: 16).validationError()?.contains("channels must be at most") == true)
        #expect(GPTConfig(layers: 5000, heads: 1, channels: 16, context: 16).validationError()?.contains("layers must be at most 4096") == true)
        #expect(GPTConfig(layers: 1, heads: 1, channels: 16, context: 1 << 21).validationError()?.contains("context must be at most") == true)
        #expect(config(.S, threads: 2000).validationProblem()?.setting == .threads)
        #expect(config(.S, batch: 9_007_199_254_740_993).validationProblem()?.setting == .batch)
    }
}
