import Telemetry
import Terminal

/// What a key press asks the dashboard to do: the update's vocabulary. `KeyBindings.table` says
/// which key means which action; `DashboardState.perform` says what each action does.
public enum KeyAction: Sendable, Equatable, CaseIterable {
    case quit, help
    case focusNext, focusPrevious, expand, collapse, togglePanel
    case selectUp, selectDown
    case scrollUp, scrollDown, scrollPageUp, scrollPageDown, scrollTop
    case editEventFilter, clearEventFilter
    // Steering a run (live or attached).
    case stop, togglePause
    case weightUp, weightDown, weightDouble, weightHalve, weightReset, toggleAdaptive, undo
    case checkpoint, revert, twinCheck
    // Replay transport.
    case seekBack, seekForward, seekFarBack, seekFarForward, slower, faster, stepOnce, fork
    // Display.
    case logY, smoothing, zoom, graphStyle, perHead, theme
}

/// A short key hint: the keys as written, and a word or two.
public struct KeyHint: Sendable, Equatable {
    public var keys: String
    public var text: String
    public init(_ keys: String, _ text: String) { self.keys = keys; self.text = text }
}

/// A hint a panel draws for one of its keys: in its bottom line, and the shorter `title` in its
/// border's title.
public struct PanelHint: Sendable, Equatable {
    public var panel: Panel
    public var hint: KeyHint
    public var title: KeyHint?
}

/// One row of the key table: these keys, in these modes (and only with `focus` focused, when
/// set), mean `action`. The help overlay shows one line per row with `help` text; a row whose
/// `help` is nil continues the line above it (its label joins that line's keys).
public struct KeyBinding: Sendable, Equatable {
    public var keys: [Key]
    /// The keys as the help writes them ("+", "↑↓ j k"); "" when the line's label already names them.
    public var label: String
    public var action: KeyAction
    public var modes: Set<DashboardMode>
    public var focus: Panel?
    public var help: String?
    public var footer: KeyHint?
    public var panelHint: PanelHint?

    init(_ keys: [Key], _ label: String, _ action: KeyAction, _ modes: Set<DashboardMode> = KeyBindings.every,
         focus: Panel? = nil, help: String?, footer: KeyHint? = nil, panel: PanelHint? = nil) {
        self.keys = keys
        self.label = label
        self.action = action
        self.modes = modes
        self.focus = focus
        self.help = help
        self.footer = footer
        self.panelHint = panel
    }
}

/// One line of the help overlay: the keys of its rows and what they do.
public struct HelpLine: Sendable, Equatable {
    public var keys: String
    public var text: String
    public var rows: [KeyBinding]
}

/// The dashboard's one key table, read by the update (dispatch), the help overlay, the footer and
/// the panels' key hints.
public enum KeyBindings {
    static let every: Set<DashboardMode> = [.live, .attached, .replay]
    static let steering: Set<DashboardMode> = [.live, .attached]
    static let replay: Set<DashboardMode> = [.replay]

    private static func ch(_ s: String) -> [Key] { s.map { Key.character($0) } }
    private static func scales(_ keys: String, _ text: String, title: KeyHint? = nil) -> PanelHint {
        PanelHint(panel: .scales, hint: KeyHint(keys, text), title: title)
    }

