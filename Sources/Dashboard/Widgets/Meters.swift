/// Text meters: bars with eighth blocks, share bars, sparklines.
enum Meter {
    static let eighths: [Character] = ["▏", "▎", "▍", "▌", "▋", "▊", "▉", "█"]
    static let sparkLevels: [Character] = ["▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"]

    /// A bar of `width` cells filled to `fraction` with eighth-block precision, the rest `empty`.
    static func bar(_ fraction: Double, width: Int, empty: Character = "░") -> (filled: String, rest: String) {
        guard width > 0 else { return ("", "") }
        let f = fraction.isFinite ? Swift.max(0, Swift.min(1, fraction)) : 0
        let eighthsTotal = Int((f * Double(width * 8)).rounded())
        let full = eighthsTotal / 8
        let part = eighthsTotal % 8
        var filled = String(repeating: "█", count: full)
        if part > 0 && full < width { filled.append(eighths[part - 1]) }
        let rest = String(repeating: empty, count: width - filled.count)
        return (filled, rest)
    }

    /// A sparkline over column samples (their means), scaled to their own range widened to at
    /// least `minSpan` so that noise on a flat series does not look like a trend.
    static func sparkline(_ columns: [ColumnSample?], minSpan: Double = 0) -> String {
        let values = columns.compactMap { $0?.mean }
        guard let lo0 = values.min(), let hi0 = values.max() else { return String(repeating: " ", count: columns.count) }
        var lo = lo0, hi = hi0
        if hi - lo < minSpan {
            let mid = (hi + lo) / 2
            lo = mid - minSpan / 2; hi = mid + minSpan / 2
        }
        return sparkline(columns.map { $0?.mean }, lo: lo, hi: hi)
    }

    /// A sparkline with a fixed range.
    static func sparkline(_ values: [Double?], lo: Double, hi: Double) -> String {
        var out = ""
        for v in values {
            guard let v, v.isFinite else { out.append(" "); continue }
            let t = hi > lo ? (v - lo) / (hi - lo) : 0.5
            out.append(sparkLevels[Swift.max(0, Swift.min(7, Int(t * 7.999)))])
        }
        return out
    }
}

extension DecimatedSeries {
    /// A sparkline of this series over `xRange`, `width` cells wide.
    func sparkline(xRange: ClosedRange<Int>, width: Int, minSpan: Double = 0) -> String {
        guard width > 0 else { return "" }
        return Meter.sparkline(columns(xRange: xRange, count: width), minSpan: minSpan)
    }
}
