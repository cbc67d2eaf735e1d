import ArgumentParser
import DataParallel
import Foundation
import Refinement
import RunFlags
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
        Ctrl-C, SIGTERM or SIGHUP (the terminal gone; ignored under nohup) stops at the end of the \
        current step, writes a checkpoint and the run file's end record, and exits with status 130; \
        so does a closed standard output (`--no-tui | head`).

        Data-parallel over Open MPI: `mpirun --stdin none -np N gradflow train …` runs N ranks of \
        --threads workers each; --batch is the global batch, split evenly over the ranks. Rank 0 shows \
        the dashboard (or the progress), writes the run file and the checkpoints; every node needs the \
        data file at the same path (README, "Several processes and machines").
        """
    )

    /// The flags that make the run: model, schedule, seeds, data, refinement, twins, divergence.
    @OptionGroup var options: RunOptions

    @Option(help: "Run folder (default runs/YYYY-MM-DD-HHMMSS); an existing run is never overwritten.")
    var out: String?

    @Option(help: ArgumentHelp("Continue a run from its checkpoint file, or from the latest checkpoint of a run folder: model, schedule, steps and refinement come from the checkpoint; the run file in its folder gets the new records.", valueName: "CKPT|RUNDIR"))
    var resume: String?

    @Option(help: ArgumentHelp("Continue RUN from its latest checkpoint at or before STEP (default: its latest) into a new run folder (--out) whose header names the parent; settings and data order come from the checkpoint, so without changes the losses equal the parent's.", valueName: "RUN[@STEP]"))
    var fork: String?

    @OptionGroup(title: "Display") var display: DisplayOptions

    @OptionGroup(title: "Data-parallel (mpirun)") var dataParallel: DataParallelOptions

    @OptionGroup var debug: DebugHooks

    func run() throws {
        if MPICollective.launchedByMPIRun { return try DistributedTraining(command: self).run() }
        let setup = try prepare()
        let code = try TrainingSession(setup: setup, display: display, debug: debug).run()
        if code != 0 { throw ExitCode(code) }
    }

    /// Checks every flag and loads the data before anything is written. `readCheckpoint` reads
    /// the --resume checkpoint, or a run folder's latest (under mpirun: the copy rank 0 read and sent).
    func prepare(readCheckpoint: (String) throws -> Checkpoint = { try Checkpoint.read(path: try CheckpointFiles.resolve($0)) }) throws -> TrainingSetup {
        let recipe = options.recipe()
        do {
            let evalDomains = try recipe.evalDomains()
            if let fork {
                if resume != nil { throw ValidationError("--fork and --resume exclude each other: --resume appends to a run, --fork starts a new one") }
                let (ckpt, parent) = try Fork.locate(fork)
                if recipe.refinement != RefinementFlags() {
                    throw ValidationError("--fork continues the parent's refinement settings; drop the refinement flags (change weights live in the dashboard instead)")
                }
                try Self.refuseCheckpointSettings(recipe, flag: "--fork", checkpoint: ckpt)
                // The parent's training data unless --data says otherwise (the data order is the checkpoint's).
                var source = recipe
                source.data = try recipe.data ?? Fork.trainingDataPath(fork)
                let runDirectory = try newRunDirectory()
                return TrainingSetup(config: ckpt.metadata.config, refinement: ckpt.metadata.refinement ?? RefinementConfig(),
                                     recipe: recipe, train: try source.trainingData(), evalDomains: evalDomains,
                                     runDirectory: runDirectory, resume: ckpt, parent: parent)
            }
            if let resume {
                let ckpt: Checkpoint
                do { ckpt = try readCheckpoint(resume) } catch let e as CheckpointError { throw ValidationError(e.description) }
                if recipe.refinement != RefinementFlags() {
                    throw ValidationError("--resume continues the run's own refinement settings; drop the refinement flags (change weights live in the dashboard instead)")
                }
                try Self.refuseCheckpointSettings(recipe, flag: "--resume", checkpoint: ckpt)
                let folder = ((ckpt.path ?? resume) as NSString).deletingLastPathComponent
                let runDirectory = folder.isEmpty ? "." : folder
                if let out, RunFileLocation.canonical(out) != RunFileLocation.canonical(runDirectory) {
                    throw ValidationError("--out \(out): --resume continues the run in its checkpoint's folder (\(runDirectory)); drop --out, or use --fork \(runDirectory) --out \(out) to continue it as a new run")
                }
                // The run's own training data unless --data says otherwise, as for --fork (a resume
                // without --data trained on the embedded corpus whatever the run had used).
                var source = recipe
                source.data = try recipe.data ?? Fork.trainingDataPath(runDirectory, flag: "--resume")
                return TrainingSetup(config: ckpt.metadata.config, refinement: ckpt.metadata.refinement ?? RefinementConfig(),
                                     recipe: recipe, train: try source.trainingData(), evalDomains: evalDomains,
                                     runDirectory: runDirectory, resume: ckpt)
            }
            let refinement = try recipe.refinementConfig()
            let config = try recipe.trainingConfig()
            let train = try recipe.trainingData()
            do { try train.check(context: config.context) } catch let e as DataError { throw ValidationError(e.description) }
            let runDirectory = try newRunDirectory()
            return TrainingSetup(config: config, refinement: refinement, recipe: recipe, train: train, evalDomains: evalDomains,
                                 runDirectory: runDirectory, resume: nil)
        } catch let e as RecipeError {
            throw ValidationError(e.description)
        }
    }

    /// Refuses model, schedule and evaluation flags on a `--resume` or `--fork` that differ from the
    /// checkpoint, whose settings the run takes: a silently ignored `--steps 5000` would look like
    /// a longer run.
    static func refuseCheckpointSettings(_ recipe: RunRecipe, flag: String, checkpoint: Checkpoint) throws {
        let differing = recipe.settingsDiffering(from: checkpoint.metadata.config)
        guard !differing.isEmpty else { return }
        throw ValidationError("\(flag) takes the model, schedule, seeds, threads and evaluation settings from the checkpoint; "
                              + "drop \(differing.joined(separator: ", "))")
    }

    /// --out, or runs/DATE-TIME; refused when it already holds a run.
    func newRunDirectory() throws -> String {
        let runDirectory = out ?? Self.freeRunDirectory(Self.defaultRunDirectory())
        let runFile = RunFileLocation.file(in: runDirectory)
        if FileManager.default.fileExists(atPath: runFile) {
            throw ValidationError("--out: \(runDirectory) already holds a run (run.jsonl); choose another folder, or continue it with --resume \(runDirectory)/ckpt-NNNNNN.gfck")
        }
        return runDirectory
    }

    /// `base`, or for runs started within the same second the next name that holds no run yet
    /// (`base-2`, `base-3`, …).
    static func freeRunDirectory(_ base: String) -> String {
        var candidate = base, n = 2
        while FileManager.default.fileExists(atPath: RunFileLocation.file(in: candidate)) {
            candidate = "\(base)-\(n)"
            n += 1
        }
        return candidate
    }

    static func defaultRunDirectory() -> String {
        let f = DateFormatter()
        f.dateFormat = "yyyy-MM-dd-HHmmss"
        f.locale = Locale(identifier: "en_US_POSIX")
        return "runs/" + f.string(from: Date())
    }
}

/// How a run is shown: the dashboard or plain lines.
struct DisplayOptions: ParsableArguments {
    @Flag(help: "Plain progress lines instead of the dashboard (automatic without a terminal).")
    var noTui = false

    @Option(help: "Steps between progress lines in plain mode (default: about 20 lines over the run, at a round number of steps).")
    var reportEvery: Int?

    @Option(help: "Dashboard theme: default, light, mono, high-contrast, a name in $XDG_CONFIG_HOME/gradflow/themes, or a path.")
    var theme: String?

    @Option(help: "Chart symbols: braille, block or ascii (for fonts without braille).")
    var graph: String = "braille"

    @Option(help: ArgumentHelp("A recorded run (folder or run.jsonl) to draw behind this one on the loss chart, with the difference at the latest step; up to 3 (repeat the flag). Aligned by step, or by tokens when batch or context differ.", valueName: "RUN"))
    var compare: [String] = []

    func validate() throws {
        if let reportEvery, reportEvery < 1 {
            throw ValidationError("--report-every must be a number of steps, 1 or more (got \(reportEvery))")
        }
    }
}

/// Everything `train` decided before the run starts.
struct TrainingSetup {
    var config: TrainingConfig
    var refinement: RefinementConfig
    /// The flags as given: a resumed or forked run takes its twins, changes and guard from here.
    var recipe: RunRecipe
    var train: ByteDataset
    var evalDomains: [ByteDataset]
    var runDirectory: String
    var resume: Checkpoint?
    /// Set for a fork: `resume` holds the parent's checkpoint, and the run folder is new.
    var parent: RunParent? = nil
}
