import Refinement
import Foundation
import Telemetry

/// A deterministic made-up run (S preset, three axes, four layers, three validation domains) for
/// tests, the benchmark and trying the dashboard without training.
public enum SyntheticRun {
    public static func header(totalSteps: Int = 5000) -> RunHeader {
        // Every axis adaptive: the header shows the adaptive bounds of Refinement's table.
        func bands(_ axis: ScaleAxis, _ names: [(String, String)]) -> [BandInfo] {
            names.enumerated().map { i, n in
                let b = AxisBounds.adaptive(axis, band: i)
                return BandInfo(name: n.0, extent: n.1, floor: b.floor, ceiling: b.ceiling)
            }
        }
        let axes = [
            AxisInfo(axis: .context, bands: bands(.context, [("local", "0–8"), ("phrase", "9–64"), ("long", "65–127")]),
                     edges: [8, 64]),
            AxisInfo(axis: .time, bands: bands(.time, [("high", "β .90"), ("mid", "β .99"), ("low", "")]), edges: [0.9, 0.99]),
            AxisInfo(axis: .depth, bands: bands(.depth, [("lower", "L0–1"), ("middle", "L2"), ("upper", "L3+hd")]), edges: [2, 3]),
        ]
        let data = [
            DataSourceInfo(name: "train", path: "data/shakespeare.txt", bytes: 1_048_576, hash: "0"),
            DataSourceInfo(name: "plays", path: "data/plays.txt", bytes: 65_536, hash: "0"),
            DataSourceInfo(name: "sonnets", path: "data/sonnets.txt", bytes: 32_768, hash: "0"),
            DataSourceInfo(name: "fortunes", path: "data/fortunes.txt", bytes: 16_384, hash: "0"),
        ]
        return RunHeader(runName: "synthetic", config: .object([("T", .number(128)), ("preset", .string("S"))]),
                         axes: axes, seed: 1, data: data, startTime: 0, threads: 1, parameters: 842_496,
                         totalSteps: totalSteps, preset: "S")
    }

    /// Deterministic pseudo-noise in [-1, 1].
    static func noise(_ i: Int, _ k: Int) -> Double {
        var x = UInt64(truncatingIfNeeded: i &* 0x9E37_79B9 &+ k &* 0x85EB_CA6B) &+ 0x1234_5678
        x ^= x >> 33; x = x &* 0xFF51_AFD7_ED55_8CCD; x ^= x >> 33
        return Double(x % 20001) / 10000 - 1
    }

    public static func step(_ i: Int, weights: [Double] = [1, 1, 1.36, 0.62, 1, 1.8, 0.91, 1, 1.24]) -> StepRecord {
        let progress = Double(i)
        let loss = 1.25 + 3.2 * exp(-progress / 350) + 0.05 * noise(i, 1) + (i % 500 == 499 ? 0.8 : 0)
        let ctx = [0.62 + 0.02 * noise(i, 2), 0.27, 0.11 + 0.01 * noise(i, 3)]
        let tim = [0.48, 0.21, 0.31 + 0.02 * noise(i, 4)]
        let dep = [0.29, 0.33, 0.38]
        func sample(_ axis: ScaleAxis, _ e: [Double], _ w: ArraySlice<Double>, _ mode: AxisMode) -> AxisSample {
            AxisSample(axis: axis, mode: mode, bands: zip(e, w).map { BandSample(weight: $1, energy: $0) })
        }
        let axes = [
            sample(.context, ctx, weights[0..<3], .adaptive),
            sample(.time, tim, weights[3..<6], .adaptive),
            sample(.depth, dep, weights[6..<9], .adaptive),
        ]
        let mass = (0..<4).map { l -> [Double] in
            let long = 0.05 + 0.07 * Double(l) + 0.0001 * Double(i % 1000) / 10
            return [0.6 - 0.1 * Double(l), 0.4 - long + 0.1 * Double(l), long]
        }
        let heads = mass.map { m in (0..<4).map { h in [m[0] + 0.02 * Double(h), m[1], Swift.max(0, m[2] - 0.02 * Double(h))] } }
        let osc = (0..<3).map { g in
            OscillationSample(flipRate: 0.40 + 0.08 * Double(g) + 0.02 * noise(i, 10 + g),
                              gradientCosine: 0.22 - 0.15 * Double(g) + 0.02 * noise(i, 20 + g), relativeUpdate: 0.001)
        }
        return StepRecord(step: i, t: Double(i) * 0.098, loss: loss, learningRate: 3e-4, gradNorm: 1 + 0.2 * noise(i, 5),
                          clipScale: 1, tokensPerSecond: 10_900 + 100 * noise(i, 6), stepMilliseconds: 94,
                          axes: axes, contextEnergyByLayer: [], attentionMass: mass, attentionMassByHead: heads,
                          oscillation: osc, spike: i % 500 == 499, guardFallbacks: i / 400)
    }

