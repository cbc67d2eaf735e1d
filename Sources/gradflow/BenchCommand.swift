import ArgumentParser
import Dashboard
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
        Compare with the PyTorch reference side by side: bench/compare.sh.
        """
    )

    @OptionGroup var model: ModelOptions

    @Option(help: "Timed steps (after warm-up).")
    var steps: Int = 20

    @Option(help: "Untimed warm-up steps.")
    var warmup: Int = 3

    @Option(help: "OpenBLAS threads.")
    var threads: Int = 2

    @Option(help: "Refinement during the timed steps: off, manual (non-unit weights on all axes) or adaptive (all axes).")
    var refine: String = "off"

    @Flag(help: "Print the time of each phase of the step (kernels, optimizer, statistics).")
    var profile = false

    @Flag(help: "Time the dashboard instead: one frame at 200×60 with 1,000,000 steps of history.")
    var dashboard = false

    @Flag(help: "Print one JSON object instead of a table.")
    var json = false

    func run() throws {
        if dashboard { return runDashboardBenchmark() }
        let (gpt, preset) = try model.resolve()
        guard steps >= 1 else { throw ValidationError("--steps must be at least 1") }
        var flags = RefinementFlags()
        switch refine {
        case "off": break
        case "manual":
            flags.contextWeights = gpt.context > 65 ? "0.8,1,1.5" : "0.8,1.5"
            flags.timeWeights = "0.8,1,1.2"
            flags.depthWeights = "0.9,1,1.1"
        case "adaptive": flags.adaptive = "all"
        default: throw ValidationError("--refine must be off, manual or adaptive (got '\(refine)')")
        }
        let refinement = try RefinementConfig(flags: flags)
        var rng = Xoshiro256(seed: 1)
        let bytes = (0..<(1 << 20)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        let data = ByteDataset(name: "random", path: "(random bytes)", files: [bytes])
        let config = TrainingConfig(model: gpt, preset: preset, batch: model.batch, steps: warmup + steps,
                                    learningRate: 1e-3, seed: 1, threads: threads, evalEvery: 0,
                                    checkpointEvery: 0)
        let trainer = try Trainer(config: config, refinement: refinement, train: data, evalDomains: [],
                                  bus: RecordBus(), runDirectory: nil)
        var times: [Double] = []
        let timer = PhaseTimer()
        for i in 0..<(warmup + steps) {
            if profile && i == warmup { trainer.profiler = timer }
            let t0 = DispatchTime.now().uptimeNanoseconds
            _ = trainer.trainStep()
            trainer.advance()
            let dt = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6
            if i >= warmup { times.append(dt) }
        }
        times.sort()
        let median = times.count % 2 == 1 ? times[times.count / 2] : (times[times.count / 2 - 1] + times[times.count / 2]) / 2
        let tokens = Double(model.batch * gpt.context)
        let flops = 3 * Double(gpt.forwardFLOPsPerToken) * tokens
        let params = gpt.parameterCount
        if json {
            let obj: [String: Any] = [
                "preset": preset, "params": params, "threads": threads, "refine": refine,
                "batch": model.batch, "context": gpt.context, "steps": steps,
                "tokens_per_second": tokens / median * 1000, "ms_per_step": median,
                "ms_per_step_min": times.first!, "ms_per_step_max": times.last!,
                "tokens_per_second_min": tokens / times.last! * 1000,
                "tokens_per_second_max": tokens / times.first! * 1000,
                "gflops": flops / median / 1e6, "impl": "gradflow",
            ]
            let data = try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            print("gradflow bench · preset \(preset) · \(params.formatted()) params · batch \(model.batch) × T \(gpt.context) · \(threads) thread(s) · refine \(refine)")
            print(String(format: "  ms/step   median %8.2f   min %8.2f   max %8.2f", median, times.first!, times.last!))
            print(String(format: "  tokens/s  median %8.0f   min %8.0f   max %8.0f", tokens / median * 1000,
                         tokens / times.last! * 1000, tokens / times.first! * 1000))
            print(String(format: "  achieved  %.1f GFLOP/s (%.1f MFLOP per token, forward+backward)", flops / median / 1e6,
                         3 * Double(gpt.forwardFLOPsPerToken) / 1e6))
            if profile {
                let total = timer.seconds.reduce(0, +)
                print("  phase breakdown (ms per step, share of the profiled time):")
                for (name, s) in zip(timer.names, timer.seconds).sorted(by: { $0.1 > $1.1 }) {
                    print(String(format: "    %-18@ %8.2f  %5.1f %%", name as NSString, s * 1000 / Double(steps), 100 * s / total))
                }
            }
        }
    }

    /// Frame time of the dashboard's view at 200×60 over a million recorded steps.
    func runDashboardBenchmark() {
        let history = 1_000_000
        let r = DashboardBenchmark.run(steps: history, width: 200, height: 60, frames: max(steps, 5))
        if json {
            print("{\"bench\":\"dashboard\",\"steps\":\(history),\"width\":200,\"height\":60,\"frame_ms_median\":\(r.medianMilliseconds),\"history_bytes\":\(r.historyBytes)}")
        } else {
            print("gradflow bench --dashboard · 200×60 · \(history.formatted()) steps of history")
            print(String(format: "  frame (view + layout + widgets) median %.2f ms · history %.1f KB", r.medianMilliseconds,
                         Double(r.historyBytes) / 1024))
        }
    }
}
