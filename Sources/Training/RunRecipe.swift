import Foundation
import Model
import Refinement
import Telemetry

/// Everything that makes a fresh run, in the terms of `gradflow train`'s flags: the model (a preset
/// and its overrides), the schedule and the seeds, the data, the refinement, the changes and
/// schedules sent as commands, the twins and the divergence guard. `train`, every run of a study
/// and `bench` build their run from one; the flags that fill it are declared once (`RunOptions`),
/// and the defaults here are the flags' defaults (docs/ARCHITECTURE.md §8).
public struct RunRecipe: Sendable, Equatable {
    // Model (`--preset --layers --heads --dim --context --batch`).
    public var preset = "S"
    public var layers: Int?
    public var heads: Int?
    public var dim: Int?
    public var context: Int?
    public var batch = 8

    // Schedule and seeds (`--steps --lr --warmup --seed --data-seed --threads`).
    public var steps = 2000
    public var learningRate = 3e-3
    public var warmup: Int?
    /// Seed of the initialisation, and of the data order unless `dataSeed` is set.
    public var seed: UInt64 = 1
    public var dataSeed: UInt64?
    public var threads = min(2, ProcessInfo.processInfo.activeProcessorCount)

    // Data, validation and checkpoints (`--data --eval-data --eval-every --eval-windows --checkpoint-every`).
    /// A file, a folder of shards or `synthetic:TASK`; nil: the embedded corpus.
    public var data: String?
    /// Extra validation domains, `NAME=PATH` each.
    public var evalData: [String] = []
    public var evalEvery = 200
    public var evalWindows = 64
    public var checkpointEvery = 1000

    /// The refinement flags, as given.
    public var refinement = RefinementFlags()

    // Changes, twins and the guard (`--change --schedule --twin-at --twin-steps --on-divergence …`).
    /// `STEP:AXIS.BAND=VALUE` or `STEP:AXIS=adaptive|manual` each, in the order given.
    public var changes: [String] = []
    /// A recorded run or a text file of changes, replayed at the same steps.
    public var schedule: String?
    /// Steps at which an A/A twin window opens with no change.
    public var twinAt: [Int] = []
    public var twinSteps = InterventionSettings().twinSteps
    public var divergence = DivergenceSettings()

    public init() {}

    // MARK: What a run is built from

    /// The model shape and the preset's name ("custom" when a flag overrides the preset). The one
    /// place where presets are resolved.
    public func model() throws -> (config: GPTConfig, preset: String) {
        var config: GPTConfig
        switch preset.uppercased() {
        case "S": config = .S
        case "M": config = .M
        default: throw RecipeError("--preset must be S or M (got '\(preset)')")
        }
        var name = preset.uppercased()
        if let layers { config.layers = layers; name = "custom" }
        if let heads { config.heads = heads; name = "custom" }
        if let dim { config.channels = dim; name = "custom" }
        if let context { config.context = context; name = "custom" }
        if let e = config.validationError() { throw RecipeError(e) }
        if batch < 1 { throw RecipeError("--batch must be at least 1 (got \(batch))") }
        return (config, name)
    }

    /// The training configuration, checked; a problem names its flag.
    public func trainingConfig() throws -> TrainingConfig {
        let (gpt, preset) = try model()
        var config = TrainingConfig(model: gpt, preset: preset, batch: batch, steps: steps, learningRate: learningRate,
                                    warmupSteps: warmup, seed: seed, dataSeed: dataSeed, threads: threads,
                                    evalEvery: evalEvery, checkpointEvery: checkpointEvery)
        config.evalWindows = evalWindows
        if let problem = config.validationProblem() { throw RecipeError(Self.describe(problem)) }
        return config
    }

    /// The model, schedule, seed and evaluation flags whose value differs from `config` (a
    /// checkpoint's settings), each as "--FLAG VALUE (the checkpoint's: X)". A resumed or forked run
    /// takes these settings from its checkpoint, so `train` refuses them there instead of ignoring
    /// them; a flag that repeats the checkpoint's value is fine (the run's own command line with
    /// `--resume` added). A flag given with its default value cannot be told from one not given and
    /// is not reported.
    public func settingsDiffering(from config: TrainingConfig) -> [String] {
        let d = RunRecipe()
        var out: [String] = []
        func check<T: Equatable>(_ flag: String, _ mine: KeyPath<RunRecipe, T>, _ theirs: T) {
            let value = self[keyPath: mine]
            if value != d[keyPath: mine] && value != theirs { out.append("\(flag) \(value) (the checkpoint's: \(theirs))") }
        }
        // The shape: the flags that set it, when the shape they make is not the checkpoint's.
        let shapeFlags: [(String, String?)] = [("--preset", preset.uppercased() == d.preset ? nil : preset),
                                                ("--layers", layers.map(String.init)), ("--heads", heads.map(String.init)),
                                                ("--dim", dim.map(String.init)), ("--context", context.map(String.init))]
        let given = shapeFlags.compactMap { flag, value in value.map { "\(flag) \($0)" } }
        if !given.isEmpty, (try? model().config) != config.model {
            let m = config.model
            out.append("\(given.joined(separator: " ")) (the checkpoint's model: \(config.preset), --layers \(m.layers) "
                       + "--heads \(m.heads) --dim \(m.channels) --context \(m.context))")
        }
        check("--batch", \.batch, config.batch)
        check("--steps", \.steps, config.steps)
        check("--lr", \.learningRate, config.learningRate)
        if let warmup, warmup != config.warmupSteps { out.append("--warmup \(warmup) (the checkpoint's: \(config.warmupSteps))") }
        check("--seed", \.seed, config.initSeed)
        if let dataSeed, dataSeed != config.dataSeed { out.append("--data-seed \(dataSeed) (the checkpoint's: \(config.dataSeed))") }
        check("--threads", \.threads, config.threads)
        check("--eval-every", \.evalEvery, config.evalEvery)
        check("--eval-windows", \.evalWindows, config.evalWindows)
        check("--checkpoint-every", \.checkpointEvery, config.checkpointEvery)
        return out
    }

