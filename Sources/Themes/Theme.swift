import Terminal

/// The colour roles a theme file names (DASHBOARD.md "Theme files"). Roles, not widgets.
public enum ThemeKey: String, CaseIterable, Sendable {
    case fg, dim, title, border
    case border_focus, selected_bg
    case series_train, series_val_1, series_val_2, series_val_3, series_val_4
    /// Reference runs (`--compare`), drawn as ghost lines.
    case ref_1, ref_2, ref_3
    case band_1, band_2, band_3, band_4
    case zone_calm, zone_watch, zone_bad
    case heat_start, heat_mid, heat_end
    case event_weight, event_eval, event_warn, event_checkpoint
    case status_bg
}

/// A named set of colours, one per `ThemeKey`.
public struct Theme: Sendable, Equatable {
    public var name: String
    private var colors: [TerminalColor]

    public init(name: String, colors: [ThemeKey: TerminalColor], fallback: Theme? = nil) {
        self.name = name
        self.colors = ThemeKey.allCases.map { colors[$0] ?? fallback?[$0] ?? .default }
    }

    public subscript(key: ThemeKey) -> TerminalColor {
        colors[ThemeKey.allCases.firstIndex(of: key)!]
    }

    /// Foreground style for a role.
    public func style(_ key: ThemeKey, _ attributes: CellAttributes = []) -> CellStyle {
        CellStyle(fg: self[key], bg: .default, attributes: attributes)
    }

    /// The colour of validation domain `i` (0-based), cycling through the four series colours.
    public func validationColor(_ i: Int) -> TerminalColor {
        [self[.series_val_1], self[.series_val_2], self[.series_val_3], self[.series_val_4]][i % 4]
    }

    /// The colour of band `i` (0-based) of an axis.
    public func bandColor(_ i: Int) -> TerminalColor {
        [self[.band_1], self[.band_2], self[.band_3], self[.band_4]][i % 4]
    }

    /// A colour along heat_start → heat_mid → heat_end for t in 0…1.
    public func heat(_ t: Double) -> TerminalColor {
        let u = Swift.max(0, Swift.min(1, t))
        return u < 0.5
            ? TerminalColor.blend(self[.heat_start], self[.heat_mid], u * 2)
            : TerminalColor.blend(self[.heat_mid], self[.heat_end], (u - 0.5) * 2)
    }

    /// The built-in dark theme, also the fallback for keys another theme leaves out.
    public static let `default`: Theme = {
        do { return try ThemeParser.parse(BuiltinThemes.text["default"]!, name: "default", file: "<built-in default>", fallback: nil) }
        catch { fatalError("the built-in default theme does not parse: \(error)") }
    }()
}

/// A theme file that cannot be used, with the place and the reason.
public struct ThemeError: Error, CustomStringConvertible, Equatable {
    public var file: String
    public var line: Int?
    public var message: String

    public var description: String {
        if let line { return "\(file):\(line): \(message)" }
        return "\(file): \(message)"
    }
}

/// Parses theme files: one `key = "value"` per line, `#` comments, colours as `#RRGGBB`, a palette
/// index 0–255, or `default` (the terminal's own colour).
public enum ThemeParser {
    /// Missing keys take `fallback`'s colour (the default theme unless nil is passed for it).
    public static func parse(_ text: String, name: String, file: String, fallback: Theme? = Theme.default) throws -> Theme {
        var colors: [ThemeKey: TerminalColor] = [:]
        for (i, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let lineNumber = i + 1
            var line = Substring(rawLine.trimmingCharacters(in: .whitespaces))
            if line.hasSuffix("\r") { line = line.dropLast() }
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard let eq = line.firstIndex(of: "=") else {
                throw ThemeError(file: file, line: lineNumber, message: "expected key = \"value\", got '\(line)'")
            }
            let keyText = line[..<eq].trimmingCharacters(in: .whitespaces)
            var valueText = line[line.index(after: eq)...].trimmingCharacters(in: .whitespaces)
            if valueText.hasPrefix("\"") {
                let rest = valueText.dropFirst()
                guard let close = rest.firstIndex(of: "\"") else {
                    throw ThemeError(file: file, line: lineNumber, message: "unterminated quote in value of '\(keyText)'")
                }
                let after = rest[rest.index(after: close)...].trimmingCharacters(in: .whitespaces)
                guard after.isEmpty || after.hasPrefix("#") else {
                    throw ThemeError(file: file, line: lineNumber, message: "unexpected text after the value: '\(after)'")
                }
                valueText = String(rest[..<close])
            }
            guard let key = ThemeKey(rawValue: keyText) else {
                throw ThemeError(file: file, line: lineNumber,
                                 message: "unknown key '\(keyText)' (known keys: \(ThemeKey.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            guard let color = parseColor(valueText) else {
                throw ThemeError(file: file, line: lineNumber,
                                 message: "bad colour '\(valueText)' for '\(keyText)' (expected #RRGGBB, 0–255 or default)")
            }
            colors[key] = color
        }
        if fallback == nil, let missing = ThemeKey.allCases.first(where: { colors[$0] == nil }) {
            throw ThemeError(file: file, line: nil, message: "key '\(missing.rawValue)' is missing and there is no theme to fall back on")
        }
        return Theme(name: name, colors: colors, fallback: fallback)
    }

    /// "#RRGGBB", "0"…"255" or "default".
    public static func parseColor(_ text: String) -> TerminalColor? {
        if text == "default" { return .default }
        if text.hasPrefix("#") {
            let hex = text.dropFirst()
            guard hex.count == 6, let v = UInt32(hex, radix: 16) else { return nil }
            return .rgb(UInt8(v >> 16), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF))
        }
        guard !text.isEmpty, text.allSatisfy(\.isNumber), let n = Int(text), (0...255).contains(n) else { return nil }
        return .indexed(UInt8(n))
    }
}

import Foundation
