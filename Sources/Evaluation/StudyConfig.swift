import Foundation
import Training
import Model
import Refinement

/// A study: arms × seeds × data sets on one model and one token budget, read from a small
/// `key = value` file (docs/EVALUATION.md describes the format; studies/ has examples).
///
///     name = reduced
///     layers = 2            # model shape: preset, layers, heads, dim, context, batch
///     steps = 400           # the same token budget for every arm: steps × batch × context
///     seeds = 1,2,3         # paired: seed i of every arm is compared with seed i of the baseline
///     eval plays = data/study/plays-val          # extra validation domain NAME = PATH
///     primary = plays                            # the domain whose loss is "validation loss"
///     data text = data/study/plays-train         # data set NAME = PATH | embedded | synthetic:TASK
///     data small = data/study/plays-train limit=32768   # only the first N training bytes
///     arm baseline =                             # arm NAME = train flags (refinement, --lr, seeds)
///     arm all-adaptive = --adaptive all
///     arms.small = baseline, all-adaptive        # the arms run on one data set (default: all)
///     finetune fortunes = data/study/fortunes-computers.txt steps=100 lr=3e-4
///                           # after each full text run: fine-tune on the file's first 90 %, score its last 10 %
public struct StudyConfig: Sendable, Equatable {
    public var name = "study"
    public var preset = "S"
    public var layers: Int?
    public var heads: Int?
    public var dim: Int?
    public var context: Int?
    public var batch = 8
    public var steps = 400
    public var learningRate = 1e-3
    public var warmup: Int?
    public var seeds: [UInt64] = [1, 2, 3]
    public var threads = 1
    public var evalEvery = 50
    public var evalWindows = 16
    /// Evaluate extra domains on excerpts spread over the whole domain (`eval_spread = false`: the
    /// trainer's default, consecutive windows from the start).
    public var spreadEvalWindows = true
    /// Windows scored per band for a synthetic task after training.
    public var syntheticWindows = 256
    public var baseline = "baseline"
    /// Validation domain (an `eval` name) whose loss is a text data set's validation loss; nil: the
    /// training data's own held-out split.
    public var primary: String?
    public var evalDomains: [NamedPath] = []
    public var data: [DataSpec] = []
    public var arms: [Arm] = []
    /// Arms per data set (absent: every arm).
    public var armsForData: [String: [String]] = [:]
    /// A short fine-tune after every run on a full text data set (nil: none).
    public var fineTune: FineTune?
    /// What every run does on a divergence (`on_divergence`, as `gradflow train --on-divergence`;
    /// default rollback). A study of how fast a task is learned may want `off`: the guard's
    /// rollbacks change a run's path, and a transient bump is not a blow-up.
    public var onDivergence = DivergencePolicy.rollback

    /// Cross-domain adaptation: the trained model, with fresh optimizer state and the arm's
    /// refinement, trains `steps` steps on the first 90 % of `path` and is scored on the last 10 %
    /// before and after. Recorded as the run directory RUN/finetune-NAME.
    public struct FineTune: Sendable, Equatable {
        public var name: String
        public var path: String
        public var steps: Int
        /// Peak learning rate (nil: the run's own).
        public var learningRate: Double?

        /// The run directory of the fine-tune of the run in `runDirectory`.
        public func directory(in runDirectory: String) -> String {
            (runDirectory as NSString).appendingPathComponent("finetune-\(name)")
        }
    }

    /// Whether runs on `data` are followed by the fine-tune.
    public func fineTunes(_ data: DataSpec) -> Bool { fineTune != nil && !data.isSynthetic && data.limit == nil }

    public struct NamedPath: Sendable, Equatable {
        public var name: String
        public var path: String
    }

    /// One training data set of the study.
    public struct DataSpec: Sendable, Equatable {
        public var name: String
        /// A file or folder, `embedded`, or a synthetic task (`synthetic:NAME`, see `SyntheticTask`).
        public var source: String
        /// Use only the first `limit` bytes of the training split (overfitting studies).
        public var limit: Int?
        public var isSynthetic: Bool { source.hasPrefix("synthetic:") }
    }