    /// A configuration problem in the words of the flag that sets the value.
    public static func describe(_ problem: TrainingConfig.Problem) -> String {
        let flag: String
        switch problem.setting {
        case .model: return problem.message
        case .batch: flag = "--batch"
        case .context: flag = "--context"
        case .steps: flag = "--steps"
        case .learningRate: flag = "--lr"
        case .threads: flag = "--threads"
        case .evalEvery: flag = "--eval-every"
        case .evalWindows: flag = "--eval-windows"
        }
        return "\(flag) \(problem.message)"
    }

    /// The refinement the flags describe (every axis off when none is given).
    public func refinementConfig() throws -> RefinementConfig {
        do { return try RefinementConfig(flags: refinement) } catch let e as RefinementError { throw RecipeError(e.message) }
    }

    /// The first problem with the twin, change and divergence settings that needs no trainer, or nil.
    public func interventionProblem() -> String? {
        if twinSteps < 0 { return "--twin-steps must be 0 (off) or a positive number of steps, got \(twinSteps)" }
        for problem in [DivergenceSettings.snapshotEveryProblem(divergence.snapshotEvery),
                        DivergenceSettings.outlierMadsProblem(divergence.rule.mads),
                        DivergenceSettings.lrBackoffProblem(divergence.lrBackoff)] {
            if let problem { return problem }
        }
        for s in twinAt where s < 0 { return "--twin-at must be a step ≥ 0, got \(s)" }
        if !twinAt.isEmpty && twinSteps == 0 { return "--twin-at needs twins: drop --twin-steps 0" }
        for c in changes {
            do { _ = try ChangeSpec.parse(c, place: "--change") } catch { return "\(error)" }
        }
        return nil
    }

    /// The twins, the scripted commands (the schedule's, then the changes, then the A/A windows;
    /// same-step commands keep that order) and the guard, with band names resolved against the
    /// trainer's axes. `source` labels the changes and A/A windows (`.flag` for `train`).
    public func interventionSettings(bandNames: (ScaleAxis) -> [String], source: EventSource) throws -> InterventionSettings {
        var s = InterventionSettings()
        s.twinSteps = twinSteps
        s.divergence = divergence
        do {
            if let schedule { s.scheduled += try Schedule.read(path: schedule, bandNames: bandNames) }
            for c in changes {
                let spec = try ChangeSpec.parse(c, place: "--change")
                s.scheduled.append(ScheduledCommand(step: spec.step, command: try spec.command(bandNames: bandNames(spec.axis), place: "--change \(c)", source: source)))
            }
        } catch let e as InterventionError {
            throw RecipeError(e.description)
        }
        for step in twinAt { s.scheduled.append(ScheduledCommand(step: step, command: .openTwin(source: source))) }
        s.scheduled = s.scheduled.enumerated().sorted { ($0.element.step, $0.offset) < ($1.element.step, $1.offset) }.map(\.element)
        return s
    }

    // MARK: Data

    /// The extra validation domains as (name, path), checked: NAME=PATH, each name once, no
    /// synthetic task.
    public func evalDomainPaths() throws -> [(name: String, path: String)] {
        var out: [(name: String, path: String)] = []
        for spec in evalData {
            guard let eq = spec.firstIndex(of: "="), eq != spec.startIndex, spec.index(after: eq) != spec.endIndex else {
                throw RecipeError("--eval-data expects NAME=PATH (got '\(spec)')")
            }
            let name = String(spec[..<eq]), path = String(spec[spec.index(after: eq)...])
            guard !out.contains(where: { $0.name == name }) else { throw RecipeError("--eval-data: the name '\(name)' is used twice") }
            if path.hasPrefix("synthetic:") {
                throw RecipeError("--eval-data \(spec): a synthetic task can only be training data (--data); its validation windows are evaluated automatically")
            }
            out.append((name, path))
        }
        return out
    }

    /// The extra validation domains, loaded.
    public func evalDomains() throws -> [ByteDataset] {
        try evalDomainPaths().map { try Self.loadData(name: $0.name, path: $0.path) }
    }

    /// The training data: `data`, or the embedded corpus.
    public func trainingData() throws -> ByteDataset {
        try data.map { try Self.loadData(name: Self.dataName($0), path: $0) } ?? ByteDataset.embedded()
    }

    /// A data set from a path or a synthetic task spec.
    public static func loadData(name: String, path: String) throws -> ByteDataset {
        do {
            if let task = try SyntheticTask.parse(path) { return task.dataset }
            return try ByteDataset.load(name: name, path: path)
        } catch let e as DataError { throw RecipeError(e.description) }
    }

    /// A data set's name from its path: the file name without its extension.
    public static func dataName(_ path: String) -> String {
        ((path as NSString).lastPathComponent as NSString).deletingPathExtension
    }
}

/// A recipe that cannot make a run; the message names the flag and what was expected.
public struct RecipeError: Error, CustomStringConvertible, Equatable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
