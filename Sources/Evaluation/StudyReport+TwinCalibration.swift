import Foundation
import Telemetry
import Training

/// The report's twin calibration: each scripted change's twin verdict beside the final paired Δ
/// validation of the full runs, and the window-length table that reads a twin window of any
/// length from the same runs (docs/EVALUATION.md).
extension StudyReport {
    // MARK: - Twin calibration

    /// Arms with a scripted change and a twin window (the interventions of a calibration study).
    func calibratedArms(_ arms: [StudyConfig.Arm]) -> [StudyConfig.Arm] {
        arms.filter { !$0.recipe.changes.isEmpty && $0.recipe.twinSteps > 0 }
    }

    /// The verdict a calibration reads from a run: its first complete window, else its first.
    static func calibrationVerdict(_ r: RunMetrics) -> VerdictInfo? { r.verdicts.first { !$0.partial } ?? r.verdicts.first }

    /// Final paired Δ validation of two full runs (arm − baseline, same seed, primary domain, nats).
    static func finalDelta(_ r: RunMetrics, baseline: RunMetrics?) -> Double {
        baseline.map { r.finalValidation - $0.finalValidation } ?? .nan
    }

    /// A window's Δ and the final Δ have the same sign: both negative or both not.
    static func signsAgree(_ window: Double, _ final: Double) -> Bool { (window < 0) == (final < 0) }

    /// A verdict word points the way of the final Δ: helped with a negative one, hurt with a
    /// positive one; "no detectable effect" never does.
    static func wordAgrees(_ word: VerdictInfo.Word, _ final: Double) -> Bool {
        switch word {
        case .helped: return final < 0
        case .hurt: return final > 0
        case .noEffect: return false
        }
    }

    /// For arms with a scripted change and a twin window: per seed, the twin's verdict (paired Δ of
    /// the training loss over the window, main − twin, and the validation Δ at its end) beside the
    /// final paired Δ validation of two full runs (this arm − the baseline, same seed), and how often
    /// their signs agree. Empty when no arm has a change.
    func twinCalibrationTable(_ d: StudyConfig.DataSpec, arms: [StudyConfig.Arm], command: String) -> String {
        let changed = calibratedArms(arms)
        guard !changed.isEmpty else { return "" }
        var s = "Twin calibration: each change's twin verdict against the final paired Δ validation of the full runs "
        s += "(arm − `\(study.baseline)`, same seed, primary domain, nats). Signs agree when both are negative or both positive.\n\n"
        s += "| arm | seed | verdict | twin Δ train [95 % CI] | twin Δ val | final Δ val | signs agree |\n| --- | --- | --- | --- | --- | --- | --- |\n"
        for arm in changed {
            var agree = 0, compared = 0
            var twinDeltas: [Double] = [], finals: [Double] = []
            for k in study.seeds.indices {
                guard let r = run(d.name, arm.name, seedIndex: k), let v = Self.calibrationVerdict(r) else { continue }
                let final = Self.finalDelta(r, baseline: run(d.name, study.baseline, seedIndex: k))
                let twinVal = v.validation.first { $0.name == study.primary }?.delta ?? v.validation.first?.delta ?? .nan
                let ci = v.low.flatMap { lo in v.high.map { "[\(Self.g(lo)), \(Self.g($0))]" } } ?? "—"
                var signs = "—"
                if final.isFinite && v.delta.isFinite {
                    compared += 1
                    let same = Self.signsAgree(v.delta, final)
                    if same { agree += 1 }
                    signs = same ? "yes" : "no"
                    twinDeltas.append(v.delta)
                    finals.append(final)
                }
                s += "| \(arm.name) | \(study.seeds[k]) | \(v.word.rawValue)\(v.partial ? " (partial)" : "") | \(Self.g(v.delta)) \(ci) | \(Self.g(twinVal)) | \(Self.g(final)) | \(signs) |\n"
            }
            if compared > 0 {
                s += "| \(arm.name) | all | | mean \(Self.g(PairedStatistics.mean(twinDeltas))) | | mean \(Self.g(PairedStatistics.mean(finals))) | \(agree)/\(compared) |\n"
            }
        }
        return s + "\n" + windowLengthTable(d, arms: arms, command: command)
    }

