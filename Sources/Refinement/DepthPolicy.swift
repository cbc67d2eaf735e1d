// The depth axis' adaptive policy (docs/ARCHITECTURE.md §7.4): equalise how fast each group of layers moves.

/// Adaptive depth multipliers φ_k from each group's relative update ‖Δθ_k‖ / ‖θ_k‖.
///
/// The policy tracks r̄_k, an EMA (ρ) of the relative update the optimizer would have made without
/// the multiplier (the measured update divided by the φ_k applied that step; AdamW's update,
/// weight decay included, scales exactly with φ_k). Then φ_k = clip((r* / r̄_k)^γ, 0.5, 2) with r*
/// the geometric mean of the r̄_k: slow groups speed up, fast ones slow down. Because r̄ excludes
/// φ, the map is open-loop and does not chase its own output. γ is 0 during warm-up, then ramps.
public struct DepthPolicy: Equatable, Sendable, Codable {
    public struct Parameters: Equatable, Sendable, Codable {
        public var rho = 0.95
        public var gamma = 0.5
        public var schedule = WarmupRamp.policyDefault

        public init() {}
    }

    public let parameters: Parameters
    /// EMA of each group's relative update without the multiplier; nil until first measured.
    public private(set) var meanRatios: [Double?]

    public init(groups: Int, parameters: Parameters = Parameters()) {
        self.parameters = parameters
        meanRatios = Array(repeating: nil, count: groups)
    }

    /// Folds in one step's per-group ‖Δθ_k‖ (the update actually applied), ‖θ_k‖ and the φ_k in
    /// force, and returns φ for the next step (always within [0.5, 2]).
    public mutating func update(updateNorms: [Double], parameterNorms: [Double], appliedWeights: [Double], step: Int) -> [Double] {
        let rho = parameters.rho
        for group in meanRatios.indices where group < updateNorms.count && group < parameterNorms.count && group < appliedWeights.count {
            let applied = appliedWeights[group], norm = parameterNorms[group]
            guard applied > 0, norm > 0 else { continue }
            let ratio = updateNorms[group] / applied / norm
            guard ratio > 0, ratio.isFinite else { continue }
            meanRatios[group] = meanRatios[group].map { rho * $0 + (1 - rho) * ratio } ?? ratio
        }
        let gamma = parameters.gamma * parameters.schedule.strength(afterStep: step)
        return Self.weights(meanRatios: meanRatios, gamma: gamma)
    }

    /// φ_k = clip((r* / r̄_k)^γ, 0.5, 2), r* the geometric mean of the known r̄_k; groups not yet
    /// measured get 1.
    public static func weights(meanRatios: [Double?], gamma: Double) -> [Double] {
        let known = meanRatios.compactMap { $0 }.filter { $0 > 0 }
        guard gamma > 0, !known.isEmpty else { return meanRatios.map { _ in 1 } }
        let target = exponential(known.reduce(0) { $0 + logarithm($1) } / Double(known.count))
        return meanRatios.map { ratio in
            guard let ratio, ratio > 0 else { return 1 }
            return AxisBounds.depthAdaptive.clamp(power(target / ratio, gamma))
        }
    }
}
