import Foundation
import Telemetry
import Training

/// Turns a study's runs into the report: a Markdown summary with paired comparisons and verdicts,
/// a CSV of every run, a CSV of every comparison, a CSV of twin windows of several lengths, and SVG loss curves per data set.
public struct StudyReport {
    public let study: StudyConfig
    public let runs: [RunMetrics]
    public var resamples = 10_000
    /// Runs that failed ("data/arm/seed-N: reason", from `StudyRunner.failures`): listed, and
    /// absent from every statistic (a pair with a failed side drops out).
    public var failures: [String] = []

    public init(study: StudyConfig, runs: [RunMetrics]) {
        self.study = study
        self.runs = runs
    }

    // MARK: - Lookup

    func run(_ data: String, _ arm: String, seedIndex k: Int) -> RunMetrics? {
        runs.first { $0.data == data && $0.arm == arm && $0.seed == study.seeds[k] }
    }

    /// Per-seed values of a metric (NaN where missing), in the study's seed order.
    func values(_ data: String, _ arm: String, _ f: (RunMetrics) -> Double?) -> [Double] {
        study.seeds.indices.map { k in run(data, arm, seedIndex: k).flatMap(f) ?? .nan }
    }

    /// A metric compared between arms.
    struct Metric {
        var name: String
        var better: PairedStatistics.Better
        var value: (RunMetrics) -> Double?
    }

    func metrics(for data: StudyConfig.DataSpec) -> [Metric] {
        var m: [Metric] = [
            Self.finalBPB,
            Metric(name: "min val bpb", better: .lower) { $0.minValidation / log(2.0) },
            Metric(name: "val − train gap (nats)", better: .lower) { $0.generalisationGap },
            Metric(name: "update sign-flip rate", better: .lower) { $0.flipRate },
            Metric(name: "cos(g_t, g_t−1)", better: .higher) { $0.gradientCosine },
            Metric(name: "cos(u_t, u_t−1)", better: .higher) { $0.updateCosine.isFinite ? $0.updateCosine : nil },
            Metric(name: "loss spikes", better: .lower) { Double($0.spikes) },
            Metric(name: "grad-norm CV (100 steps)", better: .lower) { $0.gradNormCV },
        ]
        for c in gainWindows(data.name) {
            m.append(Metric(name: "context gain ΔL(\(c))", better: .higher) { $0.contextGain[c] })
        }
        if !data.isSynthetic {
            for e in study.evalDomains where e.name != study.primary {
                m.append(Metric(name: "\(e.name) bpb (zero-shot)", better: .lower) { $0.finalDomains[e.name].map { $0 / log(2.0) } })
            }
        }
        if let ft = study.fineTune, study.fineTunes(data) {
            m.append(Metric(name: "\(ft.name) held-out bpb before fine-tune", better: .lower) { $0.fineTunes[ft.name].map { $0.before / log(2.0) } })
            m.append(Metric(name: "\(ft.name) held-out bpb after fine-tune", better: .lower) { $0.fineTunes[ft.name].map { $0.after / log(2.0) } })
        }
        for band in syntheticBands(data.name) {
            m.append(Metric(name: "accuracy \(band)", better: .higher) { r in
                r.extras?.synthetic?.first { $0.band == band }.flatMap { $0.accuracy >= 0 ? $0.accuracy : nil }
            })
            m.append(Metric(name: "answer loss \(band)", better: .lower) { r in
                r.extras?.synthetic?.first { $0.band == band }.flatMap { $0.accuracy >= 0 ? $0.loss : nil }
            })
        }
        if let long = syntheticBands(data.name).last {
            // A run that never gets there counts as its whole budget (which understates differences).
            m.append(Metric(name: Self.emergenceMetric(long), better: .lower) { r in
                r.extras?.syntheticCurve == nil ? nil : Double(r.emergenceStep(band: long, accuracy: Self.emergenceAccuracy) ?? r.steps)
            })
        }
        m.append(Metric(name: "tokens/s", better: .higher) { $0.tokensPerSecond })
        // Metrics no run of this data set recorded (run files older than the metric) are left out.
        let mine = runs.filter { $0.data == data.name }
        return m.filter { metric in mine.contains { metric.value($0)?.isFinite ?? false } }
    }

