import Foundation
import Kernels

/// Paired statistics for "arm versus baseline" claims: per-seed differences, a seeded bootstrap
/// interval of their mean, sign agreement, and the verdict rule (docs/RESULTS.md states it).
public enum PairedStatistics {
    /// Percentile bootstrap 95 % interval of `statistic` over resamples (with replacement) of the
    /// indices 0..<n. Returns nil for n < 2.
    public static func bootstrapInterval(count n: Int, resamples: Int = 10_000, seed: UInt64 = 20_250_204,
                                         level: Double = 0.95, statistic: ([Int]) -> Double) -> (low: Double, high: Double)? {
        guard n >= 2, resamples >= 1 else { return nil }
        // A deterministic generator, so reports are reproducible.
        var rng = SplitMix64(state: seed)
        var values: [Double] = []
        values.reserveCapacity(resamples)
        var idx = [Int](repeating: 0, count: n)
        for _ in 0..<resamples {
            for i in 0..<n { idx[i] = rng.below(n) }
            let v = statistic(idx)
            if v.isFinite { values.append(v) }
        }
        guard !values.isEmpty else { return nil }
        values.sort()
        let alpha = (1 - level) / 2
        return (quantile(values, alpha), quantile(values, 1 - alpha))
    }

    /// Bootstrap interval of the mean of `differences`.
    public static func meanInterval(_ differences: [Double], resamples: Int = 10_000,
                                    seed: UInt64 = 20_250_204) -> (low: Double, high: Double)? {
        bootstrapInterval(count: differences.count, resamples: resamples, seed: seed) { idx in
            idx.reduce(0) { $0 + differences[$1] } / Double(idx.count)
        }
    }

    /// Linear-interpolated quantile of sorted values.
    public static func quantile(_ sorted: [Double], _ q: Double) -> Double {
        guard !sorted.isEmpty else { return .nan }
        let pos = q * Double(sorted.count - 1)
        let lo = Int(pos.rounded(.down)), hi = min(lo + 1, sorted.count - 1)
        return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - Double(lo))
    }

    public static func mean(_ x: [Double]) -> Double { x.isEmpty ? .nan : x.reduce(0, +) / Double(x.count) }

    /// Sample standard deviation (n − 1); 0 for a single value.
    public static func standardDeviation(_ x: [Double]) -> Double {
        guard x.count > 1 else { return x.isEmpty ? .nan : 0 }
        let m = mean(x)
        return (x.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(x.count - 1)).squareRoot()
    }

    /// The fewest seed pairs a verdict is given on.
    public static let minimumPairs = 3

    /// Which direction of a difference (arm − baseline) is the good one.
    public enum Better: String, Sendable { case lower, higher }

    /// A claim's verdict.
    public enum Verdict: String, Sendable {
        /// The interval excludes zero in the good direction and most seed pairs agree.
        case supported
        /// The interval excludes zero in the bad direction: the arm is worse.
        case worse = "not supported (worse)"
        /// The interval includes zero but most pairs point the good way.
        case mixed
        /// The interval includes zero and most pairs do not point the good way.
        case notSupported = "not supported"
        /// Fewer than `minimumPairs` seed pairs.
        case insufficient = "insufficient data"
    }

    /// The comparison of one metric between an arm and the baseline over paired seeds.
    public struct Comparison: Sendable {
        public var differences: [Double]
        public var mean: Double
        public var interval: (low: Double, high: Double)?
        /// Fraction of pairs whose difference points the good way (ties count against).
        public var agreement: Double
        public var verdict: Verdict
    }

    /// Compares paired values (same seed at the same index); non-finite pairs are dropped.
    public static func compare(arm: [Double], baseline: [Double], better: Better, resamples: Int = 10_000,
                               seed: UInt64 = 20_250_204) -> Comparison {
        let diffs = zip(arm, baseline).compactMap { a, b -> Double? in
            let d = a - b
            return d.isFinite ? d : nil
        }
        // Fewer than three pairs give no usable interval (two pairs: the interval is just their range).
        let interval = diffs.count >= minimumPairs ? meanInterval(diffs, resamples: resamples, seed: seed) : nil
        let good = diffs.filter { better == .lower ? $0 < 0 : $0 > 0 }.count
        let agreement = diffs.isEmpty ? 0 : Double(good) / Double(diffs.count)
        return Comparison(differences: diffs, mean: mean(diffs), interval: interval, agreement: agreement,
                          verdict: verdict(interval: interval, agreement: agreement, better: better))
    }

    /// The verdict rule: supported only when the 95 % interval excludes zero in the good direction
    /// and more than half of the pairs agree.
    public static func verdict(interval: (low: Double, high: Double)?, agreement: Double, better: Better) -> Verdict {
        guard let ci = interval else { return .insufficient }
        let goodSide = better == .lower ? ci.high < 0 : ci.low > 0
        let badSide = better == .lower ? ci.low > 0 : ci.high < 0
        if goodSide && agreement > 0.5 { return .supported }
        if badSide { return .worse }
        return agreement > 0.5 ? .mixed : .notSupported
    }
}