    /// The table, in the order the help and the footer show it. For a key, a row for the focused
    /// panel wins over a row without a focus; among those, the first row wins.
    public static let table: [KeyBinding] = [
        KeyBinding(ch("q") + [.control("c")], "q", .quit, [.live],
                   help: "stop the run (checkpoint, end record) and leave; q again: leave now", footer: KeyHint("q", "quit")),
        KeyBinding(ch("q") + [.control("c")], "q", .quit, [.attached],
                   help: "detach: leave the dashboard, the run goes on (gradflow attach to come back)", footer: KeyHint("q", "detach")),
        KeyBinding(ch("q") + [.control("c")], "q", .quit, replay, help: "quit", footer: KeyHint("q", "quit")),
        KeyBinding(ch("x"), "x", .stop, steering,
                   help: "stop the run: a checkpoint and its end record (y confirms)", footer: KeyHint("x", "stop")),
        KeyBinding(ch(" "), "space", .togglePause, steering,
                   help: "pause / resume training (at the next step boundary)", footer: KeyHint("space", "pause")),
        KeyBinding(ch(" "), "space", .togglePause, replay, help: "pause / resume the replay", footer: KeyHint("space", "pause")),
        KeyBinding([.left], "←", .seekBack, replay,
                   help: "seek back / forward (⇧ for ten times as far)", footer: KeyHint("←→", "seek")),
        KeyBinding([.right], "→", .seekForward, replay, help: nil),
        KeyBinding([.shiftLeft], "⇧←", .seekFarBack, replay, help: nil),
        KeyBinding([.shiftRight], "⇧→", .seekFarForward, replay, help: nil),
        KeyBinding(ch("["), "[", .slower, replay, help: "replay slower / faster", footer: KeyHint("[ ]", "speed")),
        KeyBinding(ch("]"), "]", .faster, replay, help: nil),
        KeyBinding(ch("."), ".", .stepOnce, replay, help: "while paused: one record", footer: KeyHint(".", "step")),
        KeyBinding(ch("f"), "f", .fork, replay,
                   help: "fork: continue training from here as a new live run", footer: KeyHint("f", "fork")),
        KeyBinding(ch("?h"), "? h", .help, help: "this help (any key closes it; ↑↓ scroll it when it does not fit)", footer: KeyHint("?", "help")),
        KeyBinding([.tab], "Tab", .focusNext, help: "focus the next / previous panel", footer: KeyHint("Tab", "panel")),
        KeyBinding([.backTab], "⇧Tab", .focusPrevious, help: nil),
        KeyBinding([.up, .character("k")], "↑↓ j k", .selectUp, help: "select a band",
                   footer: KeyHint("↑↓", "select"), panel: scales("↑↓", "band")),
        KeyBinding([.down, .character("j")], "", .selectDown, help: nil),
        KeyBinding(ch("+="), "+", .weightUp, steering, help: "selected weight ×1.1 / ÷1.1",
                   footer: KeyHint("+ -", "weight"), panel: scales("+/-", "×1.1", title: KeyHint("+", "×1.1"))),
        KeyBinding(ch("-_"), "-", .weightDown, steering, help: nil),
        KeyBinding(ch("*"), "*", .weightDouble, steering, help: "selected weight ×2 / ÷2 (/ filters when Events is focused)",
                   footer: KeyHint("* /", "×2 ÷2"), panel: scales("* /", "×2 ÷2", title: KeyHint("*", "×2"))),
        KeyBinding(ch("/"), "/", .weightHalve, steering, help: nil),
        KeyBinding([.right], "→", .weightUp, steering, focus: .scales,
                   help: "Scales panel focused: selected weight ×1.1 / ÷1.1 (⇧: ×2 / ÷2)"),
        KeyBinding([.left], "←", .weightDown, steering, focus: .scales, help: nil),
        KeyBinding([.shiftRight], "⇧→", .weightDouble, steering, focus: .scales, help: nil),
        KeyBinding([.shiftLeft], "⇧←", .weightHalve, steering, focus: .scales, help: nil),
        KeyBinding(ch("0"), "0", .weightReset, steering, help: "reset the selected weight to 1", panel: scales("0", "reset")),
        KeyBinding(ch("a"), "a", .toggleAdaptive, steering, help: "toggle adaptive / manual for the selected band's axis",
                   footer: KeyHint("a", "adaptive"), panel: scales("a", "auto")),
        KeyBinding(ch("u"), "u", .undo, steering, help: "undo your last change (sends back the old values: after `a`, the weights too)",
                   footer: KeyHint("u", "undo"), panel: scales("u", "undo")),
        KeyBinding(ch("c"), "c", .checkpoint, steering, help: "write a checkpoint now", footer: KeyHint("c", "checkpoint")),
        KeyBinding(ch("r"), "r", .revert, steering, help: "revert: the twin of the last change becomes the main run",
                   panel: scales("r", "revert")),
        KeyBinding(ch("b"), "b", .twinCheck, steering, help: "A/A check: open a twin window with no change",
                   panel: scales("b", "A/A")),
        KeyBinding(ch("e") + [.enter], "e Enter", .expand, help: "expand the focused panel to the whole screen (Esc or e returns)",
                   footer: KeyHint("e", "expand")),
        KeyBinding([.escape], "Esc", .collapse, help: nil),
        KeyBinding(Panel.allCases.sorted { $0.rawValue < $1.rawValue }.map { Key.character(Character("\($0.rawValue)")) },
                   Panel.keyRange, .togglePanel, help: "hide or show a panel: " + Panel.keyList,
                   footer: KeyHint(Panel.keyRange, "panels")),
        KeyBinding([.up, .character("k")], "↑↓ j k", .scrollUp, focus: .events, help: "Events panel focused: scroll"),
        KeyBinding([.down, .character("j")], "", .scrollDown, focus: .events, help: nil),
        KeyBinding([.pageUp], "PgUp", .scrollPageUp, focus: .events, help: nil),
        KeyBinding([.pageDown], "PgDn", .scrollPageDown, focus: .events, help: nil),
        KeyBinding([.home], "Home", .scrollTop, focus: .events, help: nil),
        KeyBinding(ch("/"), "/", .editEventFilter, focus: .events,
                   help: "Events panel focused: filter events by kind or text (Enter keeps, Esc clears)"),
        KeyBinding([.escape], "Esc", .clearEventFilter, focus: .events, help: nil),
        KeyBinding(ch("l"), "l", .logY, help: "log-y on the loss chart", footer: KeyHint("l", "log")),
        KeyBinding(ch("s"), "s", .smoothing, help: "smoothing: " + smoothingLevels, footer: KeyHint("s", "smooth")),
        KeyBinding(ch("z"), "z", .zoom, help: "zoom: " + zoomLevels, footer: KeyHint("z", "zoom")),
        KeyBinding(ch("g"), "g", .graphStyle, help: "graph style: " + GraphStyle.allCases.map(\.rawValue).joined(separator: ", ")),
        KeyBinding(ch("v"), "v", .perHead, help: "attention per head / per layer"),
        KeyBinding(ch("t"), "t", .theme, help: "next theme", footer: KeyHint("t", "theme")),
    ]