    // MARK: - Window length

    /// Twin window lengths the window-length table shows (steps); each arm's own window and the
    /// rest of the run after its change are added, and lengths past the run's end are left out.
    public static let windowLengths = [50, 100, 200, 400, 800]

    /// The paired differences d_s = loss_arm(s) − loss_baseline(s) over steps [change, change +
    /// length) of one seed. The baseline runs the same batches from the same state as the arm's
    /// twin (it is the never-changed run), so this is exactly what a twin window of that length
    /// would have measured. nil when either run lacks a step of the window.
    static func windowDifferences(_ r: RunMetrics, baseline: RunMetrics, change: Int, length: Int) -> PairedDifferences? {
        var d = PairedDifferences()
        for step in change..<(change + length) {
            guard let a = r.stepLosses[step], let b = baseline.stepLosses[step] else { return nil }
            d.append(a - b)
        }
        return d
    }

    /// One arm and window length of the window-length table.
    struct WindowRow {
        var data: String
        var arm: String
        var length: Int
        /// The arm's own twin window (`--twin-steps`).
        var isTwinWindow: Bool
        /// The rest of the run after the change.
        var isRestOfRun: Bool
        /// Per seed that fits: the step of the change, the window's paired differences and the final Δ val.
        var seeds: [(seed: UInt64, change: Int, window: PairedDifferences, final: Double)]
    }

    /// For arms with one scripted change and a twin window, at every window length that fits in
    /// the run after the change: each seed's window against the baseline of the same seed. The
    /// change step is the one the run's verdict recorded. A seed without a verdict or a baseline,
    /// or whose runs end before the window does, is left out of the row; a row with no seed is.
    /// Only arms that are the baseline plus their change qualify (same refinement, rate and
    /// seeds): for any other, the baseline is not the arm's twin.
    func windowRows(_ d: StudyConfig.DataSpec, arms: [StudyConfig.Arm]) -> [WindowRow] {
        guard let baselineArm = study.arms.first(where: { $0.name == study.baseline }) else { return [] }
        func sameBut(change arm: StudyConfig.Arm) -> Bool {
            arm.runsMatch(baselineArm) { r in
                r.changes = []
                r.twinSteps = 0
            }
        }
        var rows: [WindowRow] = []
        for arm in calibratedArms(arms) where arm.recipe.changes.count == 1 && sameBut(change: arm) {
            let twinSteps = arm.recipe.twinSteps
            var pairs: [(seed: UInt64, run: RunMetrics, baseline: RunMetrics, change: Int)] = []
            var allWindowsWhole = true
            for k in study.seeds.indices {
                guard let r = run(d.name, arm.name, seedIndex: k), let v = Self.calibrationVerdict(r),
                      let base = run(d.name, study.baseline, seedIndex: k) else { continue }
                pairs.append((study.seeds[k], r, base, v.changeStep))
                if v.partial { allWindowsWhole = false }
            }
            let rest = pairs.map { min($0.run.steps, $0.baseline.steps) - $0.change }.max() ?? 0
            let lengths = Set(Self.windowLengths + [twinSteps, rest])
                .filter { $0 >= PairedDifferences.minimumSteps && $0 <= rest }.sorted()
            for length in lengths {
                let seeds = pairs.compactMap { p in
                    Self.windowDifferences(p.run, baseline: p.baseline, change: p.change, length: length).map {
                        (seed: p.seed, change: p.change, window: $0, final: Self.finalDelta(p.run, baseline: p.baseline))
                    }
                }
                guard !seeds.isEmpty else { continue }
                // The twin's own row repeats its verdicts only when every window closed whole.
                rows.append(WindowRow(data: d.name, arm: arm.name, length: length, isTwinWindow: length == twinSteps && allWindowsWhole,
                                      isRestOfRun: length == rest, seeds: seeds))
            }
        }
        return rows
    }

