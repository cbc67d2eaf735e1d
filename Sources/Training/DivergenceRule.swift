import Foundation
import Refinement

/// The divergence guard's decision rule (docs/METHOD.md §6b): a pure function of the sequence of
/// step losses and gradient norms. The live guard (`DivergenceGuard`) and the evaluator
/// (`gradflow guard-eval`, `DivergenceRule.replay`) feed the same value, so what the evaluator
/// reports over a recorded run is what the guard would have decided on it.
///
/// A step diverges when
/// - its loss or gradient norm is not finite (**non-finite**), or
/// - its loss is an **outlier**: above median + max(k · MAD, `outlierFloor`) of the last `window`
///   healthy losses (MAD floored at 1 % of the median; from `minimumWindow` losses on, so it acts
///   from the first steps), or
/// - the smoothed loss (an EMA, `smoothing`) **climbs**: above the run's starting loss +
///   `climbFloor`, or above max(`climbFactor` × its best smoothed loss, best + `climbFloor`).
///
/// The absolute floors keep a task learned to a loss near zero from calling a 0.5-nat bump a
/// divergence. A loss that diverges does not join the state (the guard rolls back instead).
/// Separately, a **bump** (loss above `bumpRatio` × the median and at least `warningFloor` nats
/// above it) is a warning, not a divergence.
public struct DivergenceRule: Codable, Equatable, Sendable {
    /// The rule's constants; the defaults are the guard's.
    public struct Settings: Codable, Equatable, Sendable {
        /// Healthy losses the outlier rule and the bump warning look back on.
        public var window = 50
        /// Fewest losses in the window before the outlier rule and the warning act.
        public var minimumWindow = 10
        /// k of the outlier rule (median absolute deviations; `--outlier-mads`).
        public var mads = 10.0
        /// An outlier is at least this many nats above the median.
        public var outlierFloor = 1.0
        /// EMA coefficient of the smoothed loss (0.9: about the last 10 steps).
        public var smoothing = 0.9
        /// A smoothed loss above this multiple of its best is a climb …
        public var climbFactor = 2.0
        /// … and so is one this many nats above the best, or above the starting loss.
        public var climbFloor = 1.0
        /// A warning ("loss bump"): a spike by the step statistics' rule (above `SpikeRule.factor`
        /// × the median) …
        public var bumpRatio = SpikeRule.factor
        /// … and at least this many nats above it.
        public var warningFloor = 0.5

        public init() {}
    }

    /// Which part of the rule a step broke.
    public enum Kind: String, Codable, Sendable {
        case nonFinite = "non-finite"
        case outlier
        case climb
    }

    /// Why a step diverged.
    public struct Divergence: Equatable, Sendable, CustomStringConvertible {
        public var kind: Kind
        public var message: String
        public var description: String { message }
    }

    /// What one step gave: a divergence, or a healthy step with perhaps a warning.
    public struct Observation: Equatable, Sendable {
        public var divergence: Divergence?
        public var warning: String?
    }

    public let settings: Settings
    /// The last healthy losses.
    private var recent: RingBuffer
    /// EMA of the healthy losses (nil before the first).
    public private(set) var smoothed: Double?
    /// The first healthy loss the rule saw (the run's starting loss).
    public private(set) var startLoss: Double?
    /// The lowest smoothed loss so far.
    public private(set) var bestSmoothed: Double?
    /// Healthy steps observed.
    public private(set) var healthySteps = 0

    public init(settings: Settings = Settings()) {
        self.settings = settings
        recent = RingBuffer(capacity: settings.window)
    }

    /// Checks one step and, when it is healthy, lets its loss join the state.
    public mutating func observe(loss: Double, gradNorm: Double) -> Observation {
        if let d = divergence(loss: loss, gradNorm: gradNorm) { return Observation(divergence: d, warning: nil) }
        let warning = self.warning(loss: loss)
        recent.append(loss)
        let s = nextSmoothed(loss)
        smoothed = s
        if startLoss == nil { startLoss = loss }
        bestSmoothed = min(bestSmoothed ?? s, s)
        healthySteps += 1
        return Observation(divergence: nil, warning: warning)
    }

