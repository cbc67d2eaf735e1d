import Telemetry

/// The paired differences d_t = loss_main − loss_twin of a twin window, their mean and its 95 %
/// interval by non-overlapping batch means (docs/METHOD.md, "Did a change help?").
///
/// Successive d_t are strongly autocorrelated (the two runs drift apart slowly), so the plain
/// standard error of the mean would be far too small. The n values are cut into k = min(10, n/2)
/// contiguous batches; the batch means are close to independent when a batch is longer than the
/// correlation, and mean ± t(0.975, k − 1) · sd(batch means)/√k is the interval. A trend inside
/// the window (the effect growing as the runs drift apart) widens the interval: the verdict errs
/// towards "no detectable effect". Public so that the study report can measure windows of other
/// lengths from two runs' step losses with the same rule.
public struct PairedDifferences: Sendable {
    public private(set) var values: [Double] = []

    public init() {}

    /// Differences already taken (a twin restored from a checkpoint).
    public init(values: [Double]) { self.values = values }

    /// The most batches; with fewer than 2 values per batch, fewer batches are used.
    public static let batches = 10
    /// Fewest paired steps for an interval (two batches of two).
    public static let minimumSteps = 4
    /// t quantiles (0.975) for 1…9 degrees of freedom.
    static let tQuantiles: [Double] = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262]

    public mutating func append(_ d: Double) { values.append(d) }

    public var count: Int { values.count }

    /// Paired mean (0 with no steps).
    public var mean: Double { values.isEmpty ? 0 : values.reduce(0, +) / Double(values.count) }

    /// The 95 % batch-means interval of the mean, or nil below `minimumSteps`.
    public var interval: (low: Double, high: Double)? {
        let n = values.count
        guard n >= Self.minimumSteps else { return nil }
        let k = min(Self.batches, n / 2)
        var means: [Double] = []
        for b in 0..<k {
            let lo = b * n / k, hi = (b + 1) * n / k
            means.append(values[lo..<hi].reduce(0, +) / Double(hi - lo))
        }
        let m = means.reduce(0, +) / Double(k)
        let variance = means.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(k - 1)
        let half = Self.tQuantiles[k - 2] * (variance / Double(k)).squareRoot()
        let center = mean
        return (center - half, center + half)
    }

    /// helped when the whole interval is below zero, hurt when above, otherwise no detectable effect.
    public var word: VerdictInfo.Word {
        guard let ci = interval, ci.low.isFinite, ci.high.isFinite else { return .noEffect }
        if ci.high < 0 { return .helped }
        if ci.low > 0 { return .hurt }
        return .noEffect
    }
}