    /// The long-band accuracy that marks a synthetic task as learned (the emergence step).
    public static let emergenceAccuracy = 0.5
    /// The name of the emergence-step metric of a band.
    static func emergenceMetric(_ band: String) -> String { "emergence step (\(band) accuracy ≥ \(Int(emergenceAccuracy * 100)) %)" }

    func gainWindows(_ data: String) -> [Int] {
        Array(Set(runs.filter { $0.data == data }.flatMap { $0.contextGain.keys })).sorted()
    }

    func syntheticBands(_ data: String) -> [String] {
        runs.first { $0.data == data && $0.extras?.synthetic != nil }?.extras?.synthetic?.map(\.band) ?? []
    }

    /// Per-seed tokens to reach the paired baseline's final validation loss (censored at the budget).
    func tokensToBaseline(_ data: String, _ arm: String) -> [Double] {
        study.seeds.indices.map { k in
            guard let base = run(data, study.baseline, seedIndex: k), let r = run(data, arm, seedIndex: k) else { return .nan }
            return r.tokensToReach(base.finalValidation) ?? Double(r.steps * r.tokensPerStep)
        }
    }

    // MARK: - Comparisons

    /// One row of the comparison table.
    public struct Row {
        public var data: String
        public var arm: String
        public var metric: String
        public var comparison: PairedStatistics.Comparison
        public var better: PairedStatistics.Better
    }

    public func comparisons() -> [Row] {
        var rows: [Row] = []
        for d in study.data {
            let arms = study.arms(for: d).map(\.name)
            guard arms.contains(study.baseline) else { continue }
            for arm in arms where arm != study.baseline {
                for m in metrics(for: d) {
                    let c = PairedStatistics.compare(arm: values(d.name, arm, m.value),
                                                     baseline: values(d.name, study.baseline, m.value),
                                                     better: m.better, resamples: resamples)
                    rows.append(Row(data: d.name, arm: arm, metric: m.name, comparison: c, better: m.better))
                }
                let tok = PairedStatistics.compare(arm: tokensToBaseline(d.name, arm),
                                                   baseline: tokensToBaseline(d.name, study.baseline),
                                                   better: .lower, resamples: resamples)
                rows.append(Row(data: d.name, arm: arm, metric: "tokens to baseline's final val", comparison: tok, better: .lower))
                rows.append(Row(data: d.name, arm: arm, metric: "seed sd of final val bpb",
                                comparison: seedSpreadComparison(d.name, arm), better: .lower))
            }
        }
        return rows
    }

    /// Bootstrap (over seeds, paired) of sd(arm) − sd(baseline) of the final validation bpb.
    func seedSpreadComparison(_ data: String, _ arm: String) -> PairedStatistics.Comparison {
        let a = values(data, arm) { $0.finalValidationBitsPerByte }, b = values(data, study.baseline) { $0.finalValidationBitsPerByte }
        let pairs = zip(a, b).filter { $0.0.isFinite && $0.1.isFinite }
        let x = pairs.map(\.0), y = pairs.map(\.1)
        let d = PairedStatistics.standardDeviation(x) - PairedStatistics.standardDeviation(y)
        let ci = x.count >= 3 ? PairedStatistics.bootstrapInterval(count: x.count, resamples: resamples) { idx in
            PairedStatistics.standardDeviation(idx.map { x[$0] }) - PairedStatistics.standardDeviation(idx.map { y[$0] })
        } : nil
        let agreement = d < 0 ? 1.0 : 0.0
        return PairedStatistics.Comparison(differences: [d], mean: d, interval: ci, agreement: agreement,
                                           verdict: PairedStatistics.verdict(interval: ci, agreement: agreement, better: .lower))
    }

    /// Learning-rate groups of a data set: arms that differ only in --lr (at least two rates).
    func lrGroups(_ data: StudyConfig.DataSpec) -> [(key: String, arms: [StudyConfig.Arm])] {
        var groups: [(String, [StudyConfig.Arm])] = []
        for arm in study.arms(for: data) {
            if let i = groups.firstIndex(where: { $0.1[0].differsOnlyInRate(from: arm) }) { groups[i].1.append(arm) } else { groups.append((arm.name, [arm])) }
        }
        return groups.filter { g in Set(g.1.map(\.learningRate)).count >= 2 }
    }

