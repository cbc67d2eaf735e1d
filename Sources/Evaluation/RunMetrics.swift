import Foundation
import Telemetry
import Training

/// What the runner measures outside the run file, stored as RUNDIR/summary.json.
public struct RunExtras: Codable, Sendable, Equatable {
    /// Per-band loss and accuracy of a synthetic task (nil for text).
    public var synthetic: [BandScore]?
    /// The same at every validation pass (on the study's `eval_windows` windows), for the
    /// emergence step; nil for text and for runs recorded before it was measured.
    public var syntheticCurve: [SyntheticPoint]?
    /// Peak resident memory of the whole eval process after this run (getrusage ru_maxrss): a
    /// running maximum over every run so far in the process, not a per-arm figure.
    public var processPeakRSSBytes: Int
    /// Wall-clock seconds of the run (training, evals, checkpoint).
    public var wallSeconds: Double
    public var parameters: Int
}

/// Per-band synthetic scores at one validation pass.
public struct SyntheticPoint: Codable, Sendable, Equatable {
    public var step: Int
    public var bands: [BandScore]
}

/// The numbers one run contributes to the report, read back from its run file and summary.
public struct RunMetrics: Sendable {
    public var data: String
    public var arm: String
    public var seed: UInt64
    public var learningRate: Double
    public var tokensPerStep: Int
    public var steps: Int
    /// (step, loss) of the primary validation domain at every eval.
    public var validationCurve: [(step: Int, loss: Double)]
    /// Step losses averaged into at most 200 points (step, loss).
    public var trainCurve: [(step: Int, loss: Double)]
    public var finalValidation: Double
    public var minValidation: Double
    /// Final loss of every validation domain by name.
    public var finalDomains: [String: Double]
    /// Mean training loss over the last 10 % of steps (at least 10).
    public var finalTrain: Double
    /// Mean over the second half of the steps of the depth-group mean update sign-flip rate (EMA).
    public var flipRate: Double
    /// Same for cos(g_t, g_{t−1}) (EMA).
    public var gradientCosine: Double
    /// Same for cos(Δθ_t, Δθ_{t−1}) (EMA); NaN for runs recorded before it was measured.
    public var updateCosine: Double
    public var spikes: Int
    /// The run's grad-norm CV(100) (`GradNormCV.runMean`): the mean over consecutive 100-step
    /// windows of σ/μ of the gradient norm.
    public var gradNormCV: Double
    /// Median tokens per second of the training steps.
    public var tokensPerSecond: Double
    /// ΔL(c) at the final eval, by window c.
    public var contextGain: [Int: Double]
    public var lossByPosition: [Double]
    public var extras: RunExtras?
    /// The verdicts of the run's twin windows, in order (scripted changes of a calibration study).
    public var verdicts: [VerdictInfo] = []
    /// The training loss of every step by step number (a step recorded twice keeps its last
    /// record): the report measures twin windows of any length from these (paired with the baseline).
    public var stepLosses: [Int: Double] = [:]
    /// Fine-tunes of this run by domain name: held-out loss before (zero-shot) and after.
    public var fineTunes: [String: FineTuneResult] = [:]

    /// The held-out loss of a fine-tune domain before and after the fine-tune (nats).
    public struct FineTuneResult: Sendable, Equatable {
        public var before: Double
        public var after: Double
    }

    public var finalValidationBitsPerByte: Double { finalValidation / log(2.0) }
    /// Final validation loss minus final training loss (the overfitting gap).
    public var generalisationGap: Double { finalValidation - finalTrain }

    /// Tokens seen when the primary validation loss first reached `target` (nil: never).
    public func tokensToReach(_ target: Double) -> Double? {
        validationCurve.first { $0.loss <= target }.map { Double($0.step * tokensPerStep) }
    }

    /// The first step whose score in `band` reached `accuracy` (nil: never, or no curve recorded).
    public func emergenceStep(band: String, accuracy: Double) -> Int? {
        extras?.syntheticCurve?.first { p in p.bands.first { $0.band == band }.map { $0.accuracy >= accuracy } ?? false }?.step
    }

