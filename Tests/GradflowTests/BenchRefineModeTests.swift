import Model
import Refinement
import RunFlags
import Testing
@testable import gradflow

/// `gradflow bench steps --refine MODE` turns each mode into `train` flags for the model at hand:
/// one context weight per band of that model's window, whatever its length, and flags that
/// `train`'s own parser accepts.
@Suite struct BenchRefineModeTests {
    @Test(arguments: [8, 32, 128, 256])
    func contextWeightsFollowTheModelsBands(context: Int) throws {
        let gpt = GPTConfig(layers: 4, heads: 4, channels: 64, context: context)
        let bands = ContextBands.standard(window: context).count
        for mode in ["manual", "context-manual"] {
            let flags = try BenchSteps.refinementFlags(mode, model: gpt)
            let weights = try #require(flags.firstIndex(of: "--context-weights").map { flags[$0 + 1] })
            #expect(weights.split(separator: ",").count == bands, "\(mode) at context \(context): \(weights)")
            let recipe = try RunOptions.recipe(parsing: flags + ["--context", "\(context)"])
            #expect(throws: Never.self) { try recipe.refinementConfig() }
        }
    }
}

/// `gradflow bench dashboard --frames N` refuses too few frames instead of timing more than asked.
@Suite struct BenchDashboardFlagTests {
    @Test func tooFewFramesAreRefused() throws {
        #expect(throws: (any Error).self) { try BenchDashboard.parse(["--frames", "4"]) }
        #expect(try BenchDashboard.parse(["--frames", "5"]).frames == 5)
    }
}

/// A negative number after a long option is its value (`--lr -0.1`), not an unknown option.
@Suite struct NegativeValueTests {
    @Test func negativeNumbersJoinTheOptionBeforeThem() {
        #expect(Gradflow.joiningNegativeValues(["train", "--lr", "-0.1", "--steps", "3"]) == ["train", "--lr=-0.1", "--steps", "3"])
        #expect(Gradflow.joiningNegativeValues(["train", "--seed", "-1e3"]) == ["train", "--seed=-1e3"])
        #expect(Gradflow.joiningNegativeValues(["train", "--no-tui", "-h"]) == ["train", "--no-tui", "-h"], "not a number")
        #expect(Gradflow.joiningNegativeValues(["train", "--lr=-1", "-2"]) == ["train", "--lr=-1", "-2"], "already joined")
        #expect(Gradflow.joiningNegativeValues(["x", "--", "--a", "-1"]) == ["x", "--", "--a", "-1"])
    }
}

/// `--bucket-mb` has an upper bound, so its bytes always fit an Int (1e20 trapped on every rank).
@Suite struct BucketFlagTests {
    @Test func hugeBucketsAreRefused() throws {
        #expect(throws: (any Error).self) { try DataParallelOptions.parse(["--bucket-mb", "1e20"]) }
        #expect(throws: (any Error).self) { try DataParallelOptions.parse(["--bucket-mb", "-1"]) }
        #expect(try DataParallelOptions.parse(["--bucket-mb", "1048576"]).bucketBytes == 1 << 40)
    }
}