    /// Per-seed range (max − min) of final val bpb over a group's learning rates.
    func lrRange(_ data: String, _ arms: [StudyConfig.Arm], _ metric: Metric) -> [Double] {
        study.seeds.indices.map { k in
            let v = arms.compactMap { run(data, $0.name, seedIndex: k).flatMap(metric.value) }.filter(\.isFinite)
            return v.count == arms.count ? (v.max()! - v.min()!) : .nan
        }
    }

    /// Mean loss by position at the final eval (nats, mean over seeds) for a few position buckets,
    /// per arm: whether later positions, which have more context, gain more. Empty for synthetic
    /// data sets and runs that recorded none.
    func lossByPositionTable(_ d: StudyConfig.DataSpec, arms: [StudyConfig.Arm]) -> String {
        guard !d.isSynthetic else { return "" }
        let curves = runs.filter { $0.data == d.name }.map(\.lossByPosition)
        guard let buckets = curves.map(\.count).max(), buckets >= 2,
              let context = (try? study.recipe.model())?.config.context else { return "" }
        // With excerpts spread over the domain, the window's last target is the first byte of the
        // next excerpt (a seam), so the last bucket is left out.
        let last = study.spreadEvalWindows ? buckets - 2 : buckets - 1
        let picks = Array(Set([0, 1, 2, buckets / 8, buckets / 4, buckets / 2, last])).sorted()
        let width = Double(context) / Double(buckets)
        func label(_ b: Int) -> String { "\(Int((Double(b) * width).rounded()))–\(Int((Double(b + 1) * width).rounded()) - 1)" }
        var s = "Loss by position at the final eval (nats, mean over seeds; held-out split of the training data; "
        s += "later positions see more context"
        s += study.spreadEvalWindows ? "; the last bucket, which holds the seam between excerpts, is left out):\n\n" : "):\n\n"
        s += "| arm | " + picks.map { "pos \(label($0))" }.joined(separator: " | ") + " | first − last shown |\n"
        s += "| --- | " + picks.map { _ in "---" }.joined(separator: " | ") + " | --- |\n"
        for arm in arms {
            let rs = runs.filter { $0.data == d.name && $0.arm == arm.name && $0.lossByPosition.count == buckets }
            guard !rs.isEmpty else { continue }
            func at(_ b: Int) -> Double { PairedStatistics.mean(rs.map { $0.lossByPosition[b] }.filter(\.isFinite)) }
            s += "| \(arm.name) | " + picks.map { Self.f(at($0), 3) }.joined(separator: " | ") + " | \(Self.f(at(0) - at(last), 3)) |\n"
        }
        return s + "\n"
    }

    /// A synthetic task's last (long) band at every validation pass, per arm (means over seeds):
    /// accuracy and answer loss at fixed steps, and the emergence step. Empty for text and for runs
    /// that recorded no curve; at most 10 steps are shown (evenly picked, the last included).
    func syntheticCurveTable(_ d: StudyConfig.DataSpec, arms: [StudyConfig.Arm]) -> String {
        guard d.isSynthetic, let band = syntheticBands(d.name).last else { return "" }
        let withCurve = runs.filter { $0.data == d.name && $0.extras?.syntheticCurve != nil }
        let steps = Array(Set(withCurve.flatMap { $0.extras!.syntheticCurve!.map(\.step) })).sorted()
        guard !steps.isEmpty else { return "" }
        let shown = steps.count <= 10 ? steps : (1...10).map { steps[$0 * steps.count / 10 - 1] }
        func score(_ r: RunMetrics, _ step: Int) -> BandScore? {
            r.extras?.syntheticCurve?.first { $0.step == step }?.bands.first { $0.band == band && $0.accuracy >= 0 }
        }
        var s = "Band `\(band)` at each validation pass (\(study.recipe.evalWindows) windows; mean over seeds): accuracy / answer loss (nats). "
        s += "Emergence = first pass with accuracy ≥ \(Int(Self.emergenceAccuracy * 100)) % (per seed; – = not within the budget):\n\n"
        s += "| arm | " + shown.map { "step \($0)" }.joined(separator: " | ") + " | emergence step per seed |\n"
        s += "| --- | " + shown.map { _ in "---" }.joined(separator: " | ") + " | --- |\n"
        for arm in arms {
            let rs = withCurve.filter { $0.arm == arm.name }.sorted { $0.seed < $1.seed }
            guard !rs.isEmpty else { continue }
            let cells = shown.map { step -> String in
                let b = rs.compactMap { score($0, step) }
                return "\(Self.f(PairedStatistics.mean(b.map(\.accuracy)), 3)) / \(Self.f(PairedStatistics.mean(b.map(\.loss)), 3))"
            }
            let emergence = rs.map { r in r.emergenceStep(band: band, accuracy: Self.emergenceAccuracy).map(String.init) ?? "–" }
            s += "| \(arm.name) | " + cells.joined(separator: " | ") + " | \(emergence.joined(separator: ", ")) |\n"
        }
        return s + "\n"
    }

