import RunFormat
import Foundation

/// Axis ticks at 1-2-5 steps (1, 2 or 5 × 10^k): the one rule behind the dashboard's charts, the
/// SVG charts (run export and study report) and the progress printer's reporting interval.
public enum Ticks {
    /// The smallest 1-2-5 step that is at least `raw` (1 when `raw` is not a positive number).
    public static func step(atLeast raw: Double) -> Double {
        guard raw > 0, raw.isFinite else { return 1 }
        let p = pow(10, floor(log10(raw)))
        for m in [1.0, 2.0, 5.0] where m * p >= raw * (1 - 1e-12) { return m * p }
        return 10 * p
    }

    /// The largest 1-2-5 step that is at most `v` (at least `floor`).
    public static func step(atMost v: Double, floor lowest: Double = 1) -> Double {
        guard v > lowest, v.isFinite else { return lowest }
        let p = pow(10, floor(log10(v)))
        for m in [5.0, 2.0, 1.0] where m * p <= v * (1 + 1e-12) { return Swift.max(lowest, m * p) }
        return Swift.max(lowest, p)
    }

    /// The multiples of a 1-2-5 step inside [lo, hi]: the step whose number of intervals over
    /// the range comes closest to `count` (at least 1.5 of them; the smaller step on a tie).
    /// Values are rounded to the step's decimals, so labels print exactly (0.3, not
    /// 0.30000000000000004); [lo] when the range is empty.
    public static func values(_ lo: Double, _ hi: Double, count: Int = 6) -> [Double] {
        guard hi > lo, lo.isFinite, hi.isFinite else { return [lo] }
        let range = hi - lo, target = Double(Swift.max(1, count))
        let e = floor(log10(range / target))
        var step = Self.step(atLeast: range / 2), best = Double.infinity
        for k in [e - 1, e, e + 1] {
            for m in [1.0, 2.0, 5.0] {
                let candidate = m * pow(10, k), intervals = range / candidate
                if intervals >= 1.5 && abs(intervals - target) < best { step = candidate; best = abs(intervals - target) }
            }
        }
        let decimals = Swift.max(0, -Int(floor(log10(step))))
        let scale = pow(10, Double(decimals))
        var out: [Double] = []
        var k = (lo / step - 1e-9).rounded(.up)
        while k * step <= hi + step * 1e-9 {
            // Multiply (not accumulate) and round to the step's decimals.
            out.append((k * step * scale).rounded() / scale)
            k += 1
        }
        return out
    }
}
