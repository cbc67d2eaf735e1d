import RunFormat
import Foundation
import Refinement

/// Number, size, time and text formats for everything that shows a run: the dashboard, the
/// progress lines and summary, the exports. One family, so that the same quantity reads the same
/// everywhere (sizes in decimal units, 1 kB = 1000 B).
public enum Format {
    /// 1240 → "1,240".
    public static func grouped(_ n: Int) -> String {
        let digits = String(Swift.abs(n))
        var out = ""
        for (i, ch) in digits.enumerated() {
            if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
            out.append(ch)
        }
        return n < 0 ? "-" + out : out
    }

    /// 10 900 → "10.9k", 842 496 → "842k", 10 844 160 → "10.8M".
    public static func compact(_ v: Double) -> String {
        let a = Swift.abs(v)
        if a >= 1e9 { return scaled(v / 1e9, "G") }
        if a >= 1e6 { return scaled(v / 1e6, "M") }
        if a >= 1e3 { return scaled(v / 1e3, "k") }
        return a >= 100 || v == v.rounded() ? String(Int(v.rounded())) : fixed(v, 1)
    }

    private static func scaled(_ v: Double, _ unit: String) -> String {
        Swift.abs(v) >= 100 ? "\(Int(v.rounded()))\(unit)" : fixed(v, 1) + unit
    }

    /// Fixed decimals ("%.2f"); "nan" / "inf" / "-inf" spelled out.
    public static func fixed(_ v: Double, _ digits: Int) -> String {
        guard v.isFinite else { return v.isNaN ? "nan" : (v > 0 ? "inf" : "-inf") }
        return String(format: "%.\(digits)f", v)
    }

    /// Signed fixed decimals: "+0.22", "-0.09".
    public static func signed(_ v: Double, _ digits: Int) -> String {
        (v >= 0 ? "+" : "") + fixed(v, digits)
    }

    /// A difference in nats with its sign (a true minus): 3 decimals ("−0.012", "+0.004"), two
    /// significant digits below 0.0005 ("+0.00021"), "0" for exactly zero, "n/a" when not finite.
    /// Verdicts, the Events panel and the `--compare` legend all word differences so.
    public static func delta(_ v: Double) -> String {
        guard v.isFinite else { return "n/a" }
        if v == 0 { return "0" }
        let a = Swift.abs(v)
        let text = a >= 0.0005 ? String(format: "%.3f", a) : String(format: "%.2g", a)
        return (v < 0 ? "−" : "+") + text
    }

    /// A value that may be large or small, in about four significant digits.
    public static func value(_ v: Double) -> String {
        let a = Swift.abs(v)
        if a == 0 { return "0" }
        if a >= 1000 { return compact(v) }
        if a >= 100 { return fixed(v, 0) }
        if a >= 10 { return fixed(v, 1) }
        if a >= 0.01 { return fixed(v, a >= 1 ? 2 : 3) }
        return String(format: "%.1e", v)
    }

    /// 121 → "2m01s"; 45 → "45s"; 3720 → "1h02m" (the dashboard; `clock` for progress lines).
    public static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds >= 0 else { return "–" }
        let s = Int(seconds.rounded())
        if s < 60 { return "\(s)s" }
        if s < 3600 { return String(format: "%dm%02ds", s / 60, s % 60) }
        return String(format: "%dh%02dm", s / 3600, (s % 3600) / 60)
    }

    /// Decimal units: 1 048 576 → "1.0 MB"; 3 400 → "3.4 kB".
    public static func bytes(_ n: Int) -> String {
        let v = Double(n)
        if v >= 1e12 { return fixed(v / 1e12, 1) + " TB" }
        if v >= 1e9 { return fixed(v / 1e9, 1) + " GB" }
        if v >= 1e6 { return fixed(v / 1e6, 1) + " MB" }
        if v >= 1e3 { return fixed(v / 1e3, 1) + " kB" }
        return "\(n) B"
    }

    /// Percentage without decimals: 0.62 → "62%".
    public static func percent(_ fraction: Double) -> String {
        guard fraction.isFinite else { return "–" }
        return "\(Int((fraction * 100).rounded()))%"
    }

    /// Shortens text to `width` columns by cutting the middle, so both ends (which tell similar
    /// names apart) survive: "scale/context/phrase" → "scale/…/phrase".
    public static func truncateMiddle(_ text: String, _ width: Int) -> String {
        let scalars = Array(text.unicodeScalars)
        guard scalars.count > width else { return text }
        guard width > 1 else { return width == 1 ? "…" : "" }
        let keepTail = (width - 1) / 2
        let keepHead = width - 1 - keepTail
        var s = String.UnicodeScalarView()
        s.append(contentsOf: scalars[0..<keepHead])
        s.append("…")
        s.append(contentsOf: scalars[(scalars.count - keepTail)...])
        return String(s)
    }

    /// Shortens text to `width` columns at the end, with an ellipsis.
    public static func truncateEnd(_ text: String, _ width: Int) -> String {
        let scalars = Array(text.unicodeScalars)
        guard scalars.count > width else { return text }
        guard width > 1 else { return width == 1 ? "…" : "" }
        var s = String.UnicodeScalarView()
        s.append(contentsOf: scalars[0..<(width - 1)])
        s.append("…")
        return String(s)
    }

    /// Pads with spaces on the right (or left with `right: true`) to exactly `width` columns.
    public static func pad(_ text: String, _ width: Int, right: Bool = false) -> String {
        let n = text.unicodeScalars.count
        if n >= width { return truncateEnd(text, width) }
        let fill = String(repeating: " ", count: width - n)
        return right ? fill + text : text + fill
    }

    /// Display width (every scalar the dashboard uses is one column).
    public static func width(_ text: String) -> Int { text.unicodeScalars.count }

    /// A weight in at most four characters where possible: ".80", "1.20", "12.0".
    public static func weight(_ v: Double) -> String {
        guard v.isFinite else { return fixed(v, 2) }
        // Decided on the rounded text: 0.999 is "1.00", not ".00"; 9.996 is "10.0".
        let two = String(format: "%.2f", v)
        if two.hasPrefix("0.") { return String(two.dropFirst()) }
        return two.count <= 4 ? two : String(format: "%.1f", v)
    }

    /// Seconds as a clock, "m:ss" or "h:mm:ss" (progress lines); "--:--" when unknown.
    public static func clock(_ seconds: Double) -> String {
        guard seconds.isFinite && seconds >= 0 else { return "--:--" }
        let s = Int(seconds.rounded())
        if s >= 3600 { return String(format: "%d:%02d:%02d", s / 3600, (s / 60) % 60, s % 60) }
        return String(format: "%d:%02d", s / 60, s % 60)
    }

    /// Nats to bits.
    public static func bitsPerByte(_ nats: Double) -> Double { nats / 0.6931471805599453 }
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
    if !e.source.rawValue.isEmpty { parts.append("[\(e.source)]") }
    if !e.message.isEmpty { parts.append(e.message) }
    return parts.joined(separator: " ")
}