    /// Why a step with this loss and gradient norm diverges, or nil; changes nothing.
    public func divergence(loss: Double, gradNorm: Double) -> Divergence? {
        if !loss.isFinite { return Divergence(kind: .nonFinite, message: "loss is \(loss)") }
        if !gradNorm.isFinite { return Divergence(kind: .nonFinite, message: "gradient norm is \(gradNorm)") }
        if let limit = outlierLimit, loss > limit {
            return Divergence(kind: .outlier, message: String(format: "loss outlier %.4f > %.4f (median of the last %d + max(%g MAD, ", loss, limit, recent.count, settings.mads)
                                                + Self.nats(settings.outlierFloor) + "))")
        }
        if let (limit, basis) = climbLimit {
            let s = nextSmoothed(loss)
            if s > limit {
                return Divergence(kind: .climb, message: String(format: "loss climb: smoothed loss %.4f > %.4f", s, limit) + " (\(basis))")
            }
        }
        return nil
    }

    /// median + max(k · max(MAD, 1 % of the median), outlierFloor) of the window, or nil while
    /// it holds fewer than `minimumWindow` losses.
    public var outlierLimit: Double? {
        guard recent.count >= settings.minimumWindow, let median = recent.median,
              let mad = RingBuffer.median(recent.unordered.map { abs($0 - median) }) else { return nil }
        return median + max(settings.mads * max(mad, 0.01 * abs(median)), settings.outlierFloor)
    }

    /// The lower of (starting loss + climbFloor) and max(climbFactor × best, best + climbFloor),
    /// with the words that say which; nil before the first healthy step.
    public var climbLimit: (Double, String)? {
        guard let start = startLoss, let best = bestSmoothed else { return nil }
        let fromStart = start + settings.climbFloor
        let fromBest = max(settings.climbFactor * best, best + settings.climbFloor)
        if fromStart <= fromBest {
            return (fromStart, String(format: "starting loss %.4f + ", start) + Self.nats(settings.climbFloor))
        }
        return settings.climbFactor * best >= best + settings.climbFloor
            ? (fromBest, String(format: "%g × best smoothed loss %.4f", settings.climbFactor, best))
            : (fromBest, String(format: "best smoothed loss %.4f + ", best) + Self.nats(settings.climbFloor))
    }

    /// The warning a healthy loss gives against the window as it is, or nil.
    public func warning(loss: Double) -> String? {
        guard recent.count >= settings.minimumWindow, let median = recent.median else { return nil }
        guard loss > settings.bumpRatio * median, loss - median >= settings.warningFloor else { return nil }
        return String(format: "loss bump %.3f > %g × median %.3f of the last %d (and ", loss, settings.bumpRatio, median, recent.count)
            + Self.nats(settings.warningFloor) + " or more above it)"
    }

    /// "1 nat", "0.5 nat", "2 nats".
    static func nats(_ x: Double) -> String { String(format: "%g nat", x) + (x > 1 ? "s" : "") }

    private func nextSmoothed(_ loss: Double) -> Double {
        smoothed.map { settings.smoothing * $0 + (1 - settings.smoothing) * loss } ?? loss
    }
}

extension DivergenceRule {
    /// One step of a recorded run, as the rule reads it.
    public struct Step: Sendable {
        public var step: Int
        public var loss: Double
        public var gradNorm: Double
        public init(step: Int, loss: Double, gradNorm: Double) {
            self.step = step
            self.loss = loss
            self.gradNorm = gradNorm
        }
    }

    /// What the rule decides over a whole recorded run.
    public struct Replay: Sendable {
        /// Steps the rule calls divergent, with why (a divergent loss does not join the state, as
        /// in the live guard; there is no rollback here, so a lasting divergence flags every step).
        public var detections: [(step: Int, divergence: Divergence)] = []
        public var warnings: [(step: Int, message: String)] = []
        public var steps = 0
        /// Runs of consecutive detected steps (a rollback's worth each).
        public var episodes: Int {
            var n = 0, last = Int.min
            for d in detections {
                if d.step != last + 1 { n += 1 }
                last = d.step
            }
            return n
        }
    }

    /// Replays the rule over a run's steps in order (the evaluator's view of the live guard with
    /// the guard's actions left out: what it would flag, step by step).
    public static func replay(_ steps: [Step], settings: Settings = Settings()) -> Replay {
        var rule = DivergenceRule(settings: settings)
        var out = Replay()
        for s in steps {
            out.steps += 1
            let o = rule.observe(loss: s.loss, gradNorm: s.gradNorm)
            if let d = o.divergence { out.detections.append((s.step, d)) }
            if let w = o.warning { out.warnings.append((s.step, w)) }
        }
        return out
    }
}
