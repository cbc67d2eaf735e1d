// The refinement flags of `gradflow train` and their parsing. Every error names the flag and says
// what was expected. Checks that need the model (band count at the default edges, T, layers) run
// in `RefinementConfig.resolve(window:layers:)`.

/// The raw values of the refinement flags, as the command line gave them (nil: flag absent).
public struct RefinementFlags: Equatable, Sendable {
    /// `--context-bands 8,64`: upper inclusive edge of every distance band but the last.
    public var contextBands: String?
    /// `--context-weights 1,1,2`: one weight per context band (every layer).
    public var contextWeights: String?
    /// `--time-weights 0.5,1,2`: w_H, w_M, w_L.
    public var timeWeights: String?
    /// `--time-betas 0.9,0.99`: β_f, β_s of the fast and slow gradient EMAs.
    public var timeBetas: String?
    /// `--depth-groups 3`: number of depth groups.
    public var depthGroups: String?
    /// `--depth-weights 1,1,1`: one learning-rate multiplier per depth group.
    public var depthWeights: String?
    /// `--adaptive context,time,depth` or `all`: axes driven by their adaptive policy.
    public var adaptive: String?
    /// `--grokfast ALPHA,LAMBDA`: Grokfast-EMA on the time axis (β_f = β_s = α, w_L = 1 + λ).
    public var grokfast: String?
    /// `--time-lambda 0.5`: the adaptive time policy's final low-band boost (w_L ramps to 1 + λ).
    public var timeLambda: String?
    /// `--policy-warmup 50`: steps the adaptive context and depth policies hold their weights at 1
    /// (and then ramp in over as many).
    public var policyWarmup: String?

    public init(
        contextBands: String? = nil, contextWeights: String? = nil, timeWeights: String? = nil,
        timeBetas: String? = nil, depthGroups: String? = nil, depthWeights: String? = nil,
        adaptive: String? = nil, grokfast: String? = nil, timeLambda: String? = nil, policyWarmup: String? = nil
    ) {
        self.contextBands = contextBands
        self.contextWeights = contextWeights
        self.timeWeights = timeWeights
        self.timeBetas = timeBetas
        self.depthGroups = depthGroups
        self.depthWeights = depthWeights
        self.adaptive = adaptive
        self.grokfast = grokfast
        self.timeLambda = timeLambda
        self.policyWarmup = policyWarmup
    }

    /// One refinement flag: its name, where its value goes and its help line.
    public struct Flag: Sendable {
        /// "--context-weights".
        public let name: String
        public let value: WritableKeyPath<RefinementFlags, String?> & Sendable
        /// One line for `--help` (ranges come from `AxisBounds`).
        public let help: String
    }

    /// Every refinement flag, in the order `--help` lists them: its name, its field and its help
    /// line. `RefinementOptions` (RunFlags), the one parser of these flags for `train`, studies and
    /// `bench`, reads its help lines from here.
    public static let table: [Flag] = [
        Flag(name: "--context-bands", value: \.contextBands,
             help: "Context band edges on attention distance, e.g. 8,64 (local 0–8, phrase 9–64, long 65–T−1; the default)."),
        Flag(name: "--context-weights", value: \.contextWeights,
             help: "Context weight per band, e.g. 1,1,2 (range \(AxisBounds.manual(.context).dashText)); makes the context axis manual."),
        Flag(name: "--time-weights", value: \.timeWeights,
             help: "Time weights w_H,w_M,w_L of the high, mid and low gradient bands, e.g. 0.5,1,2 (range \(AxisBounds.manual(.time).dashText))."),
        Flag(name: "--time-betas", value: \.timeBetas, help: "Fast and slow gradient EMA betas, default 0.9,0.99."),
        Flag(name: "--depth-groups", value: \.depthGroups,
             help: "Number of depth groups of layers (default 3, or one per layer below 3: lower, middle, upper)."),
        Flag(name: "--depth-weights", value: \.depthWeights,
             help: "Learning-rate multiplier per depth group, e.g. 1,1,1 (range \(AxisBounds.manual(.depth).dashText)); makes the depth axis manual."),
        Flag(name: "--adaptive", value: \.adaptive, help: "Axes driven by their adaptive policy: a list of context, time, depth, or all."),
        Flag(name: "--grokfast", value: \.grokfast, help: "Grokfast-EMA shorthand ALPHA,LAMBDA, e.g. 0.98,2: time betas α,α and weights 1,1,1+λ."),
        Flag(name: "--time-lambda", value: \.timeLambda,
             help: "Low-band boost of the adaptive time policy: w_L ramps from 1 to 1+λ over the first 10 % of steps (default 0, range 0–\(formatNumber(AxisBounds.timeLowAdaptive.ceiling - 1)))."),
        Flag(name: "--policy-warmup", value: \.policyWarmup,
             help: "Steps the adaptive context and depth policies hold their weights at 1 before ramping in over as many steps (default \(WarmupRamp.policyDefault.warmupSteps)); their targets are the shares measured when it ends."),
    ]