    /// "off, EMA 0.6, 0.9, 0.98", from `DashboardState.smoothingLevels`.
    static var smoothingLevels: String {
        let on = DashboardState.smoothingLevels.filter { $0 != 0 }.map { "\($0)" }
        return (["off"] + (on.isEmpty ? [] : ["EMA " + on.joined(separator: ", ")])).joined(separator: ", ")
    }

    /// "all steps, last 5,000, 1,000, 200", from `DashboardState.zoomLevels`.
    static var zoomLevels: String {
        let last = DashboardState.zoomLevels.compactMap { $0 }.map { Format.grouped($0) }
        return (["all steps"] + (last.isEmpty ? [] : ["last " + last.joined(separator: ", ")])).joined(separator: ", ")
    }

    /// The row a key means in this mode with this panel focused; nil when the key means nothing.
    public static func binding(for key: Key, mode: DashboardMode, focus: Panel?) -> KeyBinding? {
        let rows = table.filter { $0.modes.contains(mode) && $0.keys.contains(key) }
        return rows.first { $0.focus != nil && $0.focus == focus } ?? rows.first { $0.focus == nil }
    }

    /// The action a key means in this mode with this panel focused.
    public static func action(for key: Key, mode: DashboardMode, focus: Panel?) -> KeyAction? {
        binding(for: key, mode: mode, focus: focus)?.action
    }

    /// The help overlay's lines for a mode, in table order.
    public static func helpLines(mode: DashboardMode) -> [HelpLine] {
        var lines: [HelpLine] = []
        for row in table where row.modes.contains(mode) {
            if let help = row.help {
                lines.append(HelpLine(keys: row.label, text: help, rows: [row]))
            } else if !lines.isEmpty {
                if !row.label.isEmpty { lines[lines.count - 1].keys += " " + row.label }
                lines[lines.count - 1].rows.append(row)
            }
        }
        return lines
    }

    /// The help line a row belongs to in a mode.
    public static func helpLine(of row: KeyBinding, mode: DashboardMode) -> HelpLine? {
        helpLines(mode: mode).first { $0.rows.contains(row) }
    }

    /// The footer's key hints for a mode, in table order.
    public static func footerHints(mode: DashboardMode) -> [(action: KeyAction, hint: KeyHint)] {
        table.compactMap { row in row.modes.contains(mode) ? row.footer.map { (row.action, $0) } : nil }
    }

    /// A panel's key hints for a mode, in table order.
    public static func panelHints(_ panel: Panel, mode: DashboardMode) -> [PanelHint] {
        table.compactMap { row in row.modes.contains(mode) && row.panelHint?.panel == panel ? row.panelHint : nil }
    }

    /// How a key is written in the help ("+", "↑", "⇧Tab", "space").
    public static func name(_ key: Key) -> String {
        switch key {
        case .character(" "): return "space"
        case let .character(c): return String(c)
        case .up: return "↑"
        case .down: return "↓"
        case .left: return "←"
        case .right: return "→"
        case .shiftUp: return "⇧↑"
        case .shiftDown: return "⇧↓"
        case .shiftLeft: return "⇧←"
        case .shiftRight: return "⇧→"
        case .tab: return "Tab"
        case .backTab: return "⇧Tab"
        case .enter: return "Enter"
        case .escape: return "Esc"
        case .backspace: return "Backspace"
        case .home: return "Home"
        case .end: return "End"
        case .pageUp: return "PgUp"
        case .pageDown: return "PgDn"
        case let .function(n): return "F\(n)"
        case let .control(c): return "^" + String(c).uppercased()
        case .resize: return "resize"
        case let .unknown(n): return "key \(n)"
        }
    }
}