    /// One arm: a name and the `gradflow train` flags that make it.
    public struct Arm: Sendable, Equatable {
        public var name: String
        public var flags: String
        public var refinement: RefinementFlags
        public var learningRate: Double?
        /// Fixed seeds (the study's seed then varies only the other one).
        public var initSeed: UInt64?
        public var dataSeed: UInt64?
        /// Scripted changes (`--change STEP:AXIS.BAND=VALUE`, as `gradflow train` takes them).
        public var changes: [String] = []
        /// The twin window after each change (`--twin-steps`); nil: no twins (the study's runs
        /// pay for none unless an arm asks).
        public var twinSteps: Int?

        /// The refinement flags alone (arms that differ only in learning rate share this).
        public var refinementKey: String {
            RefinementFlags.table.map { refinement[keyPath: $0.value] ?? "-" }.joined(separator: "|")
                + "|init \(initSeed.map(String.init) ?? "-")|data \(dataSeed.map(String.init) ?? "-")"
                + "|changes \(changes.joined(separator: ";"))|twin \(twinSteps.map(String.init) ?? "-")"
        }
    }

    public init() {}

    /// Error naming the study file, the line and what was expected.
    public struct ParseError: Error, CustomStringConvertible {
        public var description: String
    }

    /// Parses the text of a study file; `origin` names it in errors.
    public init(text: String, origin: String) throws {
        self.init()
        var sawArm = false, sawData = false
        for (i, raw) in text.components(separatedBy: "\n").enumerated() {
            let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first
                .map(String.init)?.trimmingCharacters(in: .whitespaces) ?? ""
            if line.isEmpty { continue }
            func fail(_ m: String) -> ParseError { ParseError(description: "\(origin):\(i + 1): \(m)") }
            guard let eq = line.firstIndex(of: "=") else { throw fail("expected KEY = VALUE (got '\(line)')") }
            let key = line[..<eq].trimmingCharacters(in: .whitespaces)
            let value = line[line.index(after: eq)...].trimmingCharacters(in: .whitespaces)
            func int() throws -> Int {
                guard let v = Int(value) else { throw fail("\(key) expects an integer (got '\(value)')") }
                return v
            }
            let words = key.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            switch words.first ?? "" {
            case "name": name = value
            case "preset": preset = value
            case "layers": layers = try int()
            case "heads": heads = try int()
            case "dim": dim = try int()
            case "context": context = try int()
            case "batch": batch = try int()
            case "steps": steps = try int()
            case "warmup": warmup = try int()
            case "threads": threads = try int()
            case "eval_every": evalEvery = try int()
            case "eval_windows": evalWindows = try int()
            case "synthetic_windows": syntheticWindows = try int()
            case "eval_spread":
                guard let v = Bool(value) else { throw fail("eval_spread expects true or false (got '\(value)')") }
                spreadEvalWindows = v
            case "on_divergence":
                guard let v = DivergencePolicy(rawValue: value) else {
                    throw fail("on_divergence expects one of \(DivergencePolicy.allCases.map(\.rawValue).joined(separator: ", ")) (got '\(value)')")
                }
                onDivergence = v
            case "baseline": baseline = value
            case "primary": primary = value
            case "lr":
                guard let v = Double(value) else { throw fail("lr expects a number (got '\(value)')") }
                learningRate = v
            case "seeds":
                let s = value.split(separator: ",").map { UInt64($0.trimmingCharacters(in: .whitespaces)) }
                guard !s.isEmpty, s.allSatisfy({ $0 != nil }) else { throw fail("seeds expects a list like 1,2,3 (got '\(value)')") }
                seeds = s.map { $0! }
            case "eval":
                guard words.count == 2, !value.isEmpty else { throw fail("expected 'eval NAME = PATH'") }
                evalDomains.append(NamedPath(name: words[1], path: value))
            case "data":
                let spec = try Self.dataSpec(words, value, fail: fail)
                if !sawData { data = []; sawData = true }
                guard !data.contains(where: { $0.name == spec.name }) else { throw fail("data set '\(spec.name)' is defined twice") }
                data.append(spec)
            case "finetune":
                fineTune = try Self.fineTuneSpec(words, value, fail: fail)
            case "arm":
                let arm = try Self.arm(words, value, fail: fail)
                if !sawArm { arms = []; sawArm = true }
                guard !arms.contains(where: { $0.name == arm.name }) else { throw fail("arm '\(arm.name)' is defined twice") }
                arms.append(arm)
            default:
                if key.hasPrefix("arms.") {
                    armsForData[String(key.dropFirst(5))] = value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
                } else {
                    throw fail("unknown key '\(key)'")
                }
            }
        }
        if let e = validationError() { throw ParseError(description: "\(origin): \(e)") }
    }

