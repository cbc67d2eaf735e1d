import Foundation
import Model
import Refinement
import RunFlags
import Training

/// A study: arms × seeds × data sets on one model and one token budget, read from a small
/// `key = value` file whose run settings are `gradflow train`'s own flags (docs/EVALUATION.md
/// describes the format; studies/ has examples).
///
///     name = reduced
///     train = --layers 2 --heads 2 --dim 64 --context 128   # gradflow train's flags, for every run
///     train = --steps 1000 --lr 3e-3 --eval-every 100 --eval-windows 32
///     train = --eval-data plays=data/study/plays-val         # an extra validation domain
///     seeds = 1,2,3         # paired: seed i of every arm is compared with seed i of the baseline
///     primary = plays                            # the domain whose loss is "validation loss"
///     data text = data/study/plays-train         # data set NAME = PATH | embedded | synthetic:TASK
///     data small = data/study/plays-train limit=32768   # only the first N training bytes
///     arm baseline =                             # arm NAME = more train flags (refinement, --lr, …)
///     arm all-adaptive = --adaptive all
///     arm data-only = --seed 1                   # the init fixed: the study's seed varies the data order
///     arms.small = baseline, all-adaptive        # the arms run on one data set (default: all)
///     finetune fortunes = data/study/fortunes-computers.txt steps=100 lr=3e-4
///                           # after each full text run: fine-tune on the file's first 90 %, score its last 10 %
///
/// The run of an arm at seed N is `gradflow train` with, in order, `defaultFlags`,
/// `--seed N --data-seed N`, the `train` lines and the arm's flags: a later value of a flag replaces
/// an earlier one, and the repeatable flags (--change, --eval-data, --twin-at) add up.
public struct StudyConfig: Sendable, Equatable {
    public var name = "study"
    /// The flags of the `train` lines, in order.
    public var trainFlags: [String] = []
    public var seeds: [UInt64] = [1, 2, 3]
    /// Evaluate extra domains on excerpts spread over the whole domain (`eval_spread = false`: the
    /// trainer's default, consecutive windows from the start).
    public var spreadEvalWindows = true
    /// Windows scored per band for a synthetic task after training.
    public var syntheticWindows = 256
    public var baseline = "baseline"
    /// Validation domain (an `--eval-data` name) whose loss is a text data set's validation loss;
    /// nil: the training data's own held-out split.
    public var primary: String?
    public var data: [DataSpec] = []
    public var arms: [Arm] = []
    /// Arms per data set (absent: every arm).
    public var armsForData: [String: [String]] = [:]
    /// A short fine-tune after every run on a full text data set (nil: none).
    public var fineTune: FineTune?
    /// What every arm shares: `defaultFlags` and the `train` lines (the seed is train's default).
    public private(set) var recipe = RunRecipe()
    /// The extra validation domains (`--eval-data`), in order.
    public private(set) var evalDomains: [NamedPath] = []

    /// The flags every study run starts from, before its seed, the `train` lines and its arm's: one
    /// thread (a study's figures do not depend on the machine's core count), no checkpoints but the
    /// last, and no twins unless an arm asks. Everything else is `gradflow train`'s default.
    public static let defaultFlags = ["--threads", "1", "--checkpoint-every", "0", "--twin-steps", "0"]

    /// `gradflow train` flags a study does not take, with the reason.
    public static let refusedFlags: [String: String] = [
        "--out": "a study puts each run in DIR/DATA/ARM/seed-N of `gradflow eval --out DIR`",
        "--resume": "a study's runs start from scratch; run the same `gradflow eval` again to continue an interrupted study",
        "--fork": "a study's runs start from scratch; run the same `gradflow eval` again to continue an interrupted study",
        "--data": "the study's `data NAME = PATH` lines give the training data",
        "--no-tui": "a study shows no dashboard: it prints one line per run",
        "--report-every": "a study shows no dashboard: it prints one line per run",
        "--theme": "a study shows no dashboard: it prints one line per run",
        "--graph": "a study shows no dashboard: it prints one line per run",
        "--compare": "a study shows no dashboard: it prints one line per run",
        "--bucket-mb": "a study runs each run in one process (not under mpirun)",
        "--debug-fingerprint": "a test hook of `gradflow train`, not a setting of the run",
        "--debug-fault": "a test hook of `gradflow train`, not a setting of the run",
    ]

