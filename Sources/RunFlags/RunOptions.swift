import ArgumentParser
import Foundation
import Refinement
import Training

/// The flags of `gradflow train` that make a run (model, schedule, seeds, data, refinement, twins
/// and divergence), declared once: `train` takes them as an option group, a study file's `train`
/// lines and arms are parsed with them, and `recipe()` turns them into the `RunRecipe`.
public struct RunOptions: ParsableArguments {
    @OptionGroup(title: "Model") public var model: ModelOptions

    @Option(help: "Training steps.")
    public var steps: Int = RunRecipe().steps

    @Option(help: "Peak learning rate (linear warm-up, then cosine decay to 0.1×).")
    public var lr: Double = RunRecipe().learningRate

    @Option(help: "Warm-up steps (default min(100, steps/10)).")
    public var warmup: Int?

    @Option(help: "Seed of the initialisation (and of the data order unless --data-seed is given).")
    public var seed: UInt64 = RunRecipe().seed

    @Option(help: "Seed of the order in which training windows are drawn.")
    public var dataSeed: UInt64?

    @Option(help: "Worker threads (results are bit-identical for the same seed and thread count).")
    public var threads: Int = RunRecipe().threads

    @Option(help: "Training text: a file, a folder of shards (its regular files by name; last 10 % of each is validation), or synthetic:recall / synthetic:copy / synthetic:lookup / synthetic:induction[:N] / synthetic:repeat[:D] (default: the embedded corpus).")
    public var data: String?

    @Option(name: .customLong("eval-data"), help: ArgumentHelp("Extra validation domain NAME=PATH (repeatable).", valueName: "NAME=PATH"))
    public var evalData: [String] = []

    @Option(help: "Steps between validation passes.")
    public var evalEvery: Int = RunRecipe().evalEvery

    @Option(help: "Validation windows per domain.")
    public var evalWindows: Int = RunRecipe().evalWindows

    @Option(help: "Steps between checkpoints (0: only at the end).")
    public var checkpointEvery: Int = RunRecipe().checkpointEvery

    @OptionGroup(title: "Refinement") public var refinement: RefinementOptions

    @OptionGroup(title: "Twins and divergence") public var interventions: InterventionOptions

    public init() {}

    /// The recipe the flags describe. Parsing has checked the twin, change and divergence flags;
    /// the recipe's `trainingConfig()` and `refinementConfig()` check the rest.
    public func recipe() -> RunRecipe {
        var r = RunRecipe()
        model.fill(&r)
        r.steps = steps
        r.learningRate = lr
        r.warmup = warmup
        r.seed = seed
        r.dataSeed = dataSeed
        r.threads = threads
        r.data = data
        r.evalData = evalData
        r.evalEvery = evalEvery
        r.evalWindows = evalWindows
        r.checkpointEvery = checkpointEvery
        r.refinement = refinement.flags
        interventions.fill(&r)
        return r
    }

    /// Parses `arguments` as `gradflow train` would (a later value of a flag replaces an earlier
    /// one; repeatable flags add up) and gives the recipe; the error is the parser's message.
    public static func recipe(parsing arguments: [String]) throws -> RunRecipe {
        do { return try parse(arguments).recipe() } catch { throw RecipeError(message(for: error)) }
    }
}

/// The model-shape flags shared by `train` and `bench`.
public struct ModelOptions: ParsableArguments {
    @Option(name: .long, help: "Model preset: S (842k params, T 128) or M (10.8M params, T 256).")
    public var preset: String = RunRecipe().preset

    @Option(name: .long, help: "Transformer blocks (overrides the preset).")
    public var layers: Int?

    @Option(name: .long, help: "Attention heads (overrides the preset).")
    public var heads: Int?

    @Option(name: .long, help: "Channels C (overrides the preset; a multiple of --heads).")
    public var dim: Int?

    @Option(name: .long, help: "Context length T in bytes (overrides the preset).")
    public var context: Int?

    @Option(name: .long, help: "Windows per batch (default 8).")
    public var batch: Int = RunRecipe().batch

    public init() {}

    /// Sets the recipe's model fields.
    public func fill(_ r: inout RunRecipe) {
        r.preset = preset
        r.layers = layers
        r.heads = heads
        r.dim = dim
        r.context = context
        r.batch = batch
    }
}

/// The refinement flags (names fixed by the project; see docs/METHOD.md).
public struct RefinementOptions: ParsableArguments {
    @Option(help: ArgumentHelp(RefinementFlags.help(for: "--context-bands")))
    public var contextBands: String?
    @Option(help: ArgumentHelp(RefinementFlags.help(for: "--context-weights")))
    public var contextWeights: String?
    @Option(help: ArgumentHelp(RefinementFlags.help(for: "--time-weights")))
    public var timeWeights: String?
    @Option(help: ArgumentHelp(RefinementFlags.help(for: "--time-betas")))
    public var timeBetas: String?
    @Option(help: ArgumentHelp(RefinementFlags.help(for: "--depth-groups")))
    public var depthGroups: String?
    @Option(help: ArgumentHelp(RefinementFlags.help(for: "--depth-weights")))
    public var depthWeights: String?
    @Option(help: ArgumentHelp(RefinementFlags.help(for: "--adaptive")))
    public var adaptive: String?
    @Option(help: ArgumentHelp(RefinementFlags.help(for: "--grokfast")))
    public var grokfast: String?
    @Option(help: ArgumentHelp(RefinementFlags.help(for: "--time-lambda")))
    public var timeLambda: String?
    @Option(help: ArgumentHelp(RefinementFlags.help(for: "--policy-warmup")))
    public var policyWarmup: String?

    public init() {}

    /// The flags' values, as given.
    public var flags: RefinementFlags {
        RefinementFlags(contextBands: contextBands, contextWeights: contextWeights, timeWeights: timeWeights,
                        timeBetas: timeBetas, depthGroups: depthGroups, depthWeights: depthWeights,
                        adaptive: adaptive, grokfast: grokfast, timeLambda: timeLambda, policyWarmup: policyWarmup)
    }
}
