import Foundation
import Model
import Refinement
import Telemetry
import Training

/// Runs every run of a study as an ordinary run directory (DIR/data/arm/seed-N with run.jsonl,
/// checkpoints and summary.json), skipping runs that already completed, and reads them back.
public final class StudyRunner {
    public let study: StudyConfig
    public let out: String
    /// Progress lines (one per run).
    public var log: (String) -> Void
    private var datasets: [String: ByteDataset] = [:]

    public init(study: StudyConfig, out: String, log: @escaping (String) -> Void = { print($0) }) {
        self.study = study
        self.out = out
        self.log = log
    }

    /// The end record of the run in `runDirectory` (nil when it has none yet), read from the end
    /// of its run file.
    public static func endRecord(_ runDirectory: String) -> EndRecord? {
        if case let .end(e)? = RecordingExtent.lastRecord(path: runDirectory) { return e }
        return nil
    }

    /// Whether `runDirectory` holds a run that completed (its last record is a completed `end`)
    /// and whose summary.json was written.
    public static func isComplete(_ runDirectory: String) -> Bool {
        let summary = (runDirectory as NSString).appendingPathComponent("summary.json")
        return FileManager.default.fileExists(atPath: summary) && endRecord(runDirectory)?.reason == .completed
    }

    /// The end record of a run whose training failed (it diverged, or its loss stopped being
    /// finite: `TrainingFailure`). Such a run is an outcome, like a completed one: it is kept, not
    /// re-run (it is seeded, so it would fail again), left out of the statistics and listed in the
    /// report. A run that failed for another reason (a checkpoint it could not write) is not: it
    /// is moved aside and run again, like an interrupted one.
    public static func failure(_ runDirectory: String) -> EndRecord? {
        endRecord(runDirectory).flatMap { TrainingFailure.isTraining($0) ? $0 : nil }
    }

    /// Runs (or skips) every run, then reads all of them back.
    public func run() throws -> [RunMetrics] {
        let runs = study.runs
        for (i, spec) in runs.enumerated() {
            let dir = spec.directory(in: out)
            let label = "[\(i + 1)/\(runs.count)] \(spec.label)"
            if Self.isComplete(dir) {
                log("\(label): already complete, skipped")
                continue
            }
            if let failed = Self.failure(dir) {
                log("\(label): failed earlier (\(failed.message)), kept")
                continue
            }
            if FileManager.default.fileExists(atPath: dir) {
                // An interrupted run: keep it for inspection and start this one afresh.
                var n = 1
                while FileManager.default.fileExists(atPath: dir + ".incomplete-\(n)") { n += 1 }
                try FileManager.default.moveItem(atPath: dir, toPath: dir + ".incomplete-\(n)")
                log("\(label): incomplete run moved to \(dir).incomplete-\(n)")
            }
            let t0 = Date()
            let end = try execute(spec, directory: dir)
            if TrainingFailure.isTraining(end) {
                log("\(label): FAILED at step \(end.step): \(end.message); left out of the statistics")
                continue
            }
            guard end.reason == .completed else {
                throw StudyConfig.ParseError(description: "\(dir): run ended \(end.reason.rawValue): \(end.message)")
            }
            log(String(format: "%@: done in %.1f s, best val %.4f", label, Date().timeIntervalSince(t0),
                       end.bestValidationLoss ?? .nan))
        }
        return try metrics()
    }

    /// Reads every completed run of the study back from its run directory (runs not yet complete
    /// are left out, so a report can be written from a study in progress).
    public func metrics() throws -> [RunMetrics] {
        let done = study.runs.filter { Self.isComplete($0.directory(in: out)) }
        let failed = study.runs.filter { Self.failure($0.directory(in: out)) != nil }.count
        if done.count + failed < study.runs.count {
            log("\(study.runs.count - done.count - failed) of \(study.runs.count) runs are not complete; the report leaves them out")
        }
        if failed > 0 { log("\(failed) of \(study.runs.count) runs failed; the report lists them and leaves them out") }
        return try done.map { spec in
            try RunMetrics(runDirectory: spec.directory(in: out), data: spec.data.name, arm: spec.arm.name,
                           seed: spec.seed, primary: spec.data.isSynthetic ? nil : study.primary)
        }
    }

    /// The runs that failed, as "data/arm/seed-N: message", in study order.
    public func failures() -> [String] {
        study.runs.compactMap { spec in
            Self.failure(spec.directory(in: out)).map { "\(spec.label): \($0.message)" }
        }
    }

