import ArgumentParser
import Foundation
import Telemetry
import Training

/// `gradflow guard-eval RUN...`: replays the divergence guard's decision rule (the one the live
/// guard uses, `DivergenceRule`) over the step records of recorded runs, and says where it would
/// act: its false positives on healthy runs, and how soon it catches a fault (docs/METHOD.md §6b).
struct GuardEvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "guard-eval",
        abstract: "Replay the divergence guard's rule over recorded runs: where it would act, and its warnings.",
        discussion: """
        Each RUN is a run folder, a run file, or a folder of run folders (a study's --out). The rule \
        reads the step records' losses and gradient norms in order, as the live guard does; a \
        divergent step does not join its state, and nothing is rolled back, so a lasting divergence \
        flags every step from its start ("episodes" counts runs of flagged steps). Replay runs \
        recorded with --on-divergence off (or runs whose guard never acted): after a rollback the \
        file's losses are those of the restored state. With --from STEP, the first detection at or \
        after STEP and its latency are reported (a fault injected at STEP).
        """)

    @Argument(help: ArgumentHelp("Run folders, run files, or folders holding run folders.", valueName: "RUN"))
    var runs: [String]

    @Option(help: ArgumentHelp("Report the first detection at or after STEP and its latency in steps.", valueName: "STEP"))
    var from: Int?

    @Option(help: ArgumentHelp(DivergenceSettings.outlierMadsHelp, valueName: "K"))
    var outlierMads: Double = DivergenceRule.Settings().mads

    @Option(help: ArgumentHelp("Nats an outlier is above the median at least.", valueName: "NATS"))
    var outlierFloor: Double = DivergenceRule.Settings().outlierFloor

    @Option(help: ArgumentHelp("Nats above the starting or best smoothed loss that make a climb.", valueName: "NATS"))
    var climbFloor: Double = DivergenceRule.Settings().climbFloor

    @Option(help: ArgumentHelp("Multiple of the best smoothed loss that makes a climb.", valueName: "X"))
    var climbFactor: Double = DivergenceRule.Settings().climbFactor

    @Option(help: ArgumentHelp("Nats above the median a loss bump must be to be a warning.", valueName: "NATS"))
    var warningFloor: Double = DivergenceRule.Settings().warningFloor

    @Flag(help: "Print each run's detections and warnings, not only its line.")
    var verbose = false

    func validate() throws {
        if let e = DivergenceSettings.outlierMadsProblem(outlierMads) { throw ValidationError(e) }
        for (name, v) in [("--outlier-floor", outlierFloor), ("--climb-floor", climbFloor), ("--warning-floor", warningFloor)] where !(v >= 0) {
            throw ValidationError("\(name) must be ≥ 0, got \(v)")
        }
        if !(climbFactor > 1) { throw ValidationError("--climb-factor must be above 1, got \(climbFactor)") }
    }

    func run() throws {
        var settings = DivergenceRule.Settings()
        settings.mads = outlierMads
        settings.outlierFloor = outlierFloor
        settings.climbFloor = climbFloor
        settings.climbFactor = climbFactor
        settings.warningFloor = warningFloor
        let files = try runs.flatMap(Self.runFiles)
        let names = Dictionary(files.map { ($0, Self.name($0)) }, uniquingKeysWith: { a, _ in a })
        guard !files.isEmpty else { throw CLIError("no run files in \(runs.joined(separator: ", "))") }
        var flagged = 0, caught = 0, latencies: [Int] = []
        for file in files {
            let reader: RunFileReader
            do { reader = try RunFileReader(path: file) } catch { throw CLIError("\(error)") }
            var steps: [DivergenceRule.Step] = []
            var rollbacks = 0, lowerings = 0
            try reader.forEachRecord { r in
                switch r {
                case let .step(s): steps.append(DivergenceRule.Step(step: s.step, loss: s.loss, gradNorm: s.gradNorm))
                case let .event(e) where e.kind == .rollback: rollbacks += 1
                case let .event(e) where e.kind == .lr: lowerings += 1
                default: break
                }
            }
            let replay = DivergenceRule.replay(steps, settings: settings)
            let name = names[file] ?? file
            var line = "\(name): \(replay.steps) steps, "
            if let first = replay.detections.first {
                flagged += 1
                line += "\(replay.detections.count) flagged in \(replay.episodes) episode\(replay.episodes == 1 ? "" : "s"), first at step \(first.step) (\(first.divergence.kind.rawValue))"
            } else {
                line += "none flagged"
            }
            line += ", \(replay.warnings.count) warning\(replay.warnings.count == 1 ? "" : "s")"
            if let from {
                if let hit = replay.detections.first(where: { $0.step >= from }) {
                    caught += 1
                    latencies.append(hit.step - from)
                    line += "; from step \(from): caught at step \(hit.step), \(hit.step - from) steps later (\(hit.divergence.kind.rawValue))"
                } else {
                    line += "; from step \(from): not caught"
                }
            }
            if rollbacks + lowerings > 0 { line += "; the file records \(rollbacks) rollbacks and \(lowerings) rate changes" }
            print(line)
            if verbose {
                for d in replay.detections.prefix(20) { print("  step \(d.step): \(d.divergence)") }
                if replay.detections.count > 20 { print("  … \(replay.detections.count - 20) more flagged steps") }
                for w in replay.warnings.prefix(20) { print("  step \(w.step): warning: \(w.message)") }
                if replay.warnings.count > 20 { print("  … \(replay.warnings.count - 20) more warnings") }
            }
        }
        var total = "\(files.count) run\(files.count == 1 ? "" : "s"): \(flagged) with a detection"
        if from != nil {
            total += "; \(caught) caught at or after step \(from!)"
            if !latencies.isEmpty { total += ", latency \(latencies.min()!)–\(latencies.max()!) steps" }
        }
        print(total)
    }

    /// A run file, a run folder's run file, or the run files of a folder's run folders (sorted).
    static func runFiles(_ path: String) throws -> [String] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw CLIError("\(path): no such run folder or run file")
        }
        guard isDirectory.boolValue else { return [path] }
        let own = (path as NSString).appendingPathComponent(RunFileLocation.fileName)
        if FileManager.default.fileExists(atPath: own) { return [own] }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        return names.sorted().map { (path as NSString).appendingPathComponent($0) }.compactMap { dir in
            let file = (dir as NSString).appendingPathComponent(RunFileLocation.fileName)
            return FileManager.default.fileExists(atPath: file) ? file : nil
        }
    }

    /// The run's name: its folder and the folder above it ("baseline/seed-1"), or the file's name
    /// when it is not called run.jsonl.
    static func name(_ file: String) -> String {
        let base = (file as NSString).lastPathComponent
        guard base == RunFileLocation.fileName else { return base }
        let folder = (file as NSString).deletingLastPathComponent
        let parent = ((folder as NSString).deletingLastPathComponent as NSString).lastPathComponent
        return (parent.isEmpty || parent == "/" ? "" : parent + "/") + (folder as NSString).lastPathComponent
    }
}