    /// The rate of an arm.
    func rate(_ arm: StudyConfig.Arm) -> Double { arm.learningRate }

    /// The final validation loss in bits per byte: the text data sets' deciding metric.
    static let finalBPB = Metric(name: "final val bpb", better: .lower) { $0.finalValidationBitsPerByte }

    /// The metric a data set's learning-rate section decides on: the final val bpb, or for a
    /// synthetic task (which every arm may learn to a loss near zero, so that final losses tie)
    /// the emergence step of its last band, when the runs recorded one (`metrics(for:)` leaves
    /// out a metric no run recorded).
    func rateMetric(_ d: StudyConfig.DataSpec) -> Metric {
        if d.isSynthetic, let long = syntheticBands(d.name).last,
           let m = metrics(for: d).first(where: { $0.name == Self.emergenceMetric(long) }) { return m }
        return Self.finalBPB
    }

    /// Learning-rate sensitivity of a data set in Markdown: each group's range over its rates
    /// (compared with the baseline group's range over the same rates), each arm against the
    /// baseline at the same rate, and each group at its best rate against the baseline at its
    /// best rate. Empty when no arm of the data set varies only in learning rate.
    func learningRateSection(_ d: StudyConfig.DataSpec) -> String {
        let groups = lrGroups(d)
        let baselineArm = study.arms.first { $0.name == study.baseline }
        let baseGroup = study.arms(for: d).filter { a in baselineArm.map(a.differsOnlyInRate) ?? false }
        guard !groups.isEmpty, baseGroup.count >= 2 else { return "" }
        let m = rateMetric(d)
        func perSeed(_ arm: String) -> [Double] { values(d.name, arm, m.value) }
        func mean(_ arm: String) -> Double { PairedStatistics.mean(perSeed(arm).filter(\.isFinite)) }
        func cell(_ c: PairedStatistics.Comparison, better: String) -> String {
            let ci = c.interval.map { "[\(Self.g($0.low)), \(Self.g($0.high))]" } ?? "—"
            return "\(Self.g(c.mean)) | \(ci) | \(Int((c.agreement * Double(c.differences.count)).rounded()))/\(c.differences.count) \(better) | \(c.verdict.rawValue)"
        }
        var s = "Learning-rate sensitivity (range of \(m.name) over the learning rates, per seed; a group is "
        s += "compared with the baseline's range over the same rates):\n\n"
        s += "| arms | learning rates | mean range | per-seed ranges | baseline's range at these rates: Δ | 95 % CI | pairs | verdict |\n"
        s += "| --- | --- | --- | --- | --- | --- | --- | --- |\n"
        for (_, arms) in groups {
            let r = lrRange(d.name, arms, m)
            let lrs = arms.map { Self.g(rate($0)) }.joined(separator: ", ")
            var line = "| \(arms.map(\.name).joined(separator: ", ")) | \(lrs) | \(Self.f(PairedStatistics.mean(r.filter(\.isFinite)))) | \(r.map { Self.f($0) }.joined(separator: ", ")) | "
            let matching = Set(arms.map(rate))
            let baseSame = baseGroup.filter { matching.contains(rate($0)) }
            if arms.contains(where: { $0.name == study.baseline }) || baseSame.count != matching.count {
                line += "— | — | — | — |"
            } else {
                let c = PairedStatistics.compare(arm: r, baseline: lrRange(d.name, baseSame, m), better: .lower, resamples: resamples)
                line += cell(c, better: "smaller") + " |"
            }
            s += line + "\n"
        }
        // Each arm against the baseline at the same rate.
        var rows: [String] = []
        for (_, arms) in groups where !arms.contains(where: { $0.name == study.baseline }) {
            for arm in arms {
                guard let base = baseGroup.first(where: { rate($0) == rate(arm) }) else { continue }
                let c = PairedStatistics.compare(arm: perSeed(arm.name), baseline: perSeed(base.name), better: m.better, resamples: resamples)
                rows.append("| \(arm.name) | \(Self.g(rate(arm))) | \(base.name) | " + cell(c, better: m.better.rawValue) + " |")
            }
        }
        if !rows.isEmpty {
            s += "\nAt the same learning rate (Δ \(m.name) = arm − the baseline at that rate):\n\n"
            s += "| arm | lr | baseline | Δ mean | 95 % CI | pairs | verdict |\n| --- | --- | --- | --- | --- | --- | --- |\n"
            s += rows.joined(separator: "\n") + "\n"
        }
        // Each group at its best rate (best mean of the metric) against the baseline at its best.
        func best(_ arms: [StudyConfig.Arm]) -> StudyConfig.Arm? {
            // Arms without a finite mean (every run failed or missing) cannot be the best.
            arms.filter { mean($0.name).isFinite }.min { m.better == .lower ? mean($0.name) < mean($1.name) : mean($0.name) > mean($1.name) }
        }
        let others = groups.filter { !$0.arms.contains(where: { $0.name == study.baseline }) }
        if let baseBest = best(baseGroup), !others.isEmpty {
            let top = baseGroup.map(rate).max() ?? 0
            s += "\nAt each group's best learning rate of the grid (\(m.better == .lower ? "lowest" : "highest") mean \(m.name); the baseline's is \(baseBest.name)"
            s += rate(baseBest) == top ? ", the top of its grid: a higher rate might be better still" : ""
            s += "):\n\n| group | best arm | lr | mean \(m.name) | Δ vs \(baseBest.name) | 95 % CI | pairs | verdict |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n"
            for (_, arms) in others {
                guard let b = best(arms) else { continue }
                let c = PairedStatistics.compare(arm: perSeed(b.name), baseline: perSeed(baseBest.name), better: m.better, resamples: resamples)
                s += "| \(arms.map(\.name).joined(separator: ", ")) | \(b.name) | \(Self.g(rate(b))) | \(Self.f(mean(b.name))) | " + cell(c, better: m.better.rawValue) + " |\n"
            }
        }
        return s + "\n"
    }