    /// Flags that every arm shares (the model and the token budget, and what is measured): they go
    /// on a `train` line, not in an arm.
    public static let sharedFlags: Set<String> = [
        "--preset", "--layers", "--heads", "--dim", "--context", "--batch", "--steps",
        "--eval-data", "--eval-every", "--eval-windows",
    ]

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

    /// A name and a path (an extra validation domain).
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

    /// One arm: a name, the `gradflow train` flags it adds, and the recipe of its run at each seed.
    public struct Arm: Sendable, Equatable {
        public var name: String
        /// The arm's flags as written.
        public var flags: String
        /// The recipe of the arm's run at each of the study's seeds, in `seeds` order.
        public var recipes: [RunRecipe]

        /// What the arm sets that does not depend on the seed (its rate, refinement and changes):
        /// the recipe at the study's first seed.
        public var recipe: RunRecipe { recipes[0] }
        public var learningRate: Double { recipe.learningRate }

        /// Whether this arm's runs equal `other`'s at every seed once `clear` has reset what may differ.
        public func runsMatch(_ other: Arm, apartFrom clear: (inout RunRecipe) -> Void) -> Bool {
            recipes.count == other.recipes.count && zip(recipes, other.recipes).allSatisfy { a, b in
                var a = a, b = b
                clear(&a)
                clear(&b)
                return a == b
            }
        }

        /// Whether the two arms differ in their learning rate alone (or not at all).
        public func differsOnlyInRate(from other: Arm) -> Bool {
            runsMatch(other) { $0.learningRate = 0 }
        }
    }

    public init() {}

    /// Error naming the study file, the line and what was expected.
    public struct ParseError: Error, CustomStringConvertible {
        public var description: String
    }

    /// Study keys of older files that are `gradflow train` flags now.
    static let formerKeys = [
        "preset": "--preset", "layers": "--layers", "heads": "--heads", "dim": "--dim", "context": "--context",
        "batch": "--batch", "steps": "--steps", "warmup": "--warmup", "threads": "--threads", "lr": "--lr",
        "eval_every": "--eval-every", "eval_windows": "--eval-windows", "on_divergence": "--on-divergence",
    ]

