import ArgumentParser
import DataParallel
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
        Did a change help? Every weight or mode change (a key, --change, --schedule) is paired with a \
        twin that keeps the old settings on the same batches for --twin-steps steps; the verdict \
        (helped, hurt, no detectable effect, with the paired Δ and its 95 % interval) is printed and \
        recorded (docs/METHOD.md §6a). Example: --change 200:context.long=4.
        Ctrl-C or SIGTERM stops at the end of the current step, writes a checkpoint and the run file's \
        end record, and exits with status 130.

        Data-parallel over Open MPI: `mpirun --stdin none -np N gradflow train …` runs N ranks of \
        --threads workers each; --batch is the global batch, split evenly over the ranks. Rank 0 shows \
        the dashboard (or the progress), writes the run file and the checkpoints; every node needs the \
        data file at the same path (README, "Several processes and machines").
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

    @Option(help: "Training text: a file, a folder of shards (its regular files by name; last 10 % of each is validation), or synthetic:recall / synthetic:copy / synthetic:lookup / synthetic:induction[:N] / synthetic:repeat[:D] (default: the embedded corpus).")
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

    @Option(help: ArgumentHelp("Continue RUN from its latest checkpoint at or before STEP (default: its latest) into a new run folder (--out) whose header names the parent; settings and data order come from the checkpoint, so without changes the losses equal the parent's.", valueName: "RUN[@STEP]"))
    var fork: String?

    @OptionGroup(title: "Refinement") var refinement: RefinementOptions

    @OptionGroup(title: "Twins and divergence") var interventions: InterventionOptions

    @OptionGroup(title: "Display") var display: DisplayOptions

    @OptionGroup(title: "Data-parallel (mpirun)") var dataParallel: DataParallelOptions

    @OptionGroup var debug: DebugHooks

    func run() throws {
        if MPICollective.launchedByMPIRun { return try DistributedTraining(command: self).run() }
        let setup = try prepare()
        let code = try TrainingSession(setup: setup, display: display, interventions: interventions, debug: debug).run()
        if code != 0 { throw ExitCode(code) }
    }

    /// Checks every flag and loads the data before anything is written. `readCheckpoint` reads
    /// the --resume file (under mpirun: the copy rank 0 read and sent).
    func prepare(readCheckpoint: (String) throws -> Checkpoint = { try Checkpoint.read(path: $0) }) throws -> TrainingSetup {
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
        if let fork {
            if resume != nil { throw ValidationError("--fork and --resume exclude each other: --resume appends to a run, --fork starts a new one") }
            let (ckpt, parent) = try Fork.locate(fork)
            if refinement.flags != RefinementFlags() {
                throw ValidationError("--fork continues the parent's refinement settings; drop the refinement flags (change weights live in the dashboard instead)")
            }
            // The parent's training data unless --data says otherwise (the data order is the checkpoint's).
            let trainPath = try data ?? Fork.trainingDataPath(fork)
            let train = try trainPath.map { try loadData(name: dataName($0), path: $0) } ?? ByteDataset.embedded()
            let runDirectory = try newRunDirectory()
            return TrainingSetup(config: ckpt.metadata.config, refinement: ckpt.metadata.refinement ?? RefinementConfig(),
                                 train: train, evalDomains: evalDomains, runDirectory: runDirectory, resume: ckpt, parent: parent)
        }
        if let resume {
            let ckpt: Checkpoint
            do { ckpt = try readCheckpoint(resume) } catch let e as CheckpointError { throw ValidationError(e.description) }
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
        if let e = withWindows.validationProblem() { throw ValidationError(Self.describe(e)) }
        let train = try data.map { try loadData(name: dataName($0), path: $0) } ?? ByteDataset.embedded()
        do { try train.check(context: config.context) } catch let e as DataError { throw ValidationError(e.description) }
        let runDirectory = try newRunDirectory()
        return TrainingSetup(config: withWindows, refinement: refinementConfig, train: train, evalDomains: evalDomains,
                             runDirectory: runDirectory, resume: nil)
    }

    /// --out, or runs/DATE-TIME; refused when it already holds a run.
    func newRunDirectory() throws -> String {
        let runDirectory = out ?? Self.defaultRunDirectory()
        let runFile = RunFileLocation.file(in: runDirectory)
        if FileManager.default.fileExists(atPath: runFile) {
            throw ValidationError("--out: \(runDirectory) already holds a run (run.jsonl); choose another folder, or continue it with --resume \(runDirectory)/ckpt-NNNNNN.gfck")
        }
        return runDirectory
    }

    /// A configuration problem in the command line's words (the flag that sets the value).
    static func describe(_ problem: TrainingConfig.Problem) -> String {
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
    @Option(help: ArgumentHelp(RefinementFlags.help(for: "--policy-warmup")))
    var policyWarmup: String?

    var flags: RefinementFlags {
        RefinementFlags(contextBands: contextBands, contextWeights: contextWeights, timeWeights: timeWeights,
                        timeBetas: timeBetas, depthGroups: depthGroups, depthWeights: depthWeights,
                        adaptive: adaptive, grokfast: grokfast, timeLambda: timeLambda, policyWarmup: policyWarmup)
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

    @Option(help: ArgumentHelp("A recorded run (folder or run.jsonl) to draw behind this one on the loss chart, with the difference at the latest step; up to 3 (repeat the flag). Aligned by step, or by tokens when batch or context differ.", valueName: "RUN"))
    var compare: [String] = []
}

/// Everything `train` decided before the run starts.
struct TrainingSetup {
    var config: TrainingConfig
    var refinement: RefinementConfig
    var train: ByteDataset
    var evalDomains: [ByteDataset]
    var runDirectory: String
    var resume: Checkpoint?
    /// Set for a fork: `resume` holds the parent's checkpoint, and the run folder is new.
    var parent: RunParent? = nil
}
