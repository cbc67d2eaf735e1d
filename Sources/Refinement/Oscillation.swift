import Foundation

// Oscillation statistics per depth group and of the run (docs/ARCHITECTURE.md §7.5).

/// EMAs of one depth group's update sign-flip rate, cos(g_t, g_{t−1}) and cos(Δθ_t, Δθ_{t−1}).
///
/// Each EMA starts at its first observation. A flip rate near 0.5 means successive updates are
/// uncorrelated in sign (noise-dominated); near 1, the parameters bounce back and forth.
public struct OscillationMeter: Equatable, Sendable, Codable {
    /// EMA coefficient (weight of the old value).
    public let rho: Double
    /// EMA of flips / parameters; nil before the first observation.
    public private(set) var flipRate: Double?
    /// EMA of cos(g_t, g_{t−1}); nil before the first observation.
    public private(set) var gradientCosine: Double?
    /// EMA of cos(Δθ_t, Δθ_{t−1}) of the updates AdamW made; nil before the first observation.
    public private(set) var updateCosine: Double?

    public init(rho: Double = 0.9) {
        self.rho = rho
    }

    /// Folds in one step's flip count over `parameters` parameters (ignored when `parameters` is 0).
    public mutating func observeFlips(_ flips: Int, parameters: Int) {
        guard parameters > 0 else { return }
        let rate = Double(flips) / Double(parameters)
        flipRate = flipRate.map { rho * $0 + (1 - rho) * rate } ?? rate
    }

    /// Folds in cos(g_t, g_{t−1}) = dot / sqrt(aa·bb) (ignored when a norm is zero or not finite).
    public mutating func observeGradients(dot: Double, aa: Double, bb: Double) {
        observe(&gradientCosine, dot: dot, aa: aa, bb: bb)
    }

    /// Folds in cos(Δθ_t, Δθ_{t−1}) = dot / sqrt(aa·bb) (ignored when a norm is zero or not finite).
    public mutating func observeUpdates(dot: Double, aa: Double, bb: Double) {
        observe(&updateCosine, dot: dot, aa: aa, bb: bb)
    }

    private func observe(_ ema: inout Double?, dot: Double, aa: Double, bb: Double) {
        let denominator = (aa * bb).squareRoot()
        guard denominator > 0, denominator.isFinite, dot.isFinite else { return }
        let cosine = max(-1, min(1, dot / denominator))
        ema = ema.map { rho * $0 + (1 - rho) * cosine } ?? cosine
    }
}

/// The loss-spike rule of the step statistics, written once: a step's loss L_t is a spike when
/// L_t > 1.2 × the median of the previous 50 losses (counted once 10 are known; a non-finite loss
/// always is). The engine flags steps with it (`SpikeDetector`); the divergence guard's warning
/// (a "loss bump") is such a spike at least 0.5 nat above the median; the dashboard and the docs
/// (METHOD.md §6) state it. Not the divergence guard's rule (median + k
/// median absolute deviations, Training/DivergenceGuard.swift), which rolls a run back.
public enum SpikeRule {
    /// L_t is a spike above `factor` × the median.
    public static let factor = 1.2
    /// Previous losses the median is taken over.
    public static let window = 50
    /// The fewest previous losses needed before anything counts as a spike.
    public static let minimumHistory = 10
    /// "> 1.2 × median of the previous 50", for messages.
    public static let text = "> \(factor) × median of the previous \(window)"
    /// ">1.2× median50", for a narrow label.
    public static let shortText = ">\(factor)× median\(window)"

}

/// Flags loss spikes: L_t > factor × median of the previous `window` losses (by default the
/// `SpikeRule`).
public struct SpikeDetector: Equatable, Sendable, Codable {
    public let factor: Double
    /// The fewest previous losses needed before anything counts as a spike.
    public let minimumHistory: Int
    private var history: RingBuffer
    /// Spikes so far, and the step of the last one.
    public private(set) var count = 0
    public private(set) var lastSpikeStep: Int?

    public init(window: Int = SpikeRule.window, factor: Double = SpikeRule.factor,
                minimumHistory: Int = SpikeRule.minimumHistory) {
        self.factor = factor
        self.minimumHistory = max(1, min(minimumHistory, window))
        history = RingBuffer(capacity: window)
    }

    public var window: Int { history.capacity }

    /// The median of the losses in the window, or nil when it is empty.
    public var median: Double? { history.median }

    /// Records the loss of `step` and says whether it is a spike. A non-finite loss is a spike
    /// and does not enter the window.
    @discardableResult
    public mutating func observe(loss: Double, step: Int) -> Bool {
        guard loss.isFinite else {
            count += 1
            lastSpikeStep = step
            return true
        }
        var spike = false
        if history.count >= minimumHistory, let median, loss > factor * median {
            spike = true
            count += 1
            lastSpikeStep = step
        }
        history.append(loss)
        return spike
    }
}