    // MARK: - Output

    static func f(_ v: Double, _ digits: Int = 4) -> String {
        v.isFinite ? String(format: "%.\(digits)f", v) : "—"
    }

    static func g(_ v: Double) -> String {
        guard v.isFinite else { return "—" }
        let a = abs(v)
        if a != 0 && (a < 1e-3 || a >= 1e5) { return String(format: "%.3g", v) }
        return String(format: a >= 100 ? "%.0f" : "%.4f", v)
    }

    /// The Markdown report.
    public func markdown(command: String) -> String {
        var s = "# Study \(study.name)\n\n"
        let shape = try? study.recipe.model().config
        let model = shape.map { "\($0.layers) layers, \($0.heads) heads, C \($0.channels), T \($0.context)" } ?? "?"
        s += "Command: `\(command)`\n\n"
        s += "Model: \(model), batch \(study.recipe.batch), \(study.recipe.steps) steps (\(study.recipe.steps * study.recipe.batch * (shape?.context ?? 0)) tokens per run, the same for every arm), "
        s += "base lr \(study.recipe.learningRate), seeds \(study.seeds.map(String.init).joined(separator: ", ")) (paired: seed i of an arm is compared with seed i of `\(study.baseline)`), \(study.recipe.threads) thread(s), divergence guard `\(study.recipe.divergence.policy.rawValue)`.\n\n"
        s += "Statistics: differences arm − baseline per seed; mean with a percentile bootstrap 95 % interval (\(resamples) resamples, fixed seed); "
        s += "**supported** = interval excludes 0 in the good direction and more than half of the pairs agree; **not supported (worse)** = interval excludes 0 in the bad direction; "
        s += "**mixed** = interval includes 0 but most pairs point the good way; **not supported** otherwise; **insufficient data** with fewer than \(PairedStatistics.minimumPairs) seed pairs.\n\n"
        let rows = comparisons()
        s += glance(rows)
        if !failures.isEmpty {
            s += "**Runs that failed** (left out of every table and statistic; a pair with a failed side drops out):\n\n"
            s += failures.map { "- `\($0)`\n" }.joined() + "\n"
        }
        for d in study.data {
            let arms = study.arms(for: d)
            s += "## Data set `\(d.name)` (\(d.source)\(d.limit.map { ", first \($0) bytes" } ?? ""))\n\n"
            let valName = d.isSynthetic ? "answers only (masked), generated validation windows" : (study.primary.map { "domain `\($0)`" } ?? "held-out split of the training data")
            s += "Validation loss: \(valName).\n\n"
            // Per-arm summary.
            var head = "| arm | runs | lr | final val bpb (mean ± sd) | range over seeds | min val bpb | flip rate | cos(g,g′) | cos(u,u′) | spikes | grad CV | tok/s |"
            var sep = "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
            let gains = gainWindows(d.name)
            for c in gains { head += " ΔL(\(c)) |"; sep += " --- |" }
            let extraDomains = d.isSynthetic ? [] : study.evalDomains.filter { $0.name != study.primary }.map(\.name)
            for e in extraDomains { head += " \(e) bpb |"; sep += " --- |" }
            let bands = syntheticBands(d.name)
            for b in bands { head += " acc \(b) |"; sep += " --- |" }
            s += head + "\n" + sep + "\n"
            for arm in arms {
                let rs = runs.filter { $0.data == d.name && $0.arm == arm.name }
                func col(_ f: (RunMetrics) -> Double?) -> Double { PairedStatistics.mean(rs.compactMap(f).filter(\.isFinite)) }
                let v = rs.map(\.finalValidationBitsPerByte).filter(\.isFinite)
                var line = "| \(arm.name) | \(rs.count) | \(Self.g(arm.learningRate)) | "
                line += "\(Self.f(PairedStatistics.mean(v))) ± \(Self.f(PairedStatistics.standardDeviation(v))) | "
                line += "\(Self.f((v.max() ?? .nan) - (v.min() ?? .nan))) | \(Self.f(col { $0.minValidation / log(2.0) })) | "
                line += "\(Self.f(col { $0.flipRate }, 3)) | \(Self.f(col { $0.gradientCosine }, 3)) | \(Self.f(col { $0.updateCosine }, 3)) | \(Self.f(col { Double($0.spikes) }, 1)) | "
                line += "\(Self.f(col { $0.gradNormCV }, 3)) | \(Self.f(col { $0.tokensPerSecond }, 0)) |"
                for c in gains { line += " \(Self.f(col { $0.contextGain[c] }, 4)) |" }
                for e in extraDomains { line += " \(Self.f(col { $0.finalDomains[e].map { $0 / log(2.0) } })) |" }
                for b in bands {
                    line += " \(Self.f(col { r in r.extras?.synthetic?.first { $0.band == b }.flatMap { $0.accuracy >= 0 ? $0.accuracy : nil } }, 3)) |"
                }
                s += line + "\n"
            }
            s += "\n"
            s += lossByPositionTable(d, arms: arms)
            s += syntheticCurveTable(d, arms: arms)
            let mine = rows.filter { $0.data == d.name }
            if !mine.isEmpty {
                s += "Paired comparisons with `\(study.baseline)` (Δ = arm − baseline):\n\n"
                s += "| arm | metric | better | Δ mean | 95 % CI | pairs better | verdict |\n| --- | --- | --- | --- | --- | --- | --- |\n"
                for r in mine {
                    let c = r.comparison
                    let ci = c.interval.map { "[\(Self.g($0.low)), \(Self.g($0.high))]" } ?? "—"
                    let pairs = r.metric.hasPrefix("seed sd") ? "—" : "\(Int((c.agreement * Double(c.differences.count)).rounded()))/\(c.differences.count)"
                    s += "| \(r.arm) | \(r.metric) | \(r.better.rawValue) | \(Self.g(c.mean)) | \(ci) | \(pairs) | \(c.verdict.rawValue) |\n"
                }
                s += "\n"
            }
            s += learningRateSection(d)
            s += twinCalibrationTable(d, arms: arms, command: command)
            s += "Plots: `\(d.name)-val.svg` (validation loss), `\(d.name)-train.svg` (training loss), mean over seeds.\n\n"
        }
        s += "Memory: `processPeakRSSBytes` in each run's summary.json is the eval process's running peak (getrusage), so it is not a per-arm figure; "
        let peak = runs.compactMap { $0.extras?.processPeakRSSBytes }.max()
        s += "the peak over the whole study was \(peak.map { String(format: "%.1f MB", Double($0) / 1e6) } ?? "—").\n"
        return s
    }

