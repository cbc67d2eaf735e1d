import ArgumentParser
import Foundation
import Refinement
import Telemetry
import Training

/// `gradflow train`: trains a model, records the run, and shows it live.
struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a byte-level GPT, record the run, and show it live.",
        discussion: """
        With no flags: preset S on the embedded Shakespeare corpus (about 1 MB), 2,000 steps, plain \
        AdamW, dashboard on when the terminal allows. The run goes to runs/DATE-TIME/ (run.jsonl and \
        checkpoints); --out chooses the folder and never overwrites an existing run.

        Refinement (see docs/METHOD.md): no refinement flag means plain backprop + AdamW. Examples:
          gradflow train --context-weights 1,1,2   # manual, per context band
          gradflow train --adaptive all            # all three axes adaptive
          gradflow train --grokfast 0.98,2         # Grokfast-EMA (time axis)
        Ctrl-C or SIGTERM stops at the end of the current step, writes a checkpoint and the run file's \
        end record, and exits with status 130.
        """
    )

    @OptionGroup(title: "Model") var model: ModelOptions

    @Option(help: "Training steps.")
    var steps: Int = 2000

    @Option(help: "Peak learning rate (linear warm-up, then cosine decay to 0.1×).")
    var lr: Double = 3e-3

    @Option(help: "Warm-up steps (default min(100, steps/10)).")
    var warmup: Int?

    @Option(help: "Seed of the initialisation (and of the data order unless --data-seed is given).")
    var seed: UInt64 = 1

    @Option(help: "Seed of the order in which training windows are drawn.")
    var dataSeed: UInt64?

    @Option(help: "Worker threads (results are bit-identical for the same seed and thread count).")
    var threads: Int = min(2, ProcessInfo.processInfo.activeProcessorCount)

    @Option(help: "Training text: a file, a folder of .txt files, or synthetic:recall / synthetic:copy / synthetic:induction[:N] / synthetic:repeat[:D] (default: the embedded corpus).")
    var data: String?

    @Option(name: .customLong("eval-data"), help: ArgumentHelp("Extra validation domain NAME=PATH (repeatable).", valueName: "NAME=PATH"))
    var evalData: [String] = []

    @Option(help: "Steps between validation passes.")
    var evalEvery: Int = 200

    @Option(help: "Validation windows per domain.")
    var evalWindows: Int = 64

    @Option(help: "Steps between checkpoints (0: only at the end).")
    var checkpointEvery: Int = 1000

    @Option(help: "Run folder (default runs/YYYY-MM-DD-HHMMSS); an existing run is never overwritten.")
    var out: String?

    @Option(help: ArgumentHelp("Continue a run from its checkpoint file: model, schedule, steps and refinement come from the checkpoint; the run file in its folder gets the new records.", valueName: "CKPT"))
    var resume: String?

    @OptionGroup(title: "Refinement") var refinement: RefinementOptions

    @OptionGroup(title: "Display") var display: DisplayOptions

    func run() throws {
        let setup = try prepare()
        let code = try TrainingSession(setup: setup, display: display).run()
        if code != 0 { throw ExitCode(code) }
    }

    /// Checks every flag and loads the data before anything is written.
    func prepare() throws -> TrainingSetup {
        let refinementConfig: RefinementConfig
        do {
            refinementConfig = try RefinementConfig(flags: refinement.flags)
        } catch let e as RefinementError {
            throw ValidationError(e.message)
        }
        var evalDomains: [ByteDataset] = []
        var names = Set<String>()
        for spec in evalData {
            guard let eq = spec.firstIndex(of: "="), eq != spec.startIndex, spec.index(after: eq) != spec.endIndex else {
                throw ValidationError("--eval-data expects NAME=PATH (got '\(spec)')")
            }
            let name = String(spec[..<eq]), path = String(spec[spec.index(after: eq)...])
            guard names.insert(name).inserted else { throw ValidationError("--eval-data: the name '\(name)' is used twice") }
            if path.hasPrefix("synthetic:") { throw ValidationError("--eval-data \(spec): a synthetic task can only be training data (--data); its validation windows are evaluated automatically") }
            evalDomains.append(try loadData(name: name, path: path))
        }
        if let resume {
            let ckpt: Checkpoint
            do { ckpt = try Checkpoint.read(path: resume) } catch let e as CheckpointError { throw ValidationError(e.description) }
            if refinement.flags != RefinementFlags() {
                throw ValidationError("--resume continues the run's own refinement settings; drop the refinement flags (change weights live in the dashboard instead)")
            }
            let config = ckpt.metadata.config
            let train = try data.map { try loadData(name: dataName($0), path: $0) } ?? ByteDataset.embedded()
            let runDirectory = (resume as NSString).deletingLastPathComponent
            return TrainingSetup(config: config, refinement: ckpt.metadata.refinement ?? RefinementConfig(), train: train,
                                 evalDomains: evalDomains, runDirectory: runDirectory.isEmpty ? "." : runDirectory, resume: ckpt)
        }
        let (gpt, preset) = try model.resolve()
        let config = TrainingConfig(model: gpt, preset: preset, batch: model.batch, steps: steps, learningRate: lr,
                                    warmupSteps: warmup, seed: seed, dataSeed: dataSeed, threads: threads,
                                    evalEvery: evalEvery, checkpointEvery: checkpointEvery)
        var withWindows = config
        withWindows.evalWindows = evalWindows
        if let e = withWindows.validationError() { throw ValidationError(e) }
        let train = try data.map { try loadData(name: dataName($0), path: $0) } ?? ByteDataset.embedded()
        do { try train.check(context: config.context) } catch let e as DataError { throw ValidationError(e.description) }
        let runDirectory = out ?? Self.defaultRunDirectory()
        let runFile = (runDirectory as NSString).appendingPathComponent("run.jsonl")
        if FileManager.default.fileExists(atPath: runFile) {
            throw ValidationError("--out: \(runDirectory) already holds a run (run.jsonl); choose another folder, or continue it with --resume \(runDirectory)/ckpt-NNNNNN.gfck")
        }
        return TrainingSetup(config: withWindows, refinement: refinementConfig, train: train, evalDomains: evalDomains,
                             runDirectory: runDirectory, resume: nil)
    }

    func loadData(name: String, path: String) throws -> ByteDataset {
        do {
            if let task = try SyntheticTask.parse(path) { return task.dataset }
            return try ByteDataset.load(name: name, path: path)
        } catch let e as DataError { throw ValidationError(e.description) }
    }

    func dataName(_ path: String) -> String {
        ((path as NSString).lastPathComponent as NSString).deletingPathExtension
    }

    static func defaultRunDirectory() -> String {
        let f = DateFormatter()
        f.dateFormat = "yyyy-MM-dd-HHmmss"
        f.locale = Locale(identifier: "en_US_POSIX")
        return "runs/" + f.string(from: Date())
    }
}