    /// The training configuration of one run.
    public func trainingConfig(_ spec: RunSpec) throws -> TrainingConfig {
        do { return try spec.recipe.trainingConfig() } catch {
            throw StudyConfig.ParseError(description: "study \(study.name): arm \(spec.arm.name): \(error)")
        }
    }

    func dataset(_ spec: StudyConfig.DataSpec) throws -> ByteDataset {
        if let d = datasets[spec.name] { return d }
        var d: ByteDataset
        if let task = try SyntheticTask.parse(spec.source) {
            d = task.dataset
        } else if spec.source == "embedded" {
            d = try ByteDataset.embedded()
        } else {
            d = try ByteDataset.load(name: spec.name, path: spec.source)
        }
        if d.task == nil, study.spreadEvalWindows, let v = Self.spread(d.validation, windows: study.recipe.evalWindows, T: try trainingContext()) {
            // The held-out split is sampled the same way as the extra domains.
            d.validation = ByteView(v)
        }
        if let limit = spec.limit {
            d.train = d.train.prefix(limit)
            d.name += "-first\(limit)"
        }
        datasets[spec.name] = d
        return d
    }

    func evalDomains(for spec: StudyConfig.DataSpec) throws -> [ByteDataset] {
        if spec.isSynthetic { return [] }
        return try study.evalDomains.map { e in
            if let d = datasets["eval:" + e.name] { return d }
            let whole = try ByteDataset.load(name: e.name, path: e.path)
            let d = study.spreadEvalWindows ? Self.spread(whole, windows: study.recipe.evalWindows, T: try trainingContext()) : whole
            datasets["eval:" + e.name] = d
            return d
        }
    }

    func trainingContext() throws -> Int { try study.recipe.model().config.context }

    /// An evaluation domain made of `windows` excerpts of T bytes spread evenly over all of `d`
    /// (plus one closing byte), so that the trainer's windows — read with stride T from the start —
    /// sample the whole domain instead of its first pages. The last target of each window is the
    /// first byte of the next excerpt (1 position in T crosses a seam; the same for every arm).
    public static func spread(_ d: ByteDataset, windows n: Int, T: Int) -> ByteDataset {
        let all = d.train + d.validation
        guard let bytes = spread(all, windows: n, T: T) else { return d }
        var out = ByteDataset(name: d.name, path: d.path, files: [])
        out.validation = ByteView(bytes)
        var h = FNV1a()
        h.add(bytes)
        out.hash = h.hex
        return out
    }

    /// `n` excerpts of T bytes evenly spaced over `all`, plus one closing byte (nil when too short).
    static func spread(_ all: ByteView, windows n: Int, T: Int) -> [UInt8]? {
        guard n > 1, all.count > (n + 1) * T else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(n * T + 1)
        for w in 0..<n {
            let off = w * (all.count - T - 1) / (n - 1)
            all.withBytes(from: off, count: T) { bytes += $0 }
        }
        bytes.append(all[(n - 1) * (all.count - T - 1) / (n - 1) + T])
        return bytes
    }

