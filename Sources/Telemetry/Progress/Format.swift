import Refinement
import Foundation

/// Small number and time formats shared by the progress lines and the summary.
enum Format {
    /// Fixed decimals; "nan" / "inf" spelled out.
    static func fixed(_ v: Double, _ decimals: Int) -> String {
        guard v.isFinite else { return v.isNaN ? "nan" : (v < 0 ? "-inf" : "inf") }
        return String(format: "%.\(decimals)f", v)
    }

    /// A weight in at most four characters where possible: ".80", "1.20", "12.0".
    static func weight(_ v: Double) -> String {
        guard v.isFinite else { return fixed(v, 2) }
        if v >= 0 && v < 1 { return String(String(format: "%.2f", v).dropFirst()) }
        return v < 10 ? String(format: "%.2f", v) : String(format: "%.1f", v)
    }

    /// 41200 → "41.2k", 1.2e6 → "1.20M".
    static func si(_ v: Double) -> String {
        guard v.isFinite else { return fixed(v, 0) }
        let a = abs(v)
        if a >= 1e9 { return String(format: "%.2fG", v / 1e9) }
        if a >= 1e6 { return String(format: "%.2fM", v / 1e6) }
        if a >= 1e3 { return String(format: "%.1fk", v / 1e3) }
        return String(format: "%.0f", v)
    }

    /// Seconds as "m:ss" or "h:mm:ss".
    static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite && seconds >= 0 else { return "--:--" }
        let s = Int(seconds.rounded())
        if s >= 3600 { return String(format: "%d:%02d:%02d", s / 3600, (s / 60) % 60, s % 60) }
        return String(format: "%d:%02d", s / 60, s % 60)
    }

    static func bytes(_ n: Int) -> String {
        let d = Double(n)
        if d >= 1_073_741_824 { return String(format: "%.1f GB", d / Double(1 << 30)) }
        if d >= 1_048_576 { return String(format: "%.1f MB", d / Double(1 << 20)) }
        if d >= 1024 { return String(format: "%.1f KB", d / Double(1 << 10)) }
        return "\(n) B"
    }

    /// The largest of 1, 2, 5 × 10^k not above `v` (at least 1).
    static func niceStep(atMost v: Double) -> Int {
        guard v >= 1 else { return 1 }
        let p = pow(10, floor(log10(v)))
        for m in [5.0, 2.0, 1.0] where m * p <= v { return Int(m * p) }
        return Int(p)
    }

    static func bitsPerByte(_ nats: Double) -> Double { nats / 0.6931471805599453 }
}

/// Band names from the header for an axis, falling back to numbers.
func bandName(_ header: RunHeader?, _ axis: ScaleAxis, _ band: Int) -> String {
    if let info = header?.axes.first(where: { $0.axis == axis }), band >= 0, band < info.bands.count {
        return info.bands[band].name
    }
    return "band \(band)"
}

/// One line describing an event, without the step: "weight context/long (all layers) 1.00 -> 1.50 [key]".
func describeEvent(_ e: EventRecord, header: RunHeader?) -> String {
    var parts = [e.kind.rawValue]
    if let axis = e.axis {
        var target = axis.rawValue
        if let band = e.band { target += "/" + bandName(header, axis, band) }
        if axis == .context && e.kind == .weight { target += e.layer.map { " (layer \($0))" } ?? " (all layers)" }
        parts.append(target)
    }
    if e.oldValue != nil || e.newValue != nil {
        parts.append("\(e.oldValue.map { Format.fixed($0, 2) } ?? "?") -> \(e.newValue.map { Format.fixed($0, 2) } ?? "?")")
    }
    if !e.source.isEmpty { parts.append("[\(e.source)]") }
    if !e.message.isEmpty { parts.append(e.message) }
    return parts.joined(separator: " ")
}
