import RunFormat

/// The grad-norm CV(100): how much the gradient norm varies over a window of 100 steps, as the
/// standard deviation over the mean. The one definition that the dashboard (over the latest
/// window) and the evaluation (averaged over a run's consecutive windows) share.
///
/// σ is the sample standard deviation (n − 1): the window is a sample of the run's gradient
/// norms, and it is the definition the published evaluation figures used. Non-finite norms (a
/// step that overflowed) are left out, so one bad step does not make the window NaN.
public enum GradNormCV {
    /// Steps per window.
    public static let window = 100

    /// σ / μ of the finite values; nil with fewer than two of them or a mean that is not positive
    /// (gradient norms are positive).
    public static func coefficient<C: Collection>(_ values: C) -> Double? where C.Element == Double {
        var n = 0, sum = 0.0
        for v in values where v.isFinite { n += 1; sum += v }
        guard n >= 2 else { return nil }
        let mean = sum / Double(n)
        guard mean > 0 else { return nil }
        var squares = 0.0
        for v in values where v.isFinite { squares += (v - mean) * (v - mean) }
        return (squares / Double(n - 1)).squareRoot() / mean
    }

    /// A run's figure: the mean of `coefficient` over its consecutive, non-overlapping windows
    /// of `window` steps (one window over all steps when there are fewer); NaN when no window has
    /// a coefficient.
    public static func runMean(_ norms: [Double], window: Int = window) -> Double {
        var cvs: [Double] = []
        var i = 0
        while i + window <= norms.count {
            if let cv = coefficient(norms[i..<(i + window)]) { cvs.append(cv) }
            i += window
        }
        if norms.count < window, let cv = coefficient(norms) { cvs.append(cv) }
        return cvs.isEmpty ? .nan : cvs.reduce(0, +) / Double(cvs.count)
    }
}