    /// The table entry of a flag ("--adaptive"), or nil for a flag that is not a refinement flag.
    public static func flag(named name: String) -> Flag? { table.first { $0.name == name } }

    /// The help line of one flag (for the command line's `--help`).
    public static func help(for flag: String) -> String { self.flag(named: flag)?.help ?? "" }

    /// The flags that are set, as "--name value" pairs in table order (for keys and descriptions).
    public var given: [(name: String, value: String)] {
        Self.table.compactMap { f in self[keyPath: f.value].map { (f.name, $0) } }
    }
}

extension RefinementConfig {
    /// Parses the refinement flags. No flag at all gives every axis off.
    /// - Throws: `RefinementError` whose message starts with the flag and says what was expected.
    public init(flags: RefinementFlags) throws {
        self.init()
        try applyShape(flags)
        try applyWeights(flags)
        if let text = flags.adaptive {
            adaptive = try Self.parseAxes(text)
        }
        if let text = flags.grokfast { try applyGrokfast(text, flags) }
        try applyPolicies(flags)
        if flags.timeBetas != nil && mode(.time) == .off {
            throw RefinementError(
                "--time-betas: the time axis is off, so the betas would have no effect; add --time-weights or --adaptive time")
        }
    }

    /// `--context-bands` and `--depth-groups`: the bands the weights are counted against.
    private mutating func applyShape(_ flags: RefinementFlags) throws {
        if let text = flags.contextBands {
            let edges = try parseIntegers(text, flag: "--context-bands", example: "8,64")
            do { try ContextBands.checkOrder(edges) } catch let e as RefinementError {
                throw RefinementError("--context-bands: " + e.message)
            }
            contextEdges = edges
        }
        if let text = flags.depthGroups {
            guard let groups = Int(text.trimmingSpaces), groups >= 1 else {
                throw RefinementError("--depth-groups: expected a whole number ≥ 1 (e.g. 3), got \"\(text)\"")
            }
            depthGroups = groups
        }
    }

    /// Manual weights and the time betas: `--context-weights`, `--time-weights`, `--time-betas`,
    /// `--depth-weights`.
    private mutating func applyWeights(_ flags: RefinementFlags) throws {
        if let text = flags.contextWeights {
            let values = try parseWeights(text, flag: "--context-weights", axis: .context, example: "1,1,2")
            if let edges = contextEdges, values.count != edges.count + 1 {
                throw RefinementError(
                    "--context-weights: expected \(edges.count + 1) weights, one per band of --context-bands \(edges.map(String.init).joined(separator: ",")), got \(values.count)")
            }
            // Without --context-bands the default bands depend on the model's window (T = 32 has
            // two): `resolve` checks the count against them.
            contextWeights = values
        }
        if let text = flags.timeWeights {
            let values = try parseWeights(text, flag: "--time-weights", axis: .time, example: "0.5,1,2")
            guard values.count == 3 else {
                throw RefinementError("--time-weights: expected 3 weights (w_H, w_M, w_L for the high, mid and low bands), got \(values.count)")
            }
            timeWeights = TimeWeights(high: values[0], mid: values[1], low: values[2])
        }
        if let text = flags.timeBetas {
            let values = try parseNumbers(text, flag: "--time-betas", example: "0.9,0.99")
            guard values.count == 2 else {
                throw RefinementError("--time-betas: expected 2 betas (fast, slow), got \(values.count)")
            }
            try Self.checkBetas(fast: values[0], slow: values[1], flag: "--time-betas")
            timeBetaFast = values[0]
            timeBetaSlow = values[1]
        }
        if let text = flags.depthWeights {
            let values = try parseWeights(text, flag: "--depth-weights", axis: .depth, example: "1,1,1")
            // Without --depth-groups the count is checked against the model in `resolve`
            // (the default is min(3, layers)).
            if let groups = depthGroups, values.count != groups {
                throw RefinementError("--depth-weights: expected \(groups) weights, one per group of --depth-groups \(groups), got \(values.count)")
            }
            depthWeights = values
        }
    }

    /// `--grokfast ALPHA,LAMBDA`: the time axis' betas and weights (after `--adaptive`).
    private mutating func applyGrokfast(_ text: String, _ flags: RefinementFlags) throws {
        for (other, given) in [("--time-weights", flags.timeWeights), ("--time-betas", flags.timeBetas)] where given != nil {
            throw RefinementError("--grokfast: sets the time betas and weights itself; it cannot be combined with \(other)")
        }
        if adaptive.contains(.time) {
            throw RefinementError("--grokfast: makes the time axis manual; it cannot be combined with --adaptive time (or all)")
        }
        let values = try parseNumbers(text, flag: "--grokfast", example: "0.98,2")
        guard values.count == 2 else {
            throw RefinementError("--grokfast: expected ALPHA,LAMBDA (2 numbers, e.g. 0.98,2), got \(values.count)")
        }
        let (alpha, lambda) = (values[0], values[1])
        guard alpha >= 0 && alpha < 1 else {
            throw RefinementError("--grokfast: ALPHA is an EMA coefficient and must be in [0, 1), got \(formatNumber(alpha))")
        }
        let low = 1 + lambda
        guard AxisBounds.timeManual.contains(low) else {
            throw RefinementError(
                "--grokfast: LAMBDA \(formatNumber(lambda)) gives w_L = 1 + λ = \(formatNumber(low)), outside the time weights' range \(AxisBounds.timeManual.text); LAMBDA must be in [−1, 5]")
        }
        timeBetaFast = alpha
        timeBetaSlow = alpha
        timeWeights = TimeWeights(high: 1, mid: 1, low: low)
        grokfast = Grokfast(alpha: alpha, lambda: lambda)
    }

