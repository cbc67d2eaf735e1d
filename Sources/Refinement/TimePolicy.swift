// The time axis' adaptive policy (docs/ARCHITECTURE.md §7.4): damp the high band when gradients reverse against
// their momentum, and optionally bring in a Grokfast-like low-band boost (λ > 0) over the first
// part of training.

/// Adaptive time weights from cos(g_t, m_f,t−1), taken over all tensors at once.
///
/// c̄ is an EMA (coefficient `cosineRho`) of the cosine; w_H = clip(1 + κ·min(c̄, 0), 0.25, 1),
/// so the high band is damped only while gradients on average point against their fast EMA;
/// w_M = 1; w_L ramps linearly from 1 to 1 + λ over the first `rampFraction` of the planned steps.
public struct TimePolicy: Equatable, Sendable, Codable {
    public struct Parameters: Equatable, Sendable, Codable {
        public var kappa = 2.0
        /// EMA coefficient of the cosine (0.9: about ten steps of memory, so a reversal is seen fast).
        public var cosineRho = 0.9
        /// Final low-band boost: w_L → 1 + λ (ceiling 4, so λ ≤ 3 takes full effect). Default 0:
        /// in the evaluation (docs/results/time-lambda) any boost cost validation loss at equal tokens
        /// (λ = 0.25: +0.21 bpb, λ = 1: +0.60 bpb on the reduced study's model); λ = 0 gained 0.008.
        public var lambda = 0.0
        /// Fraction of the planned steps over which w_L ramps in.
        public var rampFraction = 0.1

        public init() {}
    }

    public let parameters: Parameters
    public let totalSteps: Int
    /// EMA of cos(g_t, m_f,t−1); nil before the first measurable step.
    public private(set) var meanCosine: Double?

    public init(totalSteps: Int, parameters: Parameters = Parameters()) {
        self.totalSteps = totalSteps
        self.parameters = parameters
    }

    /// Folds in the cosine of `step` (from the summed `TimeBandStats` of all tensors) and returns
    /// the weights for the next step, always within the time axis' adaptive bounds.
    public mutating func update(stats: TimeBandStats, step: Int) -> TimeWeights {
        update(cosine: stats.momentumCosine, step: step)
    }

    /// As `update(stats:step:)`, given the cosine directly (nil: nothing measured this step).
    public mutating func update(cosine: Double?, step: Int) -> TimeWeights {
        if let cosine, cosine.isFinite {
            let rho = parameters.cosineRho
            meanCosine = meanCosine.map { rho * $0 + (1 - rho) * cosine } ?? cosine
        }
        let high = AxisBounds.timeHighAdaptive.clamp(1 + parameters.kappa * min(meanCosine ?? 0, 0))
        let rampSteps = max(1.0, parameters.rampFraction * Double(totalSteps))
        let progress = min(1, Double(step + 1) / rampSteps)
        let low = AxisBounds.timeLowAdaptive.clamp(1 + parameters.lambda * progress)
        return TimeWeights(high: high, mid: 1, low: low)
    }
}
