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
                && problem?.contains("--dim, --layers, --context or --batch") == true, "\(problem ?? "nil")")
        // A batch too large to count in Int bytes is still refused, not an overflow.
        let problem2 = Trainer.memoryProblem(config: config(.S, batch: 9_999_999_999_999), batch: 9_999_999_999_999)
        #expect(problem2?.contains("a petabyte") == true, "\(problem2 ?? "nil")")
    }

    @Test func outOfRangeShapesAndThreadsAreRefused() {
        #expect(GPTConfig(layers: 1, heads: 1, channels: 99_999_999_999, context: 16).validationError()?.contains("channels must be at most") == true)
        #expect(GPTConfig(layers: 5000, heads: 1, channels: 16, context: 16).validationError()?.contains("layers must be at most 4096") == true)
        #expect(GPTConfig(layers: 1, heads: 1, channels: 16, context: 1 << 21).validationError()?.contains("context must be at most") == true)
        #expect(config(.S, threads: 2000).validationProblem()?.setting == .threads)
    }
}