    /// Reads `runDirectory`/run.jsonl (and summary.json). `primary` names the validation domain;
    /// nil takes the first (the training data's held-out split).
    public init(runDirectory: String, data: String, arm: String, seed: UInt64, primary: String?) throws {
        let reader = try RunFileReader(path: runDirectory)
        reader.stepDetail = .noLayerArrays
        let h = reader.header
        self.data = data
        self.arm = arm
        self.seed = seed
        learningRate = h.config["lr"].flatMap { if case let .number(x) = $0 { return x }; return nil } ?? .nan
        tokensPerStep = h.tokensPerStep ?? 0
        steps = h.totalSteps
        var losses: [Double] = [], norms: [Double] = [], flips: [Double] = [], cosines: [Double] = [], speeds: [Double] = []
        var updateCosines: [Double] = []
        var spikeCount = 0
        var evals: [EvalRecord] = []
        var verdictList: [VerdictInfo] = []
        var stepLoss: [Int: Double] = [:]
        try reader.forEachRecord { r in
            switch r {
            case let .step(s):
                losses.append(s.loss)
                stepLoss[s.step] = s.loss
                norms.append(s.gradNorm)
                speeds.append(s.tokensPerSecond)
                if s.spike { spikeCount += 1 }
                let g = Double(max(1, s.oscillation.count))
                flips.append(s.oscillation.reduce(0) { $0 + $1.flipRate } / g)
                cosines.append(s.oscillation.reduce(0) { $0 + $1.gradientCosine } / g)
                let updates = s.oscillation.compactMap(\.updateCosine)
                updateCosines.append(updates.count == s.oscillation.count && !updates.isEmpty
                                     ? updates.reduce(0, +) / g : .nan)
            case let .eval(e): evals.append(e)
            case let .event(e) where e.kind == .verdict: if let v = e.verdict { verdictList.append(v) }
            default: break
            }
        }
        func primaryLoss(_ e: EvalRecord) -> Double {
            if let primary { return e.domains.first { $0.name == primary }?.loss ?? .nan }
            return e.domains.first?.loss ?? .nan
        }
        verdicts = verdictList
        stepLosses = stepLoss
        validationCurve = evals.map { ($0.step, primaryLoss($0)) }
        finalValidation = validationCurve.last?.loss ?? .nan
        minValidation = validationCurve.map(\.loss).min() ?? .nan
        finalDomains = Dictionary(evals.last?.domains.map { ($0.name, $0.loss) } ?? [], uniquingKeysWith: { a, _ in a })
        let tail = max(10, losses.count / 10)
        finalTrain = PairedStatistics.mean(Array(losses.suffix(tail)))
        let half = losses.count / 2
        flipRate = PairedStatistics.mean(Array(flips[half...]))
        gradientCosine = PairedStatistics.mean(Array(cosines[half...]))
        let lateUpdates = updateCosines[half...].filter(\.isFinite)
        updateCosine = lateUpdates.isEmpty ? .nan : PairedStatistics.mean(Array(lateUpdates))
        spikes = spikeCount
        gradNormCV = GradNormCV.runMean(norms)
        let sortedSpeeds = speeds.dropFirst(min(5, speeds.count / 2)).sorted()
        tokensPerSecond = PairedStatistics.quantile(Array(sortedSpeeds), 0.5)
        contextGain = Dictionary(evals.last?.contextGain.map { ($0.window, $0.delta) } ?? [], uniquingKeysWith: { a, _ in a })
        lossByPosition = evals.last?.lossByPosition ?? []
        trainCurve = Self.decimate(losses, points: 200)
        let summary = (runDirectory as NSString).appendingPathComponent("summary.json")
        extras = FileManager.default.contents(atPath: summary).flatMap { try? JSONDecoder().decode(RunExtras.self, from: $0) }
        let children = (try? FileManager.default.contentsOfDirectory(atPath: runDirectory)) ?? []
        for child in children.sorted() where child.hasPrefix("finetune-") {
            let evals = try Self.evals(in: (runDirectory as NSString).appendingPathComponent(child))
            if let first = evals.first?.domains.first?.loss, let last = evals.last?.domains.first?.loss {
                fineTunes[String(child.dropFirst("finetune-".count))] = FineTuneResult(before: first, after: last)
            }
        }
    }

    /// The eval records of a run directory, in order.
    static func evals(in runDirectory: String) throws -> [EvalRecord] {
        let reader = try RunFileReader(path: runDirectory)
        reader.stepDetail = .scalars
        var evals: [EvalRecord] = []
        try reader.forEachRecord { if case let .eval(e) = $0 { evals.append(e) } }
        return evals
    }

    /// Averages consecutive values into at most `points` points, at the step of each group's middle.
    static func decimate(_ x: [Double], points: Int) -> [(step: Int, loss: Double)] {
        guard !x.isEmpty else { return [] }
        let group = max(1, (x.count + points - 1) / points)
        var out: [(Int, Double)] = []
        var i = 0
        while i < x.count {
            let j = min(x.count, i + group)
            out.append(((i + j - 1) / 2, x[i..<j].reduce(0, +) / Double(j - i)))
            i = j
        }
        return out
    }
}