    /// The adaptive policies' settings: `--time-lambda`, `--policy-warmup` (after `--adaptive`).
    private mutating func applyPolicies(_ flags: RefinementFlags) throws {
        if let text = flags.timeLambda {
            guard adaptive.contains(.time) else {
                throw RefinementError("--time-lambda: sets the adaptive time policy; add --adaptive time (or all)")
            }
            let values = try parseNumbers(text, flag: "--time-lambda", example: "0.5")
            let range = AxisBounds.timeLowAdaptive
            guard values.count == 1, range.contains(1 + values[0]) else {
                throw RefinementError(
                    "--time-lambda: expected one number λ with 1 + λ in the adaptive low band's range \(range.text) (λ from 0 to 3), got \"\(text)\"")
            }
            timeLambda = values[0]
        }
        if let text = flags.policyWarmup {
            guard adaptive.contains(.context) || adaptive.contains(.depth) else {
                throw RefinementError("--policy-warmup: sets the adaptive context and depth policies; add --adaptive context, depth (or all)")
            }
            guard let steps = Int(text.trimmingSpaces), steps >= 0 else {
                throw RefinementError("--policy-warmup: expected a whole number of steps ≥ 0 (e.g. 50), got \"\(text)\"")
            }
            policyWarmup = steps
        }
    }

    /// Checks a pair of EMA betas: each in [0, 1), fast ≤ slow.
    static func checkBetas(fast: Double, slow: Double, flag: String) throws {
        for (name, beta) in [("fast", fast), ("slow", slow)] where !(beta >= 0 && beta < 1) {
            throw RefinementError("\(flag): the \(name) beta must be in [0, 1), got \(formatNumber(beta))")
        }
        guard fast <= slow else {
            throw RefinementError("\(flag): the fast beta (\(formatNumber(fast))) must not exceed the slow beta (\(formatNumber(slow)))")
        }
    }

    /// "context,time", "depth", "all" → the set of axes.
    static func parseAxes(_ text: String) throws -> Set<ScaleAxis> {
        let items = try splitList(text, flag: "--adaptive", example: "context,time or all")
        var axes = Set<ScaleAxis>()
        for item in items {
            if item.lowercased() == "all" {
                axes.formUnion(ScaleAxis.allCases)
            } else if let axis = ScaleAxis(rawValue: item.lowercased()) {
                axes.insert(axis)
            } else {
                throw RefinementError("--adaptive: unknown axis \"\(item)\"; expected context, time, depth or all")
            }
        }
        return axes
    }
}

// MARK: - List parsing

private func splitList(_ text: String, flag: String, example: String) throws -> [String] {
    let items = text.split(separator: ",", omittingEmptySubsequences: false).map { String($0).trimmingSpaces }
    if let empty = items.firstIndex(of: "") {
        throw RefinementError(
            "\(flag): item \(empty + 1) of \"\(text)\" is empty; expected a comma-separated list like \(example)")
    }
    return items
}

private func parseNumbers(_ text: String, flag: String, example: String) throws -> [Double] {
    try splitList(text, flag: flag, example: example).enumerated().map { index, item in
        guard let value = Double(item), value.isFinite else {
            throw RefinementError("\(flag): item \(index + 1) (\"\(item)\") is not a finite number; expected a list like \(example)")
        }
        return value
    }
}

private func parseIntegers(_ text: String, flag: String, example: String) throws -> [Int] {
    try splitList(text, flag: flag, example: example).enumerated().map { index, item in
        guard let value = Int(item) else {
            throw RefinementError("\(flag): item \(index + 1) (\"\(item)\") is not a whole number; expected a list like \(example)")
        }
        return value
    }
}

private func parseWeights(_ text: String, flag: String, axis: ScaleAxis, example: String) throws -> [Double] {
    let values = try parseNumbers(text, flag: flag, example: example)
    let range = AxisBounds.manual(axis)
    for (index, value) in values.enumerated() where !range.contains(value) {
        throw RefinementError(
            "\(flag): weight \(index + 1) (\(formatNumber(value))) is outside the \(axis.rawValue) range \(range.text)")
    }
    return values
}

extension String {
    /// The string without leading and trailing spaces and tabs (no Foundation here).
    var trimmingSpaces: String {
        var slice = Substring(self)
        while let first = slice.first, first == " " || first == "\t" { slice.removeFirst() }
        while let last = slice.last, last == " " || last == "\t" { slice.removeLast() }
        return String(slice)
    }
}
