import ArgumentParser
import Dashboard
import Evaluation
import Foundation
import Telemetry

/// The run-file benchmark's options (shared by `gradflow bench run-file` and the old
/// `gradflow bench --run-file`).
struct RunFileBenchOptions: ParsableArguments {
    @Option(help: "Step records in the run file.")
    var records = 1_000_000

    @Option(help: "Run file: made when missing, kept (default: a temporary file, deleted).")
    var file: String?
}

/// `gradflow bench run-file`: reading and summarising a run file (as `replay --summary-only`).
struct BenchRunFile: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run-file",
        abstract: "Time the run-file reader: write step records shaped like a preset-S run (every statistic on) and read and summarise them."
    )

    @OptionGroup var options: RunFileBenchOptions

    @Option(help: "Timed reads.")
    var rounds: Int = 1

    @Flag(help: "Print one JSON object instead of lines.")
    var json = false

    func run() throws { try Self.run(options, rounds: rounds, json: json) }

    /// Reading and summarising a run file of `options.records` step records, `rounds` times.
    static func run(_ options: RunFileBenchOptions, rounds: Int, json: Bool) throws {
        let records = options.records
        guard records >= 1 else { throw ValidationError("--records must be at least 1") }
        let path = options.file ?? NSTemporaryDirectory() + "gradflow-bench-\(records)-\(getpid()).jsonl"
        defer { if options.file == nil { try? FileManager.default.removeItem(atPath: path) } }
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
        print("gradflow bench run-file · \(stepRecords.formatted()) step records · \(String(format: "%.0f", Double(bytes) / 1e6)) MB (\(bytes / max(1, stepRecords)) bytes per step record)")
        print(String(format: "  read + summary  median wall %.2f s, CPU %.2f s over %d rounds (wall: %@) · %.0f MB/s · %.2f M records/s",
                     wall, cpu, rounds.count, rounds.map { String(format: "%.2f", $0.wallSeconds) }.joined(separator: " ") as NSString,
                     Double(bytes) / wall / 1e6, Double(stepRecords) / wall / 1e6))
    }
}

/// `gradflow bench dashboard`: the frame time of the dashboard's view at 200×60 over a million
/// recorded steps.
struct BenchDashboard: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dashboard",
        abstract: "Time the dashboard: one frame at 200×60 with 1,000,000 steps of history."
    )

    @Option(help: "Frames timed (at least \(BenchDashboard.minimumFrames)).")
    var frames: Int = 20

    @Flag(help: "Print one JSON object instead of lines.")
    var json = false

    /// Fewer frames than this give no steady median.
    static let minimumFrames = 5

    func validate() throws {
        guard frames >= Self.minimumFrames else { throw ValidationError("--frames must be at least \(Self.minimumFrames) (got \(frames))") }
    }

    func run() { Self.run(frames: frames, json: json) }

    static func run(frames: Int, json: Bool) {
        let history = 1_000_000
        let r = DashboardBenchmark.run(steps: history, width: 200, height: 60, frames: frames)
        if json {
            print("{\"bench\":\"dashboard\",\"steps\":\(history),\"width\":200,\"height\":60,\"frame_ms_median\":\(r.medianMilliseconds),\"history_bytes\":\(r.historyBytes)}")
        } else {
            print("gradflow bench dashboard · 200×60 · \(history.formatted()) steps of history")
            print(String(format: "  frame (view + layout + widgets) median %.2f ms · history %@", r.medianMilliseconds,
                         Format.bytes(r.historyBytes)))
        }
    }
}