/// The refinement flags (names fixed by the project; see docs/METHOD.md).
struct RefinementOptions: ParsableArguments {
    @Option(help: ArgumentHelp(RefinementFlags.help(for: "--context-bands")))
    var contextBands: String?
    @Option(help: ArgumentHelp(RefinementFlags.help(for: "--context-weights")))
    var contextWeights: String?
    @Option(help: ArgumentHelp(RefinementFlags.help(for: "--time-weights")))
    var timeWeights: String?
    @Option(help: ArgumentHelp(RefinementFlags.help(for: "--time-betas")))
    var timeBetas: String?
    @Option(help: ArgumentHelp(RefinementFlags.help(for: "--depth-groups")))
    var depthGroups: String?
    @Option(help: ArgumentHelp(RefinementFlags.help(for: "--depth-weights")))
    var depthWeights: String?
    @Option(help: ArgumentHelp(RefinementFlags.help(for: "--adaptive")))
    var adaptive: String?
    @Option(help: ArgumentHelp(RefinementFlags.help(for: "--grokfast")))
    var grokfast: String?
    @Option(help: ArgumentHelp(RefinementFlags.help(for: "--time-lambda")))
    var timeLambda: String?

    var flags: RefinementFlags {
        RefinementFlags(contextBands: contextBands, contextWeights: contextWeights, timeWeights: timeWeights,
                        timeBetas: timeBetas, depthGroups: depthGroups, depthWeights: depthWeights,
                        adaptive: adaptive, grokfast: grokfast, timeLambda: timeLambda)
    }
}

/// How a run is shown: the dashboard or plain lines.
struct DisplayOptions: ParsableArguments {
    @Flag(help: "Plain progress lines instead of the dashboard (automatic without a terminal).")
    var noTui = false

    @Option(help: "Steps between progress lines in plain mode (default: about one line a second).")
    var reportEvery: Int?

    @Option(help: "Dashboard theme: default, light, mono, high-contrast, a name in $XDG_CONFIG_HOME/gradflow/themes, or a path.")
    var theme: String?

    @Option(help: "Chart symbols: braille, block or ascii (for fonts without braille).")
    var graph: String = "braille"
}

/// Everything `train` decided before the run starts.
struct TrainingSetup {
    var config: TrainingConfig
    var refinement: RefinementConfig
    var train: ByteDataset
    var evalDomains: [ByteDataset]
    var runDirectory: String
    var resume: Checkpoint?
}
