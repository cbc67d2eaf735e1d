// What the refinement flags ask for, before it is fitted to a model (see RefinementConfig+Parsing
// for the flags and RefinementSetup for the model-dependent checks).

/// The refinement a run asks for. The default value turns every axis off: plain training.
///
/// An axis is `adaptive` when listed in `adaptive`, else `manual` when it was given weights
/// (or, for the time axis, `--grokfast`), else `off`.
public struct RefinementConfig: Equatable, Sendable, Codable {
    /// Context band edges; nil for the default edges that fit the window (`ContextBands.standard`).
    public var contextEdges: [Int]?
    /// One context weight per band, applied to every layer; nil when not given.
    public var contextWeights: [Double]?
    public var timeWeights: TimeWeights?
    public var timeBetaFast = 0.9
    public var timeBetaSlow = 0.99
    /// Number of depth groups; nil for the default, min(3, layers).
    public var depthGroups: Int?
    /// One depth multiplier per group; nil when not given.
    public var depthWeights: [Double]?
    public var adaptive: Set<ScaleAxis> = []
    /// The `--grokfast ALPHA,LAMBDA` shorthand, when used (already turned into betas and weights).
    public var grokfast: Grokfast?
    /// The adaptive time policy's λ (nil: `TimePolicy.Parameters`' default).
    public var timeLambda: Double?
    /// Warm-up (and ramp) steps of the adaptive context and depth policies (nil: the default,
    /// `WarmupRamp.policyDefault`).
    public var policyWarmup: Int?

    /// The warm-up and ramp of the adaptive context and depth policies.
    public var policySchedule: WarmupRamp {
        policyWarmup.map { WarmupRamp(warmupSteps: $0, rampSteps: $0) } ?? .policyDefault
    }

    /// Grokfast-EMA's parameters: EMA coefficient α and amplification λ.
    public struct Grokfast: Equatable, Sendable, Codable {
        public var alpha: Double
        public var lambda: Double

        public init(alpha: Double, lambda: Double) {
            self.alpha = alpha
            self.lambda = lambda
        }
    }

    /// Every axis off.
    public init() {}

    /// The mode an axis starts in.
    public func mode(_ axis: ScaleAxis) -> AxisMode {
        if adaptive.contains(axis) { return .adaptive }
        switch axis {
        case .context: return contextWeights == nil ? .off : .manual
        case .time: return timeWeights == nil ? .off : .manual
        case .depth: return depthWeights == nil ? .off : .manual
        }
    }

    /// True when every axis is off (the trainer must then reproduce plain backprop + AdamW).
    public var isPlain: Bool { ScaleAxis.allCases.allSatisfy { mode($0) == .off } }

    /// Fits the config to a model with attention window `window` (T) and `layers` blocks.
    /// - Throws: `RefinementError` naming the flag, e.g. an edge ≥ T − 1 or a weight count that
    ///   does not match the bands.
    public func resolve(window: Int, layers: Int) throws -> RefinementSetup {
        try RefinementSetup(config: self, window: window, layers: layers)
    }
}

/// A `RefinementConfig` fitted to one model: the bands and groups it uses, the initial weights,
/// and the description of the axes for the run header.
public struct RefinementSetup: Equatable, Sendable {
    public let config: RefinementConfig
    public let contextBands: ContextBands
    public let layers: Int
    public let depthGroupCount: Int

    public init(config: RefinementConfig, window: Int, layers: Int) throws {
        let bands: ContextBands
        if let edges = config.contextEdges {
            do {
                bands = try ContextBands(edges: edges, window: window)
            } catch let error as RefinementError {
                let prefix = "context bands: "
                let reason = error.message.hasPrefix(prefix) ? String(error.message.dropFirst(prefix.count)) : error.message
                throw RefinementError("--context-bands: \(reason) (the model's window is T = \(window))")
            }
        } else {
            bands = ContextBands.standard(window: window)
        }
        if let weights = config.contextWeights, weights.count != bands.count {
            let which = config.contextEdges == nil ? "default bands at T = \(window)" : "bands of --context-bands"
            throw RefinementError(
                "--context-weights: expected \(bands.count) weights, one per band (\(bands.names.joined(separator: ", ")), the \(which)), got \(weights.count)")
        }
        let groups = config.depthGroups ?? DepthGroups.defaultGroups(layers: layers)
        do {
            try DepthGroups.validate(layers: layers, groups: groups)
        } catch let error as RefinementError {
            throw RefinementError(config.depthGroups == nil ? error.message : "--depth-groups: \(error.message)")
        }
        if let weights = config.depthWeights, weights.count != groups {
            let which = config.depthGroups == nil ? "the default for \(layers) layers" : "--depth-groups \(groups)"
            throw RefinementError(
                "--depth-weights: expected \(groups) weights, one per depth group (\(which)), got \(weights.count)")
        }
        self.config = config
        self.contextBands = bands
        self.layers = layers
        self.depthGroupCount = groups
    }