    /// The window-length table: how the paired Δ train of a twin window of each length compares,
    /// in sign and size, with the final paired Δ validation. `command` made the report: the text
    /// says how to regenerate the table from the runs alone. Empty when no arm qualifies.
    func windowLengthTable(_ d: StudyConfig.DataSpec, arms: [StudyConfig.Arm], command: String) -> String {
        let rows = windowRows(d, arms: arms)
        guard !rows.isEmpty else { return "" }
        var s = "Window length: what a twin window of W steps after the change would have said, read from the full runs. "
        s += "The baseline of the same seed runs the same batches from the same state as the twin (it is the never-changed run), "
        s += "so the paired Δ train of arm − `\(study.baseline)` over steps [change, change + W) is exactly a W-step twin's Δ, "
        s += "and the row of the arm's own window (twin) repeats its verdicts above. Per row: each seed's Δ train (nats), their mean, "
        s += "the mean final Δ val of the same seeds, how many seeds' Δ train has the sign of their final Δ val, how many seeds' "
        s += "word (helped / hurt / no detectable effect, by the twin's batch-means interval over the W steps) points the way of "
        s += "their final Δ val (no detectable effect never does), and mean Δ train / mean final Δ val (1: the window's size is "
        s += "the final size). Arms with one change; windows that do not fit in the run are left out. Every seed and window at full "
        s += "precision, with its interval: `twin-windows.csv`. Regenerate from the runs alone (reads them, trains nothing): "
        s += "`\(command.contains("--report-only") ? command : command + " --report-only")`.\n\n"
        s += "| arm | W (steps) | Δ train per seed | mean Δ train | mean final Δ val | signs agree | words agree (words) | Δ train / final Δ val |\n"
        s += "| --- | --- | --- | --- | --- | --- | --- | --- |\n"
        for row in rows {
            let compared = row.seeds.filter { $0.final.isFinite && $0.window.mean.isFinite }
            let signs = compared.filter { Self.signsAgree($0.window.mean, $0.final) }.count
            let words = compared.filter { Self.wordAgrees($0.window.word, $0.final) }.count
            let counts = VerdictInfo.Word.allCases.compactMap { w -> String? in
                let n = compared.filter { $0.window.word == w }.count
                return n > 0 ? "\(n) \(w.rawValue)" : nil
            }
            let meanWindow = PairedStatistics.mean(compared.map(\.window.mean))
            let meanFinal = PairedStatistics.mean(compared.map(\.final))
            var label = "\(row.length)"
            if row.isTwinWindow { label += " (twin)" }
            if row.isRestOfRun { label += " (rest of run)" }
            s += "| \(row.arm) | \(label) | \(row.seeds.map { Self.g($0.window.mean) }.joined(separator: ", ")) | "
            s += "\(Self.g(meanWindow)) | \(Self.g(meanFinal)) | \(signs)/\(compared.count) | "
            s += "\(words)/\(compared.count) (\(counts.joined(separator: ", "))) | \(Self.f(meanWindow / meanFinal, 2)) |\n"
        }
        return s + "\n"
    }

    /// Every seed of every window-length row, at full precision (empty when there are none).
    public func twinWindowsCSV() -> String {
        var lines: [String] = []
        for d in study.data {
            for row in windowRows(d, arms: study.arms(for: d)) {
                for seed in row.seeds {
                    let ci = seed.window.interval
                    lines.append([row.data, row.arm, String(seed.seed), String(seed.change), String(row.length),
                                  Self.csv(seed.window.mean), Self.csv(ci?.low ?? .nan), Self.csv(ci?.high ?? .nan),
                                  seed.window.word.rawValue, Self.csv(seed.final)].joined(separator: ","))
                }
            }
        }
        guard !lines.isEmpty else { return "" }
        return "data,arm,seed,change_step,window_steps,delta_train,ci_low,ci_high,word,final_val_delta\n" + lines.joined(separator: "\n") + "\n"
    }
}
