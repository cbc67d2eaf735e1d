/// A colour as a theme or a widget names it: the terminal's default, an xterm palette index
/// (0–255), or a 24-bit RGB value. Packed into one word so that cells compare cheaply.
public struct TerminalColor: Hashable, Sendable {
    /// Tag in the top byte (0 default, 1 indexed, 2 rgb), payload in the low 24 bits.
    public let raw: UInt32

    public static let `default` = TerminalColor(raw: 0)

    public init(raw: UInt32) { self.raw = raw }

    public static func indexed(_ index: UInt8) -> TerminalColor {
        TerminalColor(raw: 0x0100_0000 | UInt32(index))
    }

    public static func rgb(_ r: UInt8, _ g: UInt8, _ b: UInt8) -> TerminalColor {
        TerminalColor(raw: 0x0200_0000 | UInt32(r) << 16 | UInt32(g) << 8 | UInt32(b))
    }

    public var isDefault: Bool { raw >> 24 == 0 }

    /// The palette index when this colour is indexed.
    public var index: UInt8? { raw >> 24 == 1 ? UInt8(raw & 0xFF) : nil }

    /// The RGB components when this colour is RGB.
    public var rgbComponents: (r: UInt8, g: UInt8, b: UInt8)? {
        guard raw >> 24 == 2 else { return nil }
        return (UInt8((raw >> 16) & 0xFF), UInt8((raw >> 8) & 0xFF), UInt8(raw & 0xFF))
    }

    /// The colour as RGB, looking palette indices up in the xterm palette.
    public var approximateRGB: (r: UInt8, g: UInt8, b: UInt8)? {
        if let c = rgbComponents { return c }
        if let i = index { return XtermPalette.rgb(of: i) }
        return nil
    }

    /// Linear blend between two colours (t in 0…1); default colours do not blend.
    public static func blend(_ a: TerminalColor, _ b: TerminalColor, _ t: Double) -> TerminalColor {
        guard let x = a.approximateRGB, let y = b.approximateRGB else { return t < 0.5 ? a : b }
        let u = Swift.max(0, Swift.min(1, t))
        func mix(_ p: UInt8, _ q: UInt8) -> UInt8 { UInt8((Double(p) + (Double(q) - Double(p)) * u).rounded()) }
        return .rgb(mix(x.r, y.r), mix(x.g, y.g), mix(x.b, y.b))
    }
}

/// How many colours the terminal can show; decided once from the environment and the terminfo.
public enum ColorMode: String, Sendable, CaseIterable {
    case none
    case ansi16
    case palette256
    case truecolor

    /// Reads NO_COLOR, COLORTERM and TERM (https://no-color.org; COLORTERM=truecolor|24bit).
    public static func detect(environment: [String: String]) -> ColorMode {
        if let v = environment["NO_COLOR"], !v.isEmpty { return .none }
        let colorterm = (environment["COLORTERM"] ?? "").lowercased()
        if colorterm == "truecolor" || colorterm == "24bit" { return .truecolor }
        let term = (environment["TERM"] ?? "").lowercased()
        if term.contains("256color") || term.contains("direct") { return .palette256 }
        if term == "dumb" { return .none }
        return .ansi16
    }

    /// Words for the footer ("256 colours").
    public var label: String {
        switch self {
        case .none: return "no colour"
        case .ansi16: return "16 colours"
        case .palette256: return "256 colours"
        case .truecolor: return "truecolour"
        }
    }

    /// The colour this mode can show: RGB reduced to the 256 palette or the 16 ANSI colours.
    public func reduce(_ color: TerminalColor) -> TerminalColor {
        switch self {
        case .none: return .default
        case .truecolor: return color
        case .palette256:
            if let c = color.rgbComponents { return .indexed(XtermPalette.nearest256(c.r, c.g, c.b)) }
            return color
        case .ansi16:
            if let i = color.index, i < 16 { return color }
            if let c = color.approximateRGB { return .indexed(XtermPalette.nearest16(c.r, c.g, c.b)) }
            return color
        }
    }
}

/// The xterm 256-colour palette: 16 system colours, a 6×6×6 cube and a 24-step grey ramp.
public enum XtermPalette {
    static let system: [(UInt8, UInt8, UInt8)] = [
        (0, 0, 0), (205, 0, 0), (0, 205, 0), (205, 205, 0), (0, 0, 238), (205, 0, 205), (0, 205, 205),
        (229, 229, 229), (127, 127, 127), (255, 0, 0), (0, 255, 0), (255, 255, 0), (92, 92, 255),
        (255, 0, 255), (0, 255, 255), (255, 255, 255),
    ]
    static let cubeLevels: [Int] = [0, 95, 135, 175, 215, 255]

    public static func rgb(of index: UInt8) -> (r: UInt8, g: UInt8, b: UInt8) {
        let i = Int(index)
        if i < 16 { let s = system[i]; return (s.0, s.1, s.2) }
        if i < 232 {
            let c = i - 16
            return (UInt8(cubeLevels[c / 36]), UInt8(cubeLevels[(c / 6) % 6]), UInt8(cubeLevels[c % 6]))
        }
        let g = UInt8(8 + 10 * (i - 232))
        return (g, g, g)
    }

    /// Nearest of the cube colours and greys (16–255) by squared RGB distance.
    public static func nearest256(_ r: UInt8, _ g: UInt8, _ b: UInt8) -> UInt8 {
        func level(_ v: UInt8) -> Int {
            var best = 0
            for (k, l) in cubeLevels.enumerated() where abs(l - Int(v)) < abs(cubeLevels[best] - Int(v)) { best = k }
            return best
        }
        let (ri, gi, bi) = (level(r), level(g), level(b))
        let cubeIndex = 16 + 36 * ri + 6 * gi + bi
        let cube = (cubeLevels[ri], cubeLevels[gi], cubeLevels[bi])
        let mean = (Int(r) + Int(g) + Int(b)) / 3
        let greyStep = Swift.max(0, Swift.min(23, (mean - 3) / 10))
        let grey = 8 + 10 * greyStep
        func dist(_ p: (Int, Int, Int)) -> Int {
            let dr = p.0 - Int(r), dg = p.1 - Int(g), db = p.2 - Int(b)
            return dr * dr + dg * dg + db * db
        }
        return dist(cube) <= dist((grey, grey, grey)) ? UInt8(cubeIndex) : UInt8(232 + greyStep)
    }

    /// Nearest of the 16 system colours.
    public static func nearest16(_ r: UInt8, _ g: UInt8, _ b: UInt8) -> UInt8 {
        var best = 0
        var bestDistance = Int.max
        for (i, s) in system.enumerated() {
            let dr = Int(s.0) - Int(r), dg = Int(s.1) - Int(g), db = Int(s.2) - Int(b)
            let d = dr * dr + dg * dg + db * db
            if d < bestDistance { bestDistance = d; best = i }
        }
        return UInt8(best)
    }
}
