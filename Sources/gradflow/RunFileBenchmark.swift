import Kernels
import Refinement
import Telemetry
import Foundation

/// `gradflow bench run-file` (or `bench --run-file`): writes a run file of step records shaped like a preset-S run with
/// every statistic on (4 layers, 4 heads, 3 bands per axis, 3 depth groups; values at full
/// precision, as the trainer computes them), then times reading it back and folding its summary,
/// the work of `gradflow replay --summary-only`.
public enum RunFileBenchmark {
    /// One timed read of the file.
    public struct Round {
        public var wallSeconds: Double
        public var cpuSeconds: Double
        public var summary: RunSummary
    }

    /// Writes `records` step records (plus an eval every 500 steps, an event and a checkpoint every
    /// 100,000, and an end record) to a new file at `path`; returns its size in bytes.
    /// Throws when the file exists (a writer never overwrites).
    @discardableResult
    public static func write(to path: String, records: Int) throws -> Int {
        let writer = try RunFileWriter.create(path: path, header: header(totalSteps: records))
        var random = SplitMix64(state: 1)
        var t = 0.0
        var loss = 5.5
        for i in 0..<records {
            t += 0.085 + 0.001 * random.unit()
            loss = 1 + 4.5 * exp(-Double(i) / Double(max(1, records / 5))) + 0.1 * random.unit()
            try writer.append(.step(step(i, t: t, loss: loss, random: &random)))
            let done = i + 1
            if done % 500 == 0 {
                let domains = [DomainEval(name: "plays", loss: loss + 0.1), DomainEval(name: "sonnets", loss: loss + 0.3)]
                try writer.append(.eval(EvalRecord(
                    step: done, t: t, domains: domains, lossByPosition: (0..<32).map { _ in 3 * random.unit() },
                    contextGain: [8, 32, 64].map { ContextGain(window: $0, delta: random.unit()) })))
            }
            if done % 100_000 == 0 {
                try writer.append(.event(EventRecord(step: done, t: t, kind: .weight, axis: .context, band: 2,
                                                     oldValue: 1, newValue: 1.5, source: .key, message: "")))
                try writer.append(.checkpoint(CheckpointRecord(step: done, t: t, path: "ckpt-\(done).bin",
                                                               bytes: 3_400_000, milliseconds: 12.5)))
            }
        }
        try writer.append(.end(EndRecord(step: records, t: t + 1, reason: .completed, finalLoss: loss,
                                         bestValidationLoss: nil, message: "")))
        try writer.close()
        return writer.bytesWritten
    }

    /// Reads the file at `path` and times `rounds` reads-and-summaries.
    public static func time(path: String, rounds: Int) throws -> [Round] {
        try (0..<max(1, rounds)).map { _ in
            let wall0 = DispatchTime.now().uptimeNanoseconds
            let cpu0 = processCPUSeconds()
            let summary = try RunSummary.read(path: path)
            return Round(wallSeconds: Double(DispatchTime.now().uptimeNanoseconds - wall0) / 1e9,
                         cpuSeconds: processCPUSeconds() - cpu0, summary: summary)
        }
    }

    /// User plus system CPU time of this process so far (all threads).
    static func processCPUSeconds() -> Double {
        var usage = rusage()
        #if os(Linux)
        getrusage(RUSAGE_SELF.rawValue, &usage)
        #else
        getrusage(RUSAGE_SELF, &usage)
        #endif
        func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
        return seconds(usage.ru_utime) + seconds(usage.ru_stime)
    }

    static func header(totalSteps: Int) -> RunHeader {
        func bands(_ names: [String], _ floor: Double, _ ceiling: Double) -> [BandInfo] {
            names.map { BandInfo(name: $0, extent: $0, floor: floor, ceiling: ceiling) }
        }
        let axes = [
            AxisInfo(axis: .context, bands: bands(["local", "phrase", "long"], 0.5, 4), edges: [8, 64]),
            AxisInfo(axis: .time, bands: bands(["high", "mid", "low"], 0.25, 4), edges: [0.9, 0.99]),
            AxisInfo(axis: .depth, bands: bands(["lower", "middle", "upper"], 0.5, 2), edges: [2, 3]),
        ]
        return RunHeader(runName: "run-file benchmark", config: .object([("preset", .string("S"))]), axes: axes,
                         seed: 1, data: [DataSourceInfo(name: "train", path: "(synthetic)", bytes: 1_000_000, hash: "0")],
                         startTime: 0, threads: 2, parameters: 842_496, totalSteps: totalSteps, preset: "S")
    }

    static func step(_ i: Int, t: Double, loss: Double, random r: inout SplitMix64) -> StepRecord {
        func samples(_ axis: ScaleAxis, _ mode: AxisMode, _ scale: Double) -> AxisSample {
            AxisSample(axis: axis, mode: mode, bands: (0..<3).map { _ in
                BandSample(weight: 0.5 + 1.5 * r.unit(), energy: scale * r.unit())
            })
        }
        func shares() -> [Double] {
            let a = r.unit() + 0.1, b = r.unit() + 0.1, c = r.unit() + 0.1
            return [a / (a + b + c), b / (a + b + c), c / (a + b + c)]
        }
        let byHead = (0..<4).map { _ in (0..<4).map { _ in shares() } }
        return StepRecord(
            step: i, t: t, loss: loss, learningRate: 1e-3 * r.unit(), gradNorm: 2 * r.unit(), clipScale: 1,
            tokensPerSecond: 12_000 + 500 * r.unit(), stepMilliseconds: 85 + r.unit(),
            axes: [samples(.context, .adaptive, 1e-7), samples(.time, .adaptive, 5), samples(.depth, .adaptive, 1)],
            contextEnergyByLayer: (0..<4).map { _ in (0..<3).map { _ in 1e-8 * r.unit() } },
            attentionMass: byHead.map { heads in (0..<3).map { b in heads.reduce(0) { $0 + $1[b] } / 4 } },
            attentionMassByHead: byHead,
            oscillation: (0..<3).map { _ in
                OscillationSample(flipRate: 0.01 * r.unit(), gradientCosine: r.unit(), relativeUpdate: 0.02 * r.unit())
            },
            spike: i % 997 == 996, guardFallbacks: i / 100)
    }
}