    /// `data NAME = PATH [limit=BYTES]`.
    private static func dataSpec(_ words: [String], _ value: String, fail: (String) -> ParseError) throws -> DataSpec {
        guard words.count == 2, !value.isEmpty else { throw fail("expected 'data NAME = PATH [limit=BYTES]'") }
        let parts = value.split(separator: " ").map(String.init)
        var spec = DataSpec(name: words[1], source: parts[0], limit: nil)
        for p in parts.dropFirst() {
            guard p.hasPrefix("limit="), let n = Int(p.dropFirst(6)), n > 0 else {
                throw fail("data option '\(p)' not understood; expected limit=BYTES")
            }
            spec.limit = n
        }
        return spec
    }

    /// `finetune NAME = PATH steps=N [lr=X]`.
    private static func fineTuneSpec(_ words: [String], _ value: String, fail: (String) -> ParseError) throws -> FineTune {
        guard words.count == 2, !value.isEmpty else { throw fail("expected 'finetune NAME = PATH steps=N [lr=X]'") }
        let parts = value.split(separator: " ").map(String.init)
        var spec = FineTune(name: words[1], path: parts[0], steps: 0)
        for p in parts.dropFirst() {
            if p.hasPrefix("steps="), let n = Int(p.dropFirst(6)), n > 0 {
                spec.steps = n
            } else if p.hasPrefix("lr="), let x = Double(p.dropFirst(3)), x > 0, x.isFinite {
                spec.learningRate = x
            } else {
                throw fail("finetune option '\(p)' not understood; expected steps=N (N ≥ 1) or lr=X (X > 0)")
            }
        }
        guard spec.steps > 0 else { throw fail("finetune \(spec.name) needs steps=N (the number of fine-tune steps)") }
        return spec
    }

    /// `arm NAME = FLAGS`.
    private static func arm(_ words: [String], _ value: String, fail: (String) -> ParseError) throws -> Arm {
        guard words.count == 2 else { throw fail("expected 'arm NAME = FLAGS'") }
        var arm = Arm(name: words[1], flags: value, refinement: RefinementFlags())
        do { try parseFlags(value, into: &arm) } catch let e as ParseError { throw fail(e.description) }
        return arm
    }

