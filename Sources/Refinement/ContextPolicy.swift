// The context axis' adaptive policy (docs/ARCHITECTURE.md §7.4): pull each layer's shares of gradient energy
// per distance band toward target shares.

/// Adaptive context weights from the per-layer, per-band energies e[ℓ][b] = Σ (P ⊙ dP)².
///
/// Per layer, the shares s_b are an EMA (ρ) of e_b / Σe. With the target shares π_b,
/// r_b = (π_b / s_b)^γ and w_b = clip(r_b / sqrt(Σ_b s_b r_b²), 0.5, 4): the normalisation keeps
/// the weighted energy Σ s_b w_b² at 1, so the policy moves energy between bands rather than
/// scaling it all. γ is 0 during warm-up (weights 1) and then ramps linearly to its full value.
///
/// Targets: unless set explicitly, π is measured when warm-up ends, as the mean over layers of the
/// shares then, tilted toward the longer bands by (1 + tilt · b / (K − 1)) and renormalised. The
/// policy therefore starts close to weights 1 and holds the long band's share a little above where
/// training put it, instead of forcing a fixed split; `setTarget` overrides it.
public struct ContextPolicy: Equatable, Sendable, Codable {
    public struct Parameters: Equatable, Sendable, Codable {
        /// EMA coefficient of the shares.
        public var rho = 0.99
        /// Full exponent γ after the ramp.
        public var gamma = 0.5
        public var schedule = WarmupRamp.policyDefault
        /// Tilt of the measured targets toward the longer bands (0: hold the measured shares).
        public var targetTilt = 0.5

        public init() {}
    }

    public let parameters: Parameters
    public let layers: Int
    public let bands: Int
    /// EMA shares [layer][band]; a layer's row is meaningful once it has seen energy.
    public private(set) var shares: [[Double]]
    private var layerStarted: [Bool]
    /// Target shares π_b (sum 1, each in (0, 1)); nil until measured at the end of warm-up or set.
    public private(set) var targets: [Double]?

    public init(layers: Int, bands: Int, parameters: Parameters = Parameters(), targets: [Double]? = nil) {
        self.parameters = parameters
        self.layers = layers
        self.bands = bands
        shares = Array(repeating: Array(repeating: 1 / Double(max(bands, 1)), count: bands), count: layers)
        layerStarted = Array(repeating: false, count: layers)
        self.targets = targets.flatMap { try? Self.normalisedTargets($0, bands: bands) }
    }

    /// Folds in the energies of `step` ([layer][band]) and returns the weights for the next step
    /// ([layer][band], always within [0.5, 4]). Layers whose energy is zero or not finite keep
    /// their shares.
    public mutating func update(energy: [[Double]], step: Int) -> [[Double]] {
        let rho = parameters.rho
        for layer in 0..<min(layers, energy.count) where energy[layer].count == bands {
            let total = energy[layer].reduce(0, +)
            guard total > 0, total.isFinite else { continue }
            for band in 0..<bands {
                let share = energy[layer][band] / total
                shares[layer][band] = layerStarted[layer] ? rho * shares[layer][band] + (1 - rho) * share : share
            }
            layerStarted[layer] = true
        }
        let ones = Array(repeating: Array(repeating: 1.0, count: bands), count: layers)
        guard parameters.schedule.isWarm(afterStep: step) else { return ones }
        if targets == nil, let measured = measuredTargets() { targets = measured }
        let gamma = parameters.gamma * parameters.schedule.strength(afterStep: step)
        guard gamma > 0, let targets else { return ones }
        return (0..<layers).map { layer in
            layerStarted[layer] ? Self.weights(shares: shares[layer], targets: targets, gamma: gamma) : ones[layer]
        }
    }

    /// w_b = clip(r_b / sqrt(Σ s_b r_b²), 0.5, 4), r_b = (π_b / s_b)^γ, for one layer.
    public static func weights(shares: [Double], targets: [Double], gamma: Double) -> [Double] {
        let bounds = AxisBounds.contextAdaptive
        let safeShares = shares.map { max($0, 1e-9) }
        let ratios = zip(targets, safeShares).map { power($0 / $1, gamma) }
        var weighted = 0.0
        for (share, ratio) in zip(safeShares, ratios) { weighted += share * ratio * ratio }
        let norm = weighted.squareRoot()
        guard norm > 0, norm.isFinite else { return shares.map { _ in 1 } }
        return ratios.map { bounds.clamp($0 / norm) }
    }

    /// The mean shares over the layers that have seen energy, tilted toward the longer bands.
    public func measuredTargets() -> [Double]? {
        let started = (0..<layers).filter { layerStarted[$0] }
        guard !started.isEmpty else { return nil }
        let tilted = (0..<bands).map { band -> Double in
            let mean = started.reduce(0) { $0 + shares[$1][band] } / Double(started.count)
            let tilt = bands > 1 ? 1 + parameters.targetTilt * Double(band) / Double(bands - 1) : 1
            return max(mean, 1e-3) * tilt
        }
        return try? Self.normalisedTargets(tilted, bands: bands)
    }

    /// Sets the target share of one band; the other bands' targets are rescaled so that all sum
    /// to 1. Returns the old share, or why the change was refused (unknown band, a share outside
    /// (0, 1), a single band).
    public mutating func setTarget(band: Int, share: Double) -> Result<Double, RefusalReason> {
        guard band >= 0 && band < bands else {
            return .failure(RefusalReason("context has \(bands) bands (0–\(bands - 1)); there is no band \(band)"))
        }
        guard bands > 1 else {
            return .failure(RefusalReason("context has a single band; its target share is always 1"))
        }
        guard share.isFinite, share > 0, share < 1 else {
            return .failure(RefusalReason("a target share must be strictly between 0 and 1, got \(share)"))
        }
        let current = targets ?? measuredTargets() ?? Array(repeating: 1 / Double(bands), count: bands)
        let old = current[band]
        let others = current.enumerated().filter { $0.offset != band }.reduce(0) { $0 + $1.element }
        var next = current.enumerated().map { index, value -> Double in
            index == band ? share : (others > 0 ? value * (1 - share) / others : (1 - share) / Double(bands - 1))
        }
        if next.contains(where: { $0 <= 0 }) {
            next = next.map { max($0, 1e-6) }
        }
        targets = try? Self.normalisedTargets(next, bands: bands)
        return .success(old)
    }

    static func normalisedTargets(_ values: [Double], bands: Int) throws -> [Double] {
        guard values.count == bands else {
            throw RefinementError("context targets: expected \(bands) shares (one per band), got \(values.count)")
        }
        guard values.allSatisfy({ $0.isFinite && $0 > 0 }) else {
            throw RefinementError("context targets: every share must be a positive number, got \(values.map { formatNumber($0) })")
        }
        let total = values.reduce(0, +)
        return values.map { $0 / total }
    }
}
