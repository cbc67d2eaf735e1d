import Refinement
import Foundation
@testable import RunFormat
@testable import Telemetry

/// Deterministic generator for test data (SplitMix64).
struct TestRNG: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

enum Fixtures {
    static func header(totalSteps: Int = 100, name: String = "test-run") -> RunHeader {
        RunHeader(
            runName: name,
            config: .object([
                ("preset", .string("S")), ("layers", .number(4)), ("lr", .number(3e-4)),
                ("notes", .string("quote \" backslash \\ newline \n tab \t é ✓")),
                ("flags", .array([.bool(true), .bool(false), .null])),
            ]),
            axes: [
                AxisInfo(axis: .context, bands: [
                    BandInfo(name: "local", extent: "0–8", floor: 0.5, ceiling: 4),
                    BandInfo(name: "phrase", extent: "9–64", floor: 0.5, ceiling: 4),
                    BandInfo(name: "long", extent: "65–127", floor: 0.5, ceiling: 4),
                ], edges: [8, 64]),
                AxisInfo(axis: .time, bands: [
                    BandInfo(name: "high", extent: "g−m_f", floor: 0.25, ceiling: 1),
                    BandInfo(name: "mid", extent: "m_f−m_s", floor: 0.5, ceiling: 2),
                    BandInfo(name: "low", extent: "m_s", floor: 0.5, ceiling: 3),
                ], edges: [0.9, 0.99]),
                AxisInfo(axis: .depth, bands: [
                    BandInfo(name: "lower", extent: "L0–1", floor: 0.5, ceiling: 2),
                    BandInfo(name: "middle", extent: "L2", floor: 0.5, ceiling: 2),
                    BandInfo(name: "upper", extent: "L3", floor: 0.5, ceiling: 2),
                ], edges: [2, 3]),
            ],
            seed: 0xFFFF_FFFF_FFFF_FFF1,
            data: [DataSourceInfo(name: "train", path: "/tmp/x.txt", bytes: 123_456, hash: "cbf29ce484222325")],
            startTime: 1_764_424_549.25, threads: 2, parameters: 842_496, totalSteps: totalSteps, preset: "S")
    }

    /// A step record shaped like preset S (4 layers, 4 heads, 3 bands per axis), values from `rng`.
    /// The statistics are Float values (the run file stores them at single precision), so a
    /// record reads back equal to itself.
    static func step(_ i: Int, rng: inout TestRNG, byHead: Bool = true) -> StepRecord {
        func r() -> Double { Double.random(in: 0..<1, using: &rng) }
        func f(_ x: Double) -> Double { Double(Float(x)) }
        let axes = ScaleAxis.allCases.map { axis in
            AxisSample(axis: axis, mode: axis == .depth ? .manual : .adaptive,
                       bands: (0..<3).map { _ in BandSample(weight: f(0.5 + r()), energy: f(r() * 1e-3)) })
        }
        return StepRecord(
            step: i, t: Double(i) * 0.085 + r() * 1e-3, loss: 5.5 * exp(-Double(i) / 3000) + 1 + r() * 0.1,
            learningRate: 3e-4 * Double(Float(r())), gradNorm: f(r() * 2), clipScale: 1, tokensPerSecond: f(12_000 + r() * 500),
            stepMilliseconds: f(85 + r()), axes: axes,
            contextEnergyByLayer: (0..<4).map { _ in (0..<3).map { _ in f(r() * 1e-4) } },
            attentionMass: (0..<4).map { _ in (0..<3).map { _ in f(r()) } },
            attentionMassByHead: byHead ? (0..<4).map { _ in (0..<4).map { _ in (0..<3).map { _ in f(r()) } } } : [],
            oscillation: (0..<3).map { _ in
                OscillationSample(flipRate: f(r()), gradientCosine: f(r() * 2 - 1), relativeUpdate: f(r() * 1e-3))
            },
            spike: i % 97 == 13, guardFallbacks: i / 10)
    }

    /// A small run: steps with an eval every 20, a weight event, a checkpoint and an end record.
    static func records(steps: Int = 100, seed: UInt64 = 1, byHead: Bool = true) -> [Record] {
        var rng = TestRNG(seed: seed)
        var out: [Record] = []
        for i in 1...steps {
            let s = step(i, rng: &rng, byHead: byHead)
            out.append(.step(s))
            if i == 30 {
                out.append(.event(EventRecord(step: i, t: s.t, kind: .weight, axis: .context, band: 2, layer: nil,
                                              oldValue: 1, newValue: 1.5, source: .key, message: "long ×1.5")))
            }
            if i % 20 == 0 {
                out.append(.eval(EvalRecord(step: i, t: s.t + 0.01, domains: [
                    DomainEval(name: "train-val", loss: 2.5 - Double(i) / 100),
                    DomainEval(name: "sonnets", loss: 2.8 - Double(i) / 120),
                ], lossByPosition: [3, 2.5, Double(Float(2.2))],
                   contextGain: [ContextGain(window: 8, delta: Double(Float(0.3))), ContextGain(window: 32, delta: Double(Float(0.1)))])))
            }
            if i == steps / 2 {
                out.append(.checkpoint(CheckpointRecord(step: i, t: s.t + 0.02, path: "ckpt-\(i).bin", bytes: 3_400_000, milliseconds: 12.5)))
            }
        }
        out.append(.end(EndRecord(step: steps, t: Double(steps) * 0.085 + 1, reason: .completed, finalLoss: 1.5,
                                  bestValidationLoss: 1.6, message: "")))
        return out
    }

    /// A fresh temporary directory, removed by the caller with `cleanup`.
    static func tempDirectory(_ name: String = #function) -> String {
        let safe = name.filter { $0.isLetter || $0.isNumber }
        let dir = NSTemporaryDirectory() + "gradflow-telemetry-\(safe)-\(UUID().uuidString)"
        try! FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    static func cleanup(_ dir: String) {
        try? FileManager.default.removeItem(atPath: dir)
    }

    /// Writes a complete run file (header + records) and returns its path.
    static func writeRun(in dir: String, header: RunHeader = Fixtures.header(), records: [Record] = Fixtures.records()) throws -> String {
        let path = dir + "/run.jsonl"
        let w = try RunFileWriter.create(path: path, header: header)
        for r in records { try w.append(r) }
        try w.close()
        return path
    }

    /// All records of a file, and the issues met.
    static func readAll(_ path: String) throws -> (header: RunHeader, records: [Record], issues: [ReadIssue]) {
        let reader = try RunFileReader(path: path)
        var out: [Record] = []
        try reader.forEachRecord { out.append($0) }
        return (reader.header, out, reader.issues)
    }
}