    /// Trains one run into `directory` (and its fine-tune, if the study has one), records it, and
    /// writes summary.json last, so a run counts as complete only when everything is in place.
    func execute(_ spec: RunSpec, directory: String) throws -> EndRecord {
        let config = try trainingConfig(spec)
        let refinement: RefinementConfig
        do { refinement = try spec.recipe.refinementConfig() } catch {
            throw StudyConfig.ParseError(description: "arm \(spec.arm.name): \(error)")
        }
        let bus = RecordBus()
        let trainer = try Trainer(config: config, refinement: refinement, train: try dataset(spec.data),
                                  evalDomains: try evalDomains(for: spec.data), bus: bus, runDirectory: directory)
        let interventions: InterventionSettings
        do { interventions = try spec.recipe.interventionSettings(bandNames: trainer.bandNames, source: .study) } catch {
            throw StudyConfig.ParseError(description: "arm \(spec.arm.name): \(error)")
        }
        trainer.interventions = interventions
        let t0 = Date()
        var synthetic: [BandScore]?
        var curve: [SyntheticPoint] = []
        if spec.data.isSynthetic {
            let windows = study.recipe.evalWindows
            trainer.afterEvaluation = { t in
                if let bands = t.syntheticScores(windows: windows) { curve.append(SyntheticPoint(step: t.step, bands: bands)) }
            }
        }
        let end = try record(trainer, bus: bus, runName: spec.label,
                             directory: directory) {
            let end = trainer.run()
            synthetic = trainer.syntheticScores(windows: self.study.syntheticWindows)
            return end
        }
        guard end.reason == .completed else { return end }
        if let ft = study.fineTune, study.fineTunes(spec.data) {
            let ftEnd = try fineTune(ft, from: trainer, config: config, refinement: refinement,
                                     directory: ft.directory(in: directory), runName: spec.label)
            guard ftEnd.reason == .completed else {
                throw StudyConfig.ParseError(description: "\(ft.directory(in: directory)): fine-tune ended \(ftEnd.reason.rawValue): \(ftEnd.message)")
            }
        }
        let extras = RunExtras(synthetic: synthetic, syntheticCurve: curve.isEmpty ? nil : curve, processPeakRSSBytes: Self.peakRSSBytes(),
                               wallSeconds: Date().timeIntervalSince(t0), parameters: trainer.model.layout.count)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        // NaN (a band without answers) is not JSON: store it as null via a sanitised copy.
        var clean = extras
        func sanitised(_ bands: [BandScore]) -> [BandScore] {
            bands.map { var b = $0; if !b.loss.isFinite { b.loss = -1; b.accuracy = -1 }; return b }
        }
        clean.synthetic = extras.synthetic.map(sanitised)
        clean.syntheticCurve = extras.syntheticCurve?.map { SyntheticPoint(step: $0.step, bands: sanitised($0.bands)) }
        let summary = (directory as NSString).appendingPathComponent("summary.json")
        try encoder.encode(clean).write(to: URL(fileURLWithPath: summary))
        return end
    }

    /// The fine-tune of a trained run: a new trainer on the fine-tune file (its first 90 %), with
    /// the trained parameters, fresh AdamW state, the arm's refinement and a 10 % warm-up; scored
    /// on the file's last 10 % at step 0 (zero-shot) and at intervals.
    func fineTune(_ ft: StudyConfig.FineTune, from trained: Trainer, config base: TrainingConfig,
                  refinement: RefinementConfig, directory: String, runName: String) throws -> EndRecord {
        var config = base
        config.steps = ft.steps
        config.learningRate = ft.learningRate ?? base.learningRate
        config.warmupSteps = max(1, ft.steps / 10)
        config.evalEvery = max(1, ft.steps / 5)
        let data: ByteDataset
        if let d = datasets["finetune:" + ft.name] {
            data = d
        } else {
            data = try ByteDataset.load(name: ft.name, path: ft.path)
            datasets["finetune:" + ft.name] = data
        }
        let bus = RecordBus()
        let trainer = try Trainer(config: config, refinement: refinement, train: data, evalDomains: [], bus: bus,
                                  runDirectory: directory)
        trainer.model.params.update(from: trained.model.params, count: trained.model.layout.count)
        return try record(trainer, bus: bus, runName: runName + "/finetune-" + ft.name, directory: directory) {
            bus.publish(.eval(trainer.evaluate()))
            return trainer.run()
        }
    }

    /// Records what `body` does with `trainer` into `directory`/run.jsonl: `body` runs on a thread
    /// with a large stack while the recorder drains the bus.
    func record(_ trainer: Trainer, bus: RecordBus, runName: String, directory: String,
                _ body: @escaping () -> EndRecord) throws -> EndRecord {
        let header = trainer.header(runName: runName)
        bus.publishHeader(header)
        let recorder = try RunRecorder.create(runDirectory: directory, header: header, bus: bus)
        let box = EndBox()
        let done = DispatchSemaphore(value: 0)
        let thread = Thread {
            box.end = body()
            done.signal()
        }
        thread.stackSize = 8 << 20
        thread.start()
        done.wait()
        bus.close()
        try recorder.finish()
        guard let end = box.end else { throw StudyConfig.ParseError(description: "\(directory): the trainer returned no end record") }
        return end
    }

    /// ru_maxrss of this process, in bytes (Linux reports kilobytes).
    static func peakRSSBytes() -> Int {
        var usage = rusage()
        #if os(Linux)
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Int(usage.ru_maxrss) * 1024
        #else
        getrusage(RUSAGE_SELF, &usage)
        return Int(usage.ru_maxrss)
        #endif
    }
}

/// The trainer thread's end record, handed back after the join.
final class EndBox: @unchecked Sendable {
    var end: EndRecord?
}