    /// Reads and parses a study file.
    public init(path: String) throws {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw ParseError(description: "\(path): cannot be read as UTF-8 text")
        }
        try self.init(text: text, origin: path)
    }

    static func parseFlags(_ text: String, into arm: inout Arm) throws {
        let tokens = text.split(separator: " ").map(String.init)
        var i = 0
        while i < tokens.count {
            let flag = tokens[i]
            guard i + 1 < tokens.count else { throw ParseError(description: "arm \(arm.name): \(flag) needs a value") }
            let v = tokens[i + 1]
            if let f = RefinementFlags.flag(named: flag) {
                arm.refinement[keyPath: f.value] = v
                i += 2
                continue
            }
            switch flag {
            case "--change":
                do { _ = try ChangeSpec.parse(v, place: "arm \(arm.name): --change") } catch {
                    throw ParseError(description: "\(error)")
                }
                arm.changes.append(v)
            case "--twin-steps":
                guard let n = Int(v), n >= 0 else { throw ParseError(description: "arm \(arm.name): --twin-steps expects a whole number ≥ 0 (got '\(v)')") }
                arm.twinSteps = n
            case "--lr":
                guard let x = Double(v) else { throw ParseError(description: "arm \(arm.name): --lr expects a number (got '\(v)')") }
                arm.learningRate = x
            case "--init-seed", "--data-seed":
                guard let x = UInt64(v) else { throw ParseError(description: "arm \(arm.name): \(flag) expects an integer (got '\(v)')") }
                if flag == "--init-seed" { arm.initSeed = x } else { arm.dataSeed = x }
            default:
                throw ParseError(description: "arm \(arm.name): unknown flag '\(flag)'; expected a refinement flag, --lr, --init-seed, --data-seed, --change or --twin-steps")
            }
            i += 2
        }
        do { _ = try RefinementConfig(flags: arm.refinement) } catch let e as RefinementError {
            throw ParseError(description: "arm \(arm.name): \(e.message)")
        }
    }

    /// Problems with the whole study, or nil.
    public func validationError() -> String? {
        if data.isEmpty { return "no data set; add a line 'data NAME = PATH'" }
        if arms.isEmpty { return "no arm; add a line 'arm baseline ='" }
        if !arms.contains(where: { $0.name == baseline }) { return "the baseline arm '\(baseline)' is not defined" }
        if let primary, !evalDomains.contains(where: { $0.name == primary }) { return "primary = \(primary) names no 'eval' domain" }
        for (d, names) in armsForData {
            guard data.contains(where: { $0.name == d }) else { return "arms.\(d) names no data set" }
            for n in names where !arms.contains(where: { $0.name == n }) { return "arms.\(d): no arm called '\(n)'" }
        }
        if steps < 1 || batch < 1 || evalWindows < 1 || threads < 1 { return "steps, batch, eval_windows and threads must be ≥ 1" }
        return nil
    }

    /// The model shape.
    public func model() throws -> GPTConfig {
        var c: GPTConfig
        switch preset.uppercased() {
        case "S": c = .S
        case "M": c = .M
        default: throw ParseError(description: "preset must be S or M (got '\(preset)')")
        }
        if let layers { c.layers = layers }
        if let heads { c.heads = heads }
        if let dim { c.channels = dim }
        if let context { c.context = context }
        if let e = c.validationError() { throw ParseError(description: e) }
        return c
    }

    public var isCustomModel: Bool { layers != nil || heads != nil || dim != nil || context != nil }

    /// The arms run on a data set, in study order.
    public func arms(for data: DataSpec) -> [Arm] {
        guard let names = armsForData[data.name] else { return arms }
        return arms.filter { names.contains($0.name) }
    }

    /// Every run of the study, seed-major (an interrupted study has complete seed pairs first).
    public var runs: [RunSpec] {
        var out: [RunSpec] = []
        for (k, seed) in seeds.enumerated() {
            for d in data {
                for arm in arms(for: d) { out.append(RunSpec(data: d, arm: arm, seedIndex: k, seed: seed)) }
            }
        }
        return out
    }
}

/// One run of a study.
public struct RunSpec: Sendable, Equatable {
    public var data: StudyConfig.DataSpec
    public var arm: StudyConfig.Arm
    public var seedIndex: Int
    public var seed: UInt64
    public var initSeed: UInt64 { arm.initSeed ?? seed }
    public var dataSeed: UInt64 { arm.dataSeed ?? seed }

    /// "data/arm/seed-N", as logs and the report name a run.
    public var label: String { "\(data.name)/\(arm.name)/seed-\(seed)" }

    /// DIR/data/arm/seed-N.
    public func directory(in out: String) -> String {
        [out, data.name, arm.name, "seed-\(seed)"].reduce("") { $0.isEmpty ? $1 : ($0 as NSString).appendingPathComponent($1) }
    }
}

extension StudyConfig {
    /// The study `gradflow eval --quick` runs: small enough for CI (well under a minute in release),
    /// it proves the harness end to end on the embedded corpus and the recall task.
    public static let quickText = """
    name = quick
    layers = 2
    heads = 2
    dim = 32
    context = 64
    batch = 4
    steps = 60
    lr = 3e-3
    seeds = 1,2
    eval_every = 20
    eval_windows = 8
    synthetic_windows = 64
    data text = embedded
    data recall = synthetic:recall
    arm baseline =
    arm all-adaptive = --adaptive all
    arm grokfast = --grokfast 0.98,2
    arms.recall = baseline, all-adaptive
    """
}