    /// Parses the text of a study file; `origin` names it in errors.
    public init(text: String, origin: String) throws {
        self.init()
        var sawArm = false, sawData = false
        var trainLines: [(line: Int, flags: [String])] = []
        var armLines: [(line: Int, name: String, flags: String)] = []
        var primaryLine = 0
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
            case "train":
                let flags = Self.tokens(value)
                if let problem = Self.refusal(flags, inArm: false) { throw fail(problem) }
                do { _ = try RunOptions.recipe(parsing: flags) } catch { throw fail("train: \(error)") }
                trainLines.append((i + 1, flags))
            case "synthetic_windows": syntheticWindows = try int()
            case "eval_spread":
                guard let v = Bool(value) else { throw fail("eval_spread expects true or false (got '\(value)')") }
                spreadEvalWindows = v
            case "baseline": baseline = value
            case "primary":
                primary = value
                primaryLine = i + 1
            case "seeds":
                let s = value.split(separator: ",").map { UInt64($0.trimmingCharacters(in: .whitespaces)) }
                guard !s.isEmpty, s.allSatisfy({ $0 != nil }) else { throw fail("seeds expects a list like 1,2,3 (got '\(value)')") }
                seeds = s.map { $0! }
            case "data":
                let spec = try Self.dataSpec(words, value, fail: fail)
                if !sawData { data = []; sawData = true }
                guard !data.contains(where: { $0.name == spec.name }) else { throw fail("data set '\(spec.name)' is defined twice") }
                data.append(spec)
            case "finetune":
                fineTune = try Self.fineTuneSpec(words, value, fail: fail)
            case "arm":
                guard words.count == 2 else { throw fail("expected 'arm NAME = FLAGS'") }
                if !sawArm { armLines = []; sawArm = true }
                guard !armLines.contains(where: { $0.name == words[1] }) else { throw fail("arm '\(words[1])' is defined twice") }
                armLines.append((i + 1, words[1], value))
            case "eval":
                throw fail("a validation domain is gradflow train's flag now: write 'train = --eval-data \(words.dropFirst().first ?? "NAME")=\(value)'")
            case let k where Self.formerKeys[k] != nil:
                throw fail("'\(k)' is gradflow train's flag now: write 'train = \(Self.formerKeys[k]!) \(value)'")
            default:
                if key.hasPrefix("arms.") {
                    armsForData[String(key.dropFirst(5))] = value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
                } else {
                    throw fail("unknown key '\(key)'")
                }
            }
        }
        trainFlags = trainLines.flatMap(\.flags)
        do {
            recipe = try RunOptions.recipe(parsing: Self.defaultFlags + trainFlags)
            evalDomains = try recipe.evalDomainPaths().map { NamedPath(name: $0.name, path: $0.path) }
        } catch {
            throw ParseError(description: "\(origin):\(trainLines.last?.line ?? 0): train: \(error)")
        }
        arms = try armLines.map { a in
            do { return try arm(a.name, flags: a.flags) } catch { throw ParseError(description: "\(origin):\(a.line): \(error)") }
        }
        if let e = validationError() { throw ParseError(description: "\(origin)\(primaryLine > 0 && e.hasPrefix("primary") ? ":\(primaryLine)" : ""): \(e)") }
    }

    /// The flags of a line, split at blanks.
    static func tokens(_ text: String) -> [String] {
        text.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
    }

    /// Why `flags` cannot be in a study (or in an arm), or nil.
    static func refusal(_ flags: [String], inArm: Bool) -> String? {
        for token in flags where token.hasPrefix("--") {
            let flag = String(token.prefix { $0 != "=" })
            if flag == "--init-seed" { return "--init-seed is gradflow train's --seed now (the study's seed still sets --data-seed)" }
            if let reason = refusedFlags[flag] { return "\(flag) is not a study setting: \(reason)" }
            if inArm && sharedFlags.contains(flag) {
                return "\(flag) is the same for every arm (the model, the token budget and the validation): set it on a 'train =' line"
            }
        }
        return nil
    }

    /// The arm `NAME = FLAGS`, with its recipe at each seed, checked.
    func arm(_ name: String, flags text: String) throws -> Arm {
        func fail(_ m: String) -> ParseError { ParseError(description: "arm \(name): \(m)") }
        let flags = Self.tokens(text)
        if let problem = Self.refusal(flags, inArm: true) { throw fail(problem) }
        let recipes = try seeds.map { seed in
            let args = Self.defaultFlags + ["--seed", String(seed), "--data-seed", String(seed)] + trainFlags + flags
            do {
                let r = try RunOptions.recipe(parsing: args)
                _ = try r.trainingConfig()
                _ = try r.refinementConfig()
                return r
            } catch {
                throw fail("\(error)")
            }
        }
        return Arm(name: name, flags: text, recipes: recipes)
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

    /// Reads and parses a study file.
    public init(path: String) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ParseError(description: "\(path): no such study file")
        }
        guard !isDirectory.boolValue else { throw ParseError(description: "\(path): is a folder, not a study file") }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ParseError(description: "\(path): cannot be read (check permissions)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ParseError(description: "\(path): is not UTF-8 text, so not a study file")
        }
        try self.init(text: text, origin: path)
    }

    /// Problems with the whole study, or nil.
    public func validationError() -> String? {
        if data.isEmpty { return "no data set; add a line 'data NAME = PATH'" }
        if arms.isEmpty { return "no arm; add a line 'arm baseline ='" }
        if !arms.contains(where: { $0.name == baseline }) { return "the baseline arm '\(baseline)' is not defined" }
        if let primary, !evalDomains.contains(where: { $0.name == primary }) { return "primary = \(primary) names no --eval-data domain" }
        for (d, names) in armsForData {
            guard data.contains(where: { $0.name == d }) else { return "arms.\(d) names no data set" }
            for n in names where !arms.contains(where: { $0.name == n }) { return "arms.\(d): no arm called '\(n)'" }
        }
        return nil
    }

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
    /// The run's recipe: the arm's at this seed.
    public var recipe: RunRecipe { arm.recipes[seedIndex] }

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
    train = --layers 2 --heads 2 --dim 32 --context 64 --batch 4
    train = --steps 60 --lr 3e-3 --eval-every 20 --eval-windows 8
    seeds = 1,2
    synthetic_windows = 64
    data text = embedded
    data recall = synthetic:recall
    arm baseline =
    arm all-adaptive = --adaptive all
    arm grokfast = --grokfast 0.98,2
    arms.recall = baseline, all-adaptive
    """
}