    public static func eval(_ i: Int) -> EvalRecord {
        let base = 1.3 + 3.1 * exp(-Double(i) / 380)
        return EvalRecord(step: i, t: Double(i) * 0.098,
                          domains: [DomainEval(name: "plays", loss: base + 0.07), DomainEval(name: "sonnets", loss: base + 0.3),
                                    DomainEval(name: "fortunes", loss: base + 0.9)],
                          lossByPosition: (0..<32).map { 2.4 - 0.9 * log(1 + Double($0)) / log(32) },
                          contextGain: [ContextGain(window: 8, delta: 0.61), ContextGain(window: 32, delta: 0.23),
                                        ContextGain(window: 64, delta: 0.09)],
                          samplePrompt: "\n", sample: sample(i))
    }

    /// A sample that reads better as training goes on: a fixed text with fewer bytes garbled.
    static func sample(_ i: Int) -> String {
        let text = Array("KING HENRY:\nNow, lords, the matter stands upon our honour;\nGo bid the soldiers shall be ready straight.\n\nWARWICK:\nMy lord, I go.".unicodeScalars)
        let garble = exp(-Double(i) / 400)
        var h = UInt64(truncatingIfNeeded: i) &* 0x9E37_79B9_7F4A_7C15
        return String(String.UnicodeScalarView(text.map { c in
            h = h &* 6364136223846793005 &+ 1442695040888963407
            guard Double(h >> 11) / Double(1 << 53) < garble, c != "\n" else { return c }
            return Unicode.Scalar(UInt8(97 + (h >> 33) % 26))
        }))
    }

    /// Records for steps 1…`steps`: a step each, an eval every `evalEvery`, two weight changes,
    /// the adaptive warm-up event and a checkpoint at 1000.
    public static func records(steps: Int, evalEvery: Int = 100) -> [Record] {
        var out: [Record] = []
        out.reserveCapacity(steps + steps / Swift.max(1, evalEvery) + 8)
        for i in 1...Swift.max(1, steps) {
            // As the trainer orders them: a change made at the boundary before step i, then step i.
            if i == 610 || i == 1240 {
                out.append(.event(EventRecord(step: i, t: Double(i) * 0.098, kind: .weight, axis: .context, band: 2,
                                              oldValue: i == 610 ? 1.0 : 1.36, newValue: i == 610 ? 1.36 : 1.5, source: .key)))
            }
            out.append(.step(step(i)))
            if i == 200 { out.append(.event(EventRecord(step: i, t: 19.6, kind: .adaptive, source: .trainer, message: "warm-up done"))) }
            if i % 500 == 499 {
                out.append(.event(EventRecord(step: i, t: Double(i) * 0.098, kind: .warning, source: .divergenceGuard,
                                              message: "loss bump 2.224 > 1.2 × median 1.651 of the last 50 (and 0.573 nat above it)")))
            }
            if i % evalEvery == 0 { out.append(.eval(eval(i))) }
            if i == 1000 {
                out.append(.checkpoint(CheckpointRecord(step: i, t: 98, path: "runs/synthetic/ckpt-001000.gfck",
                                                        bytes: 3_400_000, milliseconds: 41)))
            }
        }
        return out
    }
}
