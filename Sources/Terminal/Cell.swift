/// Text attributes of a cell.
public struct CellAttributes: OptionSet, Hashable, Sendable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let bold = CellAttributes(rawValue: 1)
    public static let dim = CellAttributes(rawValue: 2)
    public static let reverse = CellAttributes(rawValue: 4)
    public static let underline = CellAttributes(rawValue: 8)
}

/// Foreground, background and attributes shared by a run of cells.
public struct CellStyle: Hashable, Sendable {
    public var fg: TerminalColor
    public var bg: TerminalColor
    public var attributes: CellAttributes

    public init(fg: TerminalColor = .default, bg: TerminalColor = .default, attributes: CellAttributes = []) {
        self.fg = fg
        self.bg = bg
        self.attributes = attributes
    }

    public static let plain = CellStyle()
}

/// One character position of the screen. Every character the dashboard draws is one column wide.
public struct Cell: Hashable, Sendable {
    public var character: Unicode.Scalar
    public var style: CellStyle

    public init(_ character: Unicode.Scalar = " ", style: CellStyle = .plain) {
        self.character = character
        self.style = style
    }

    public var fg: TerminalColor { style.fg }
    public var bg: TerminalColor { style.bg }
    public var attributes: CellAttributes { style.attributes }

    public static let blank = Cell()
}
