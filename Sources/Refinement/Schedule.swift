// When an adaptive policy comes into force: nothing before warm-up, then its strength ramps in.

/// A warm-up of `warmupSteps` steps (policy strength 0), then a linear ramp to full strength over
/// `rampSteps` steps. Steps count from 0; `strength(afterStep:)` is the strength for the step
/// after `step`, so with warm-up 200 the first step with any effect is step 201.
public struct WarmupRamp: Equatable, Sendable, Codable {
    public var warmupSteps: Int
    public var rampSteps: Int

    /// The context and depth policies' default: 200 steps at 1, then 200 steps of ramp.
    public static let policyDefault = WarmupRamp(warmupSteps: 200, rampSteps: 200)

    public init(warmupSteps: Int, rampSteps: Int) {
        self.warmupSteps = max(0, warmupSteps)
        self.rampSteps = max(0, rampSteps)
    }

    /// 0 during warm-up, then (completed − warm-up) / ramp, capped at 1.
    public func strength(afterStep step: Int) -> Double {
        let completed = step + 1
        guard completed > warmupSteps else { return 0 }
        guard rampSteps > 0 else { return 1 }
        return min(1, Double(completed - warmupSteps) / Double(rampSteps))
    }

    /// Whether warm-up is over after `step`.
    public func isWarm(afterStep step: Int) -> Bool { step + 1 >= warmupSteps }
}