    /// The claims and the metric that decides each (the others in the tables are supporting).
    static let claims: [(claim: String, metric: String, data: (StudyConfig.DataSpec) -> Bool)] = [
        ("less oscillation", "update sign-flip rate", { !$0.isSynthetic && $0.limit == nil }),
        ("smoother gradients", "cos(g_t, g_t−1)", { !$0.isSynthetic && $0.limit == nil }),
        ("smoother updates", "cos(u_t, u_t−1)", { !$0.isSynthetic && $0.limit == nil }),
        ("better final validation loss", finalBPB.name, { !$0.isSynthetic && $0.limit == nil }),
        ("faster convergence", "tokens to baseline's final val", { !$0.isSynthetic && $0.limit == nil }),
        ("more use of long context (text)", "context gain ΔL(64)", { !$0.isSynthetic && $0.limit == nil }),
        ("long-range recall/copy", "answer loss long", { $0.isSynthetic }),
        ("long-range recall/copy", "accuracy long", { $0.isSynthetic }),
        ("long range learned sooner", emergenceMetric("long"), { $0.isSynthetic }),
        ("near-domain transfer", "sonnets bpb (zero-shot)", { !$0.isSynthetic && $0.limit == nil }),
        ("far-domain transfer", "fortunes bpb (zero-shot)", { !$0.isSynthetic && $0.limit == nil }),
        ("far-domain adaptation", "fortunes held-out bpb after fine-tune", { !$0.isSynthetic && $0.limit == nil }),
        ("less sensitive to initialisation", "seed sd of final val bpb", { !$0.isSynthetic && $0.limit == nil }),
        ("less overfitting", "val − train gap (nats)", { $0.limit != nil }),
        ("no extra cost", "tokens/s", { !$0.isSynthetic && $0.limit == nil }),
    ]

