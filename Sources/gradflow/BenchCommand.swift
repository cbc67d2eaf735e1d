import ArgumentParser
import Dashboard
import DataParallel
import Evaluation
import Foundation
import Kernels
import Model
import Refinement
import RunFlags
import Telemetry
import Training

/// `gradflow bench`: the benchmarks, one subcommand each — `steps` (the default: training steps),
/// `dashboard` (one frame of the view) and `run-file` (reading a run file). The flags `--dashboard`
/// and `--run-file` of `gradflow bench` still choose the last two.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmarks: training steps (default), the dashboard's frame, the run-file reader.",
        subcommands: [BenchSteps.self, BenchDashboard.self, BenchRunFile.self],
        defaultSubcommand: BenchSteps.self
    )
}

/// `gradflow bench [steps]`: times full training steps after warm-up.
struct BenchSteps: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "steps",
        abstract: "Time full training steps (forward, backward, AdamW) and print tokens/s.",
        discussion: """
        Reports the median, min and max over the timed steps after warm-up, and the achieved GFLOP/s \
        (6·params·tokens plus attention). Data are random bytes, so no corpus is needed. \
        Compare with the PyTorch reference side by side: bench/compare.sh. Under mpirun \
        (`mpirun -np 2 gradflow bench --threads 1`) the ranks split the batch and average the \
        gradient as in training; rank 0 prints, and --profile shows the allreduce's share \
        (docs/SCALING.md).
        """
    )

    @OptionGroup var model: ModelOptions

    @OptionGroup(title: "Data-parallel (mpirun)") var dataParallel: DataParallelOptions

    @Option(help: "Timed steps (after warm-up).")
    var steps: Int = 20

    @Option(help: "Untimed warm-up steps.")
    var warmup: Int = 3

    @Option(help: "OpenBLAS threads.")
    var threads: Int = 2

    @Option(help: """
        Refinement during the timed steps: off, manual (non-unit weights on all axes), adaptive \
        (all axes), or an evaluation arm (context-manual, context-adaptive, time-adaptive, \
        depth-adaptive, grokfast). A list (off,adaptive) times each mode in the same process, \
        interleaved in blocks of --steps steps for --rounds rounds, and prints each mode's cost \
        against the first. MODE+snapshot also takes the divergence guard's rolling snapshot every \
        --snapshot-every steps, as `train` does, and reports its cost per step.
        """)
    var refine: String = "off"

    @Option(help: "Steps between rolling snapshots in the MODE+snapshot modes.")
    var snapshotEvery: Int = DivergenceSettings().snapshotEvery

    @Option(help: "Rounds of timed blocks per refinement mode (interleaved when --refine lists several).")
    var rounds: Int = 1

    @Flag(help: "Print the time of each phase of the step (kernels, optimizer, statistics).")
    var profile = false

    @Flag(help: .hidden)   // `gradflow bench --dashboard`: the `dashboard` subcommand, kept as a flag
    var dashboard = false

    @Flag(help: .hidden)   // `gradflow bench --run-file`: the `run-file` subcommand, kept as a flag
    var runFile = false

    @OptionGroup(visibility: .hidden) var runFileOptions: RunFileBenchOptions

    @Flag(help: "Print one JSON object per refinement mode instead of a table.")
    var json = false

    func run() throws {
        if dashboard { return BenchDashboard.run(frames: max(steps, BenchDashboard.minimumFrames), json: json) }
        if runFile { return try BenchRunFile.run(runFileOptions, rounds: rounds, json: json) }
        var base = RunRecipe()
        model.fill(&base)
        let (gpt, preset): (GPTConfig, String)
        do { (gpt, preset) = try base.model() } catch { throw ValidationError("\(error)") }
        guard steps >= 1 else { throw ValidationError("--steps must be at least 1") }
        guard rounds >= 1 else { throw ValidationError("--rounds must be at least 1") }
        let modes = refine.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        guard !modes.isEmpty else { throw ValidationError("--refine needs at least one mode (off, manual or adaptive)") }
        // Started by mpirun: the ranks share each step, and only rank 0 prints.
        let mpi = MPICollective.launchedByMPIRun ? MPICollective.start(bucketBytes: dataParallel.bucketBytes) : nil
        defer { mpi?.finish() }
        let collective: Collective = mpi ?? SingleProcess()
        if let e = Trainer.batchSplitError(batch: model.batch, ranks: collective.size) { throw ValidationError(e) }
        if let e = DivergenceSettings.snapshotEveryProblem(snapshotEvery) { throw ValidationError(e) }
        let trainers = try makeTrainers(modes, gpt: gpt, collective: collective)
        let result = timeInterleaved(trainers, snapshots: modes.map { $0.hasSuffix("+snapshot") })
        guard collective.rank == 0 else { return }
        for m in modes.indices {
            try report(m, modes: modes, result, trainer: trainers[m], gpt: gpt, preset: preset, ranks: collective.size)
        }
    }

    /// One trainer per mode on random bytes, each built from the mode's recipe.
    private func makeTrainers(_ modes: [String], gpt: GPTConfig, collective: Collective) throws -> [Trainer] {
        var rng = Xoshiro256(seed: 1)
        let bytes = (0..<(1 << 20)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        let data = ByteDataset(name: "random", path: "(random bytes)", files: [bytes])
        return try modes.map { mode in
            let base = mode.hasSuffix("+snapshot") ? String(mode.dropLast("+snapshot".count)) : mode
            let recipe = try self.recipe(mode: base, model: gpt)
            do {
                let t = try Trainer(config: try recipe.trainingConfig(), refinement: try recipe.refinementConfig(), train: data,
                                    evalDomains: [], bus: RecordBus(), runDirectory: nil, collective: collective)
                t.interventions = try recipe.interventionSettings(bandNames: t.bandNames, source: .flag)
                return t
            } catch let e as RecipeError {
                throw ValidationError(e.description)
            }
        }
    }

    /// The run a mode times: the model flags, every mode's steps, lr 1e-3, seed 1, no evaluation
    /// and no checkpoints, the guard's snapshot interval, and the mode's refinement flags.
    func recipe(mode: String, model gpt: GPTConfig) throws -> RunRecipe {
        var r: RunRecipe
        do { r = try RunOptions.recipe(parsing: try Self.refinementFlags(mode, model: gpt)) } catch let e as RecipeError {
            throw ValidationError("--refine \(mode): \(e.description)")
        }
        model.fill(&r)
        r.steps = warmup + steps * rounds
        r.learningRate = 1e-3
        r.seed = 1
        r.threads = threads
        r.evalEvery = 0
        r.checkpointEvery = 0
        r.divergence.snapshotEvery = snapshotEvery
        return r
    }

    /// The timings of every mode: each step's milliseconds, each block's median, the snapshots' times.
    struct Timings {
        var times: [[Double]]
        var blockMedians: [[Double]]
        var snapshotTimes: [[Double]]
        var snapshots: [Bool]
        var timers: [PhaseTimer]
    }

    /// Warm-up, then `rounds` interleaved blocks of `steps` steps per mode: machine load that
    /// drifts during the run hits every mode alike.
    private func timeInterleaved(_ trainers: [Trainer], snapshots: [Bool]) -> Timings {
        var r = Timings(times: trainers.map { _ in [] }, blockMedians: trainers.map { _ in [] },
                        snapshotTimes: trainers.map { _ in [] }, snapshots: snapshots, timers: trainers.map { _ in PhaseTimer() })
        var unused: [Double] = []
        for trainer in trainers { _ = BenchSteps.time(trainer, steps: warmup, taken: &unused) }
        if profile { for (trainer, timer) in zip(trainers, r.timers) { trainer.profiler = timer } }
        for _ in 0..<rounds {
            for (m, trainer) in trainers.enumerated() {
                var taken: [Double] = []
                let block = BenchSteps.time(trainer, steps: steps, snapshot: snapshots[m], taken: &taken)
                r.snapshotTimes[m] += taken
                r.times[m] += block
                r.blockMedians[m].append(PairedStatistics.quantile(block.sorted(), 0.5))
            }
        }
        return r
    }

    /// Prints mode `m`'s figures: a JSON object, or the table (with its cost against the first
    /// mode, the snapshot's cost and the phase breakdown when asked).
    private func report(_ m: Int, modes: [String], _ r: Timings, trainer: Trainer, gpt: GPTConfig, preset: String, ranks: Int) throws {
        let mode = modes[m]
        let tokens = Double(model.batch * gpt.context)
        let flopsPerToken = 3 * Double(gpt.forwardFLOPsPerToken)
        let sorted = r.times[m].sorted()
        let med = PairedStatistics.quantile(sorted, 0.5)
        // Cost against the first mode: the ratio of the medians over all interleaved steps, with
        // the quartiles of the per-round ratios of block medians to show the noise.
        let ratios = zip(r.blockMedians[m], r.blockMedians[0]).map { $0 / $1 }.sorted()
        let cost = m > 0 ? (med / PairedStatistics.quantile(r.times[0].sorted(), 0.5) - 1) * 100 : nil
        let quartiles = (ratios[ratios.count / 4], ratios[(3 * ratios.count) / 4])
        if json {
            var obj: [String: Any] = [
                "preset": preset, "params": gpt.parameterCount, "threads": threads, "ranks": ranks, "refine": mode,
                "batch": model.batch, "context": gpt.context, "steps": steps * rounds, "rounds": rounds,
                "tokens_per_second": tokens / med * 1000, "ms_per_step": med,
                "ms_per_step_min": sorted.first!, "ms_per_step_max": sorted.last!,
                "tokens_per_second_min": tokens / sorted.last! * 1000,
                "tokens_per_second_max": tokens / sorted.first! * 1000,
                "gflops": flopsPerToken * tokens / med / 1e6, "impl": "gradflow",
            ]
            if let cost {
                obj["cost_percent_vs_\(modes[0])"] = cost
                obj["round_cost_percent_quartiles"] = [(quartiles.0 - 1) * 100, (quartiles.1 - 1) * 100]
            }
            let data = try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        print("gradflow bench · preset \(preset) · \(gpt.parameterCount.formatted()) params · batch \(model.batch) × T \(gpt.context) · \(ranks > 1 ? "\(ranks) ranks × " : "")\(threads) thread(s) · refine \(mode)")
        print(String(format: "  ms/step   median %8.2f   min %8.2f   max %8.2f", med, sorted.first!, sorted.last!))
        print(String(format: "  tokens/s  median %8.0f   min %8.0f   max %8.0f", tokens / med * 1000,
                     tokens / sorted.last! * 1000, tokens / sorted.first! * 1000))
        print(String(format: "  achieved  %.1f GFLOP/s (%.1f MFLOP per token, forward+backward)",
                     flopsPerToken * tokens / med / 1e6, flopsPerToken / 1e6))
        if let cost {
            print(String(format: "  cost vs %@  %+.1f %% (ratio of medians over %d interleaved rounds; per-round quartiles %+.1f %% .. %+.1f %%)",
                         modes[0] as NSString, cost, rounds, (quartiles.0 - 1) * 100, (quartiles.1 - 1) * 100))
        }
        if r.snapshots[m] {
            let taken = r.snapshotTimes[m]
            let each = taken.isEmpty ? 0 : taken.reduce(0, +) / Double(taken.count)
            let perStep = taken.reduce(0, +) / Double(steps * rounds)
            print(String(format: "  rolling snapshot  %d copies of %.1f MB, %.2f ms each; every %d steps = %.3f ms per step = %.2f %% of the median step",
                         taken.count, Double(trainer.stateBytes) / 1e6, each, snapshotEvery, perStep,
                         100 * perStep / med))
        }
        if profile {
            let timer = r.timers[m]
            let total = timer.seconds.reduce(0, +)
            print("  phase breakdown (ms per step, share of the profiled time):")
            for (name, s) in zip(timer.names, timer.seconds).sorted(by: { $0.1 > $1.1 }) {
                // `%-18@` does not pad on Linux's Foundation: the name is padded here.
                let label = name.count < 18 ? name + String(repeating: " ", count: 18 - name.count) : name
                print("    " + label + String(format: " %8.2f  %5.1f %%", s * 1000 / Double(steps * rounds), 100 * s / total))
            }
        }
    }

    /// The `gradflow train` refinement flags of a `--refine` mode: off, manual, adaptive, or one
    /// of the evaluation's single-axis arms (context-manual, context-adaptive, time-adaptive,
    /// depth-adaptive, grokfast).
    static func refinementFlags(_ mode: String, model gpt: GPTConfig) throws -> [String] {
        // The default bands and depth groups of this model (Refinement's defaults, not restated).
        let contextBands = ContextBands.standard(window: gpt.context).count
        let depthGroups = DepthGroups.defaultGroups(layers: gpt.layers)
        // One weight per context band: `first` for the nearest, `last` for the farthest, 1 between.
        func context(first: String, last: String) -> String {
            contextBands == 1 ? last : ([first] + Array(repeating: "1", count: contextBands - 2) + [last]).joined(separator: ",")
        }
        switch mode {
        case "off": return []
        case "manual":
            return ["--context-weights", context(first: "0.8", last: "1.5"), "--time-weights", "0.8,1,1.2",
                    "--depth-weights", ["0.9", "1", "1.1"].prefix(depthGroups).joined(separator: ",")]
        case "adaptive": return ["--adaptive", "all"]
        case "context-manual": return ["--context-weights", context(first: "1", last: "2")]
        case "context-adaptive": return ["--adaptive", "context"]
        case "time-adaptive": return ["--adaptive", "time"]
        case "depth-adaptive": return ["--adaptive", "depth"]
        case "grokfast": return ["--grokfast", "0.98,2"]
        default:
            throw ValidationError("--refine: each mode must be off, manual, adaptive, context-manual, context-adaptive, time-adaptive, depth-adaptive or grokfast (got '\(mode)')")
        }
    }

    /// Milliseconds of each of `steps` training steps; with `snapshot`, the rolling snapshot is
    /// taken when due (inside the step's time) and its own time is appended to `taken`.
    static func time(_ trainer: Trainer, steps: Int, snapshot: Bool = false, taken: inout [Double]) -> [Double] {
        (0..<steps).map { _ in
            let t0 = DispatchTime.now().uptimeNanoseconds
            if snapshot, let ms = trainer.takeRollingSnapshotIfDue() { taken.append(ms) }
            _ = trainer.trainStep()
            trainer.advance()
            return Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6
        }
    }
}
