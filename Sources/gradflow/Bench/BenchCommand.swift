import ArgumentParser
import Dashboard
import Distributed
import Evaluation
import Foundation
import Kernels
import Model
import Refinement
import Telemetry
import Training

/// `gradflow bench`: times full training steps after warm-up.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
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

    @Flag(help: "Time the dashboard instead: one frame at 200×60 with 1,000,000 steps of history.")
    var dashboard = false

    @Flag(help: """
        Time the run-file reader instead: write --records step records shaped like a preset-S run \
        (every statistic on) and read and summarise them --rounds times (as replay --summary-only).
        """)
    var runFile = false

    @Option(help: "Step records in the --run-file benchmark.")
    var records = 1_000_000

    @Option(help: "Run file of the --run-file benchmark: made when missing, kept (default: a temporary file, deleted).")
    var file: String?

    @Flag(help: "Print one JSON object per refinement mode instead of a table.")
    var json = false

    func run() throws {
        if dashboard { return runDashboardBenchmark() }
        if runFile { return try runFileBenchmark() }
        let (gpt, preset) = try model.resolve()
        guard steps >= 1 else { throw ValidationError("--steps must be at least 1") }
        guard rounds >= 1 else { throw ValidationError("--rounds must be at least 1") }
        let modes = refine.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        guard !modes.isEmpty else { throw ValidationError("--refine needs at least one mode (off, manual or adaptive)") }
        var rng = Xoshiro256(seed: 1)
        let bytes = (0..<(1 << 20)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        let data = ByteDataset(name: "random", path: "(random bytes)", files: [bytes])
        // Started by mpirun: the ranks share each step, and only rank 0 prints.
        let mpi = MPICollective.launchedByMPIRun ? MPICollective.start() : nil
        defer { mpi?.finish() }
        let collective: Collective = mpi ?? SingleProcess()
        if let e = Trainer.batchSplitError(batch: model.batch, ranks: collective.size) { throw ValidationError(e) }
        let ranks = collective.size
        let config = TrainingConfig(model: gpt, preset: preset, batch: model.batch, steps: warmup + steps * rounds,
                                    learningRate: 1e-3, seed: 1, threads: threads, evalEvery: 0,
                                    checkpointEvery: 0)
        if let e = DivergenceSettings.snapshotEveryProblem(snapshotEvery) { throw ValidationError(e) }
        let snapshots = modes.map { $0.hasSuffix("+snapshot") }
        let trainers = try modes.map { mode in
            let base = mode.hasSuffix("+snapshot") ? String(mode.dropLast("+snapshot".count)) : mode
            let t = try Trainer(config: config, refinement: try BenchCommand.refinement(base, model: gpt), train: data,
                                evalDomains: [], bus: RecordBus(), runDirectory: nil, collective: collective)
            var s = InterventionSettings()
            s.divergence.snapshotEvery = snapshotEvery
            t.interventions = s
            return t
        }
        var snapshotTimes = modes.map { _ in [Double]() }
        let timers = modes.map { _ in PhaseTimer() }
        var unused: [Double] = []
        for trainer in trainers { _ = BenchCommand.time(trainer, steps: warmup, taken: &unused) }
        if profile { for (trainer, timer) in zip(trainers, timers) { trainer.profiler = timer } }
        // Interleaved blocks: machine load that drifts during the run hits every mode alike.
        var times = modes.map { _ in [Double]() }
        var blockMedians = modes.map { _ in [Double]() }
        for _ in 0..<rounds {
            for (m, trainer) in trainers.enumerated() {
                var taken: [Double] = []
                let block = BenchCommand.time(trainer, steps: steps, snapshot: snapshots[m], taken: &taken)
                snapshotTimes[m] += taken
                times[m] += block
                blockMedians[m].append(PairedStatistics.quantile(block.sorted(), 0.5))
            }
        }
        let tokens = Double(model.batch * gpt.context)
        let flopsPerToken = 3 * Double(gpt.forwardFLOPsPerToken)
        for (m, mode) in modes.enumerated() where collective.rank == 0 {
            let sorted = times[m].sorted()
            let med = PairedStatistics.quantile(sorted, 0.5)
            // Cost against the first mode: the ratio of the medians over all interleaved steps, with
            // the quartiles of the per-round ratios of block medians to show the noise.
            let ratios = zip(blockMedians[m], blockMedians[0]).map { $0 / $1 }.sorted()
            let cost = m > 0 ? (med / PairedStatistics.quantile(times[0].sorted(), 0.5) - 1) * 100 : nil
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
                continue
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
            if snapshots[m] {
                let each = snapshotTimes[m].isEmpty ? 0 : snapshotTimes[m].reduce(0, +) / Double(snapshotTimes[m].count)
                let perStep = snapshotTimes[m].reduce(0, +) / Double(steps * rounds)
                print(String(format: "  rolling snapshot  %d copies of %.1f MB, %.2f ms each; every %d steps = %.3f ms per step = %.2f %% of the median step",
                             snapshotTimes[m].count, Double(trainers[m].stateBytes) / 1e6, each, snapshotEvery, perStep,
                             100 * perStep / med))
            }
            if profile {
                let timer = timers[m]
                let total = timer.seconds.reduce(0, +)
                print("  phase breakdown (ms per step, share of the profiled time):")
                for (name, s) in zip(timer.names, timer.seconds).sorted(by: { $0.1 > $1.1 }) {
                    print(String(format: "    %-18@ %8.2f  %5.1f %%", name as NSString, s * 1000 / Double(steps * rounds), 100 * s / total))
                }
            }
        }
    }

    /// The refinement of a `--refine` mode: off, manual, adaptive, or one of the evaluation's
    /// single-axis arms (context-manual, context-adaptive, time-adaptive, depth-adaptive, grokfast).
    static func refinement(_ mode: String, model gpt: GPTConfig) throws -> RefinementConfig {
        var flags = RefinementFlags()
        let contextBands = gpt.context > 65 ? 3 : 2
        switch mode {
        case "off": break
        case "manual":
            flags.contextWeights = contextBands == 3 ? "0.8,1,1.5" : "0.8,1.5"
            flags.timeWeights = "0.8,1,1.2"
            // One weight per default depth group: min(3, layers).
            flags.depthWeights = ["0.9", "1", "1.1"].prefix(min(3, gpt.layers)).joined(separator: ",")
        case "adaptive": flags.adaptive = "all"
        case "context-manual": flags.contextWeights = contextBands == 3 ? "1,1,2" : "1,2"
        case "context-adaptive": flags.adaptive = "context"
        case "time-adaptive": flags.adaptive = "time"
        case "depth-adaptive": flags.adaptive = "depth"
        case "grokfast": flags.grokfast = "0.98,2"
        default:
            throw ValidationError("--refine: each mode must be off, manual, adaptive, context-manual, context-adaptive, time-adaptive, depth-adaptive or grokfast (got '\(mode)')")
        }
        return try RefinementConfig(flags: flags)
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

    /// Reading and summarising a run file of `records` step records.
    func runFileBenchmark() throws {
        guard records >= 1 else { throw ValidationError("--records must be at least 1") }
        let path = file ?? NSTemporaryDirectory() + "gradflow-bench-\(records)-\(getpid()).jsonl"
        defer { if file == nil { try? FileManager.default.removeItem(atPath: path) } }
        if !FileManager.default.fileExists(atPath: path) {
            let t0 = Date()
            try RunFileBenchmark.write(to: path, records: records)
            if !json { print(String(format: "wrote %@ in %.1f s", path as NSString, Date().timeIntervalSince(t0))) }
        }
        let bytes = (try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        _ = try RunFileBenchmark.time(path: path, rounds: 1)  // warm the page cache
        let rounds = try RunFileBenchmark.time(path: path, rounds: rounds)
        let wall = PairedStatistics.quantile(rounds.map(\.wallSeconds).sorted(), 0.5)
        let cpu = PairedStatistics.quantile(rounds.map(\.cpuSeconds).sorted(), 0.5)
        let stepRecords = rounds[0].summary.stepRecords
        if json {
            let obj: [String: Any] = [
                "bench": "run-file", "step_records": stepRecords, "bytes": bytes, "rounds": rounds.count,
                "wall_s_median": wall, "cpu_s_median": cpu, "wall_s": rounds.map(\.wallSeconds),
                "mb_per_s": Double(bytes) / wall / 1e6,
            ]
            let data = try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        print("gradflow bench --run-file · \(stepRecords.formatted()) step records · \(String(format: "%.0f", Double(bytes) / 1e6)) MB (\(bytes / max(1, stepRecords)) bytes per step record)")
        print(String(format: "  read + summary  median wall %.2f s, CPU %.2f s over %d rounds (wall: %@) · %.0f MB/s · %.2f M records/s",
                     wall, cpu, rounds.count, rounds.map { String(format: "%.2f", $0.wallSeconds) }.joined(separator: " ") as NSString,
                     Double(bytes) / wall / 1e6, Double(stepRecords) / wall / 1e6))
    }

    /// Frame time of the dashboard's view at 200×60 over a million recorded steps.
    func runDashboardBenchmark() {
        let history = 1_000_000
        let r = DashboardBenchmark.run(steps: history, width: 200, height: 60, frames: max(steps, 5))
        if json {
            print("{\"bench\":\"dashboard\",\"steps\":\(history),\"width\":200,\"height\":60,\"frame_ms_median\":\(r.medianMilliseconds),\"history_bytes\":\(r.historyBytes)}")
        } else {
            print("gradflow bench --dashboard · 200×60 · \(history.formatted()) steps of history")
            print(String(format: "  frame (view + layout + widgets) median %.2f ms · history %@", r.medianMilliseconds,
                         Format.bytes(r.historyBytes)))
        }
    }
}