    /// A table of verdicts: one row per claim and data set, one column per arm.
    func glance(_ rows: [Row]) -> String {
        let armNames = study.arms.map(\.name).filter { $0 != study.baseline }
        var lines: [String] = []
        for c in Self.claims {
            for d in study.data where c.data(d) {
                let cells = armNames.map { arm -> String in
                    // A metric the runs did not record (older run files) leaves the cell empty.
                    guard let r = rows.first(where: { $0.data == d.name && $0.arm == arm && $0.metric == c.metric }),
                          !r.comparison.differences.isEmpty else { return "" }
                    return "\(r.comparison.verdict.rawValue) (\(Self.g(r.comparison.mean)))"
                }
                guard cells.contains(where: { !$0.isEmpty }) else { continue }
                lines.append("| \(c.claim) | \(c.metric) | \(d.name) | " + cells.joined(separator: " | ") + " |")
            }
        }
        guard !lines.isEmpty else { return "" }
        var s = "## Verdicts at a glance\n\nEach cell: verdict (mean Δ = arm − `\(study.baseline)`). Details per data set below.\n\n"
        s += "| claim | deciding metric | data | " + armNames.joined(separator: " | ") + " |\n"
        s += "| --- | --- | --- | " + armNames.map { _ in "---" }.joined(separator: " | ") + " |\n"
        return s + lines.joined(separator: "\n") + "\n\n"
    }

    /// One line per run with its scalar metrics.
    public func runsCSV() -> String {
        let gains = Array(Set(runs.flatMap { $0.contextGain.keys })).sorted()
        let domains = Array(Set(runs.flatMap { $0.finalDomains.keys })).sorted()
        let bands = Array(Set(runs.flatMap { $0.extras?.synthetic?.map(\.band) ?? [] })).sorted()
        let fineTunes = Array(Set(runs.flatMap { $0.fineTunes.keys })).sorted()
        var header = ["data", "arm", "seed", "lr", "steps", "tokens", "final_val_loss", "final_val_bpb", "min_val_loss",
                      "final_train_loss", "val_minus_train", "flip_rate", "grad_cos", "update_cos", "spikes", "grad_norm_cv", "tokens_per_s",
                      "wall_s", "process_peak_rss_bytes"]
        header += gains.map { "dL_\($0)" } + domains.map { "loss_\($0)" } + bands.flatMap { ["acc_\($0)", "loss_ans_\($0)"] }
        header += fineTunes.flatMap { ["finetune_\($0)_loss_before", "finetune_\($0)_loss_after"] }
        var s = header.joined(separator: ",") + "\n"
        for r in runs {
            var v: [String] = [r.data, r.arm, String(r.seed), "\(r.learningRate)", String(r.steps), String(r.steps * r.tokensPerStep)]
            v += [r.finalValidation, r.finalValidationBitsPerByte, r.minValidation, r.finalTrain, r.generalisationGap,
                  r.flipRate, r.gradientCosine, r.updateCosine, Double(r.spikes), r.gradNormCV, r.tokensPerSecond,
                  r.extras?.wallSeconds ?? .nan].map(Self.csv)
            v.append(r.extras.map { String($0.processPeakRSSBytes) } ?? "")
            v += gains.map { Self.csv(r.contextGain[$0] ?? .nan) } + domains.map { Self.csv(r.finalDomains[$0] ?? .nan) }
            for b in bands {
                let sc = r.extras?.synthetic?.first { $0.band == b }
                v += [Self.csv(sc.map { $0.accuracy >= 0 ? $0.accuracy : .nan } ?? .nan), Self.csv(sc.map { $0.accuracy >= 0 ? $0.loss : .nan } ?? .nan)]
            }
            for f in fineTunes { v += [Self.csv(r.fineTunes[f]?.before ?? .nan), Self.csv(r.fineTunes[f]?.after ?? .nan)] }
            s += v.joined(separator: ",") + "\n"
        }
        return s
    }