    /// The weights and modes the run starts with: given weights where given, 1 elsewhere.
    public func initialWeights() -> ScaleWeights {
        var weights = ScaleWeights(layers: layers, contextBands: contextBands, depthGroups: depthGroupCount)
        // Values were range-checked when the flags were parsed; `set` checks them again.
        for (band, value) in (config.contextWeights ?? []).enumerated() { _ = weights.set(.context, band: band, to: value) }
        for (band, value) in (config.timeWeights?.values ?? []).enumerated() { _ = weights.set(.time, band: band, to: value) }
        for (band, value) in (config.depthWeights ?? []).enumerated() { _ = weights.set(.depth, band: band, to: value) }
        for axis in ScaleAxis.allCases { weights.setMode(axis, config.mode(axis)) }
        return weights
    }

    /// The depth group of every tensor (layer −1 embeddings … `layers` final norm).
    public func depthGroups(tensorLayers: [Int]) throws -> [Int] {
        try DepthGroups.assign(tensorLayers: tensorLayers, layers: layers, groups: depthGroupCount)
    }

    /// The axes as the run header describes them, in the order context, time, depth.
    public func axisDescriptions() -> [AxisDescription] {
        let context = AxisDescription(
            axis: .context, mode: config.mode(.context),
            bands: zip(contextBands.names, contextBands.extents).map { name, extent in
                BandDescription(name: name, extent: extent, adaptive: AxisBounds.contextAdaptive, manual: AxisBounds.contextManual)
            },
            edges: contextBands.edges.map(Double.init))
        let betas = [config.timeBetaFast, config.timeBetaSlow]
        let timeExtents = ["β \(formatBeta(betas[0]))", "β \(formatBeta(betas[1]))", "m_s"]
        let time = AxisDescription(
            axis: .time, mode: config.mode(.time),
            bands: (0..<3).map { band in
                BandDescription(
                    name: ScaleWeights.timeBandNames[band], extent: timeExtents[band],
                    adaptive: AxisBounds.adaptive(.time, band: band), manual: AxisBounds.timeManual)
            },
            edges: betas)
        let extents = (try? DepthGroups.extents(layers: layers, groups: depthGroupCount)) ?? []
        let firstLayers = (try? DepthGroups.firstLayers(layers: layers, groups: depthGroupCount)) ?? [0]
        let depth = AxisDescription(
            axis: .depth, mode: config.mode(.depth),
            bands: zip(DepthGroups.names(groups: depthGroupCount), extents).map { name, extent in
                BandDescription(name: name, extent: extent, adaptive: AxisBounds.depthAdaptive, manual: AxisBounds.depthManual)
            },
            edges: firstLayers.dropFirst().map(Double.init))
        return [context, time, depth]
    }
}

/// One axis as the run header shows it (the lead maps it to Telemetry's `AxisInfo`).
public struct AxisDescription: Equatable, Sendable {
    public var axis: ScaleAxis
    public var mode: AxisMode
    public var bands: [BandDescription]
    /// Context: the band edges. Time: β_f, β_s. Depth: the first layer of every group but the first.
    public var edges: [Double]
}

/// One band as the run header shows it.
public struct BandDescription: Equatable, Sendable {
    /// "local", "high", "lower", …
    public var name: String
    /// "0–8", "β .90", "L0–1", …
    public var extent: String
    /// The range an adaptive policy keeps the weight in.
    public var adaptive: WeightBounds
    /// The range a manual weight may take (wider; the floor/ceiling a key or flag may set).
    public var manual: WeightBounds
}
