import Model

/// Everything that decides what a run computes; stored in checkpoints and in the run header.
public struct TrainingConfig: Equatable, Sendable, Codable {
    public var model: GPTConfig
    /// "S", "M" or "custom".
    public var preset: String
    public var batch: Int
    /// Window length used for training (≤ model.context).
    public var context: Int
    public var steps: Int
    public var learningRate: Double
    /// Linear warm-up steps (default min(100, steps/10)).
    public var warmupSteps: Int
    public var adam = AdamWConfig()
    /// Global gradient-norm clip (0 = off).
    public var clip: Double = 1.0
    /// Seed of the parameter initialisation.
    public var initSeed: UInt64
    /// Seed of the order in which training windows are drawn.
    public var dataSeed: UInt64
    /// OpenBLAS threads (and the thread count in the determinism promise).
    public var threads: Int
    /// Steps between validation passes (0 = only at the end).
    public var evalEvery: Int
    /// Validation windows per domain (non-overlapping from the start of the validation split).
    public var evalWindows: Int = 64
    /// Steps between checkpoints (0 = only at the end or on stop).
    public var checkpointEvery: Int

    public init(model: GPTConfig, preset: String, batch: Int, context: Int? = nil, steps: Int,
                learningRate: Double, warmupSteps: Int? = nil, seed: UInt64, dataSeed: UInt64? = nil,
                threads: Int, evalEvery: Int, checkpointEvery: Int) {
        self.model = model
        self.preset = preset
        self.batch = batch
        self.context = context ?? model.context
        self.steps = steps
        self.learningRate = learningRate
        self.warmupSteps = warmupSteps ?? min(100, max(1, steps / 10))
        self.initSeed = seed
        self.dataSeed = dataSeed ?? seed
        self.threads = threads
        self.evalEvery = evalEvery
        self.checkpointEvery = checkpointEvery
    }

    public var schedule: LearningRateSchedule {
        LearningRateSchedule(peak: learningRate, warmupSteps: warmupSteps, totalSteps: steps)
    }

    /// The settings a problem can name; `RunRecipe.describe` words a problem as the flag that
    /// sets the value (`--lr`), for the command line and study files alike.
    public enum Setting: String, Sendable, CaseIterable {
        case model, batch, context, steps, learningRate, threads, evalEvery, evalWindows
    }

    /// A setting outside its range: which one, and what was expected (the message has no name).
    public struct Problem: Error, Equatable, Sendable, CustomStringConvertible {
        public var setting: Setting
        /// e.g. "must be at least 1 (got 0)".
        public var message: String
        public var description: String { "\(setting.rawValue) \(message)" }
    }

    /// The most worker threads a run may have (each one holds scratch rows of the model's width).
    public static let maxThreads = 1024
    /// The largest batch, in windows: far beyond what fits in memory (the memory check refuses far
    /// less), and low enough that every size is exact in `Double` and fits in `Int`.
    public static let maxBatch = 1 << 20

    /// The first problem with this configuration, or nil.
    public func validationProblem() -> Problem? {
        func problem(_ setting: Setting, _ message: String) -> Problem { Problem(setting: setting, message: message) }
        if let e = model.validationError() { return problem(.model, e) }
        if batch < 1 || batch > Self.maxBatch { return problem(.batch, "must be in 1...\(Self.maxBatch) (got \(batch))") }
        if context < 2 || context > model.context { return problem(.context, "must be in 2...\(model.context) (got \(context))") }
        if steps < 1 { return problem(.steps, "must be at least 1 (got \(steps))") }
        if !(learningRate > 0 && learningRate < 1) { return problem(.learningRate, "must be in (0, 1) (got \(learningRate))") }
        if threads < 1 || threads > Self.maxThreads { return problem(.threads, "must be in 1...\(Self.maxThreads) (got \(threads))") }
        if evalEvery < 0 { return problem(.evalEvery, "must be ≥ 0 (got \(evalEvery))") }
        if evalWindows < 1 { return problem(.evalWindows, "must be ≥ 1 (got \(evalWindows))") }
        return nil
    }
}