    /// Every comparison row.
    public func comparisonsCSV() -> String {
        var s = "data,arm,metric,better,mean_diff,ci_low,ci_high,pairs,pairs_better,verdict\n"
        for r in comparisons() {
            let c = r.comparison
            s += [r.data, r.arm, r.metric, r.better.rawValue, Self.csv(c.mean), Self.csv(c.interval?.low ?? .nan),
                  Self.csv(c.interval?.high ?? .nan), String(c.differences.count),
                  String(Int((c.agreement * Double(c.differences.count)).rounded())), c.verdict.rawValue]
                .map { $0.contains(",") ? "\"\($0)\"" : $0 }.joined(separator: ",") + "\n"
        }
        return s
    }

    static func csv(_ v: Double) -> String { v.isFinite ? String(v) : "" }

    /// Mean curves over seeds per arm: validation and training loss, one chart each per data set.
    public func plots() -> [(name: String, svg: String)] {
        var out: [(String, String)] = []
        for d in study.data {
            var val: [SVGLineChart.Series] = [], train: [SVGLineChart.Series] = []
            for arm in study.arms(for: d) {
                let rs = runs.filter { $0.data == d.name && $0.arm == arm.name }
                guard let first = rs.first else { continue }
                val.append(.init(name: arm.name, points: first.validationCurve.indices.map { i in
                    (Double(first.validationCurve[i].step), PairedStatistics.mean(rs.compactMap { $0.validationCurve.count > i ? $0.validationCurve[i].loss : nil }))
                }))
                train.append(.init(name: arm.name, points: first.trainCurve.indices.map { i in
                    (Double(first.trainCurve[i].step), PairedStatistics.mean(rs.compactMap { $0.trainCurve.count > i ? $0.trainCurve[i].loss : nil }))
                }))
            }
            let what = d.isSynthetic ? "answer loss (nats)" : "loss (nats)"
            out.append(("\(d.name)-val.svg", SVGLineChart(title: "\(study.name): \(d.name) validation \(what), mean over seeds",
                                                          xLabel: "step", yLabel: "validation \(what)", series: val).render()))
            out.append(("\(d.name)-train.svg", SVGLineChart(title: "\(study.name): \(d.name) training \(what), mean over seeds",
                                                            xLabel: "step", yLabel: "training \(what)", series: train).render()))
        }
        return out
    }

    /// Writes report.md, runs.csv, comparisons.csv, twin-windows.csv (when an arm has a twin window)
    /// and the plots into `directory`; returns the paths.
    @discardableResult
    public func write(to directory: String, command: String) throws -> [String] {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var files: [(String, String)] = [("report.md", markdown(command: command)), ("runs.csv", runsCSV()),
                                         ("comparisons.csv", comparisonsCSV())]
        let windows = twinWindowsCSV()
        if !windows.isEmpty { files.append(("twin-windows.csv", windows)) }
        files += plots()
        var paths: [String] = []
        for (name, text) in files {
            let p = (directory as NSString).appendingPathComponent(name)
            try text.write(toFile: p, atomically: true, encoding: .utf8)
            paths.append(p)
        }
        return paths
    }
}
