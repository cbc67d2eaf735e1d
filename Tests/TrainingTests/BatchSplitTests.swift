import Foundation
import Model
import Refinement
import Telemetry
import Testing
@testable import Training

/// Data-parallel batches: rank r's rows are its slice of the batch one process would draw, and
/// every rank's RNG ends where the single process's does.
@Suite struct BatchSplitTests {
    struct Batch: Equatable {
        var inputs: [Int32], targets: [Int32], mask: [Float]
    }

    func fill(_ data: ByteDataset, B: Int, T: Int, rows: Range<Int>?, seed: UInt64) -> (Batch, Xoshiro256) {
        let n = (rows?.count ?? B) * T
        var batch = Batch(inputs: .init(repeating: -1, count: n), targets: .init(repeating: -1, count: n),
                          mask: .init(repeating: -1, count: n))
        var rng = Xoshiro256(seed: seed)
        batch.inputs.withUnsafeMutableBufferPointer { i in
            batch.targets.withUnsafeMutableBufferPointer { t in
                batch.mask.withUnsafeMutableBufferPointer { m in
                    data.fillTrainingBatch(inputs: i.baseAddress!, targets: t.baseAddress!,
                                           mask: data.needsLossMask ? m.baseAddress! : nil, B: B, T: T, rows: rows, rng: &rng)
                }
            }
        }
        return (batch, rng)
    }

    @Test(arguments: [2, 3, 6])
    func theRanksSlicesMakeUpTheSingleProcessBatch(ranks: Int) throws {
        let B = 6, T = 48
        for data in [try ByteDataset.embedded(), try #require(try SyntheticTask.parse("synthetic:recall")).dataset] {
            let (whole, wholeRng) = fill(data, B: B, T: T, rows: nil, seed: 11)
            var joined = Batch(inputs: [], targets: [], mask: [])
            let share = B / ranks
            for r in 0..<ranks {
                let (part, rng) = fill(data, B: B, T: T, rows: (r * share)..<((r + 1) * share), seed: 11)
                joined.inputs += part.inputs
                joined.targets += part.targets
                joined.mask += part.mask
                #expect(rng == wholeRng, "rank \(r)'s RNG is where one process's is")
            }
            #expect(joined == whole, "\(data.name): the slices are the single-process batch")
            #expect(!whole.inputs.contains(-1))
        }
    }

    @Test func anUnevenSplitIsRefusedNamingTheFlagAndRanks() throws {
        #expect(Trainer.batchSplitError(batch: 8, ranks: 2) == nil)
        #expect(Trainer.batchSplitError(batch: 7, ranks: 1) == nil)
        let message = try #require(Trainer.batchSplitError(batch: 8, ranks: 3))
        #expect(message.contains("--batch 8") && message.contains("3 ranks"))
        var config = tinyConfig()
        config.batch = 4
        #expect(throws: DataError.self) {
            try Trainer(config: config, refinement: RefinementConfig(), train: try ByteDataset.embedded(), evalDomains: [],
                        bus: RecordBus(), runDirectory: nil, collective: ThreeRanks())
        }
    }

    /// A collective that claims three ranks (for the split check; nothing is exchanged).
    final class ThreeRanks: Collective {
        var rank: Int { 0 }
        var size: Int { 3 }
        func average(_ values: UnsafeMutablePointer<Float>, count: Int) {}
        func sum(_ values: UnsafeMutablePointer<Double>, count: Int) {}
        func boundary(commands: [Command], stop: Bool) -> (commands: [Command], stop: Bool) { (commands, stop) }
        func agreeToStop(_ stop: Bool) -> Bool { stop }
    }
}
