import Refinement
import Telemetry
import Terminal

/// The panels of the dashboard, in focus order (Tab); the digit (raw value) toggles one (btop
/// style). Samples comes before Events in focus order, so Events stays the last panel.
public enum Panel: Int, CaseIterable, Sendable {
    case loss = 1, scales, oscillation, attention, samples = 6, events = 5

    public var title: String {
        switch self {
        case .loss: return "Loss"
        case .scales: return "Scales"
        case .oscillation: return "Oscillation"
        case .attention: return "Long-range attention"
        case .events: return "Events"
        case .samples: return "Samples"
        }
    }

    /// The panel a digit key toggles ("1" … the last panel's number).
    public init?(key: Character) {
        guard let n = key.wholeNumberValue, let panel = Panel(rawValue: n) else { return nil }
        self = panel
    }

    /// "1-6": the digit keys that toggle panels.
    public static var keyRange: String { "1-\(allCases.count)" }

    /// The panel's toggle digit as a superscript ("¹"), for its title.
    public var superscript: String { ["⁰", "¹", "²", "³", "⁴", "⁵", "⁶", "⁷", "⁸", "⁹"][rawValue] }

    /// "¹loss ²scales …": every panel by its digit, for the help.
    public static var keyList: String {
        allCases.sorted { $0.rawValue < $1.rawValue }.map { $0.superscript + $0.title.lowercased().split(separator: " ").last! }.joined(separator: " ")
    }
}

/// How line charts are drawn (`--graph`).
public enum GraphStyle: String, CaseIterable, Sendable {
    case braille, block, ascii
}

/// Whether the dashboard watches a trainer in this process, a run another process writes
/// (`gradflow attach`: commands go through the run's command channel), or a replay.
public enum DashboardMode: Sendable, Hashable {
    case live
    case attached
    case replay

    /// Whether keys can change the run (live or attached; a replay is read-only).
    public var steers: Bool { self != .replay }
}

/// An own change the `u` key can take back.
public enum UndoEntry: Sendable, Equatable {
    case weight(WeightTarget, old: Double, new: Double)
    /// A mode switch; from manual to adaptive it keeps the axis' weights as they were, which the
    /// policy then moves, so that undoing it gives them back.
    case adaptive(ScaleAxis, was: Bool, weights: [WeightTarget: Double])
}

/// A message in the status line; errors (refusals) are drawn in the warning colour.
public struct StatusMessage: Sendable, Equatable {
    public var text: String
    public var isError: Bool
    /// Time (seconds, the runner's clock) it was set; it fades after `StatusMessage.lifetime`.
    public var since: Double
    public static let lifetime = 6.0
}

/// All the dashboard's state in one value (Elm style): what the records said, and the UI.
public struct DashboardState: Sendable, Equatable {
    public static let smoothingLevels: [Double] = [0, 0.6, 0.9, 0.98]
    /// Zoom: all steps, or the last N.
    public static let zoomLevels: [Int?] = [nil, 5000, 1000, 200]

    public var data = RunData()
    /// Runs drawn behind this one as ghost lines on the loss chart (`--compare`).
    public var references: [ReferenceRun] = []
    public var mode: DashboardMode
    /// False when there is no command sink (a replay, or a read-only view of a live run).
    public var canControl: Bool
    public var focus: Panel = .scales
    public var selectedRow = 0
    public var smoothingIndex = 0
    public var logY = false
    public var zoomIndex = 0
    public var graphStyle: GraphStyle
    public var themeIndex = 0
    public var themeNames: [String]
    public var expanded: Panel?
    public var showHelp = false
    /// The first help row shown, when the help is taller than the screen.
    public var helpScroll = 0
    public var hidden: Set<Panel> = []
    /// Events panel: how many of the newest matching entries are scrolled past.
    public var eventsScroll = 0
    /// Events panel: only entries whose kind or text contains this (case-insensitive); "" = all.
    public var eventFilter = ""
    /// Whether keys are typing into the Events filter (`/` with the Events panel focused).
    public var editingEventFilter = false
    /// Attention heatmap per head instead of per layer.
    public var perHead = false
    public var status: StatusMessage?
    public var undo: [UndoEntry] = []
    /// Weights sent but not yet confirmed by an event; the next key builds on them.
    public var pendingWeights: [WeightTarget: Double] = [:]
    /// Per target, how many of this dashboard's weight commands still await their event. A pending
    /// weight is dropped only when the last one is answered, so presses faster than the trainer's
    /// steps compose (each builds on the previous press, not on a stale measurement).
    public var unconfirmedWeights: [WeightTarget: Int] = [:]
    /// Per axis, the mode this dashboard's unanswered commands leave it in (true: adaptive; a
    /// weight command makes its axis manual) and how many of them await their event: `a a`
    /// pressed faster than the trainer's steps toggles back, instead of sending the same request
    /// twice.
    public var pendingModes: [ScaleAxis: PendingMode] = [:]
    /// Set by q (or an interrupt) in live mode: .stop was sent, waiting for the end record.
    public var quitting = false
    public var quitRequestedAt: Double?
    public var replayStatus: ReplayStatus?
    /// Replay: steps of the run's checkpoints, where `f` can fork from (empty: no fork).
    public var forkSteps: [Int] = []
    /// The runner's clock, from the latest tick.
    public var now: Double = 0
    /// Attached: the prefix of this dashboard's command ids (unique per dashboard) and how many
    /// it has sent.
    public var commandIdPrefix = ""
    public var commandsSent = 0
    /// Attached: commands sent whose answering event has not come back, by id: what was asked
    /// (the status line's words) and the command, whose pending state its answer settles.
    public var awaitingAnswer: [String: SentCommand] = [:]
    /// Attached: the stop key was pressed once; the next `y` stops the run, any other key cancels.
    public var confirmingStop = false
    /// Attached: seconds since the run file was last written, as the runner last saw it (the
    /// writer's own clock of liveness: a history read in at attach does not make a dead run look
    /// alive).
    public var runFileAge: Double?
    /// Attached: seconds without a new record after which the run is called silent.
    public var silentAfter = RunCatalog.liveWindow
    /// Footer facts.
    public var runFile: String?
    public var colorModeLabel: String
    public var size = Size(width: 80, height: 24)

    public init(mode: DashboardMode, canControl: Bool, graphStyle: GraphStyle = .braille,
                themeNames: [String] = ["default"], runFile: String? = nil, colorModeLabel: String = "") {
        self.mode = mode
        self.canControl = canControl
        self.graphStyle = graphStyle
        self.themeNames = themeNames
        self.runFile = runFile
        self.colorModeLabel = colorModeLabel
    }

    public var smoothing: Double { Self.smoothingLevels[smoothingIndex] }
    public var zoom: Int? { Self.zoomLevels[zoomIndex] }

    /// The steps shown by charts and sparklines (all, or the last `zoom`).
    public var xRange: ClosedRange<Int> {
        // An eval is recorded at the step count after its step (the final one at `totalSteps`),
        // one past the last step record: the range reaches it so the last eval is drawn.
        let last = Swift.max(data.lastStep?.step ?? 0, data.trainLoss.lastX ?? 0, data.lastEval?.step ?? 0, 1)
        let first = data.trainLoss.firstX ?? 0
        if let z = zoom, last - z > first { return (last - z)...last }
        return Swift.min(first, last - 1)...last
    }

    /// The selected band row, if the header has any.
    public var selectedBand: BandRow? {
        selectedRow < data.rows.count ? data.rows[selectedRow] : nil
    }

    /// The weight the next key press starts from: a pending own change, else the latest measured.
    public func currentWeight(row: Int) -> Double {
        guard row < data.rows.count else { return 1 }
        return pendingWeights[data.rows[row].target] ?? data.weight(row: row) ?? 1
    }

    /// Panels drawn now, in focus order.
    /// The events that pass the Events filter, oldest first.
    public var filteredEvents: [EventEntry] {
        guard !eventFilter.isEmpty else { return data.events }
        return data.events.filter { Self.event($0, matches: eventFilter) }
    }

    /// Whether an event's kind name or text contains `filter`, ignoring case.
    public static func event(_ e: EventEntry, matches filter: String) -> Bool {
        let needle = filter.lowercased()
        return "\(e.kind)".contains(needle) || e.text.lowercased().contains(needle)
    }

    public var visiblePanels: [Panel] {
        if let e = expanded { return [e] }
        return Panel.allCases.filter { !hidden.contains($0) }
    }

    /// What the header's state badge says.
    public var runStateLabel: String {
        let outcome = data.end.map { $0.reason == .completed ? "FINISHED" : $0.reason.rawValue.uppercased() }
        if mode == .replay, let r = replayStatus {
            if r.finished || outcome != nil { return "REPLAY END" + (outcome.map { " · " + $0 } ?? "") }
            if r.paused { return "REPLAY PAUSED" }
            return r.speed == 0 ? "REPLAY MAX" : "REPLAY ×\(Format.value(r.speed))"
        }
        if let outcome { return outcome }
        if quitting { return "STOPPING" }
        if data.header == nil { return "WAITING" }
        if let silent = silentSeconds { return "SILENT \(Format.clock(silent))" }
        let state = data.paused ? "PAUSED" : "RUNNING"
        return mode == .attached ? "ATTACHED · " + state : state
    }

    /// Attached to a run that has not ended: seconds since its run file was last written, once
    /// past `silentAfter` (its writer may have died); nil otherwise.
    public var silentSeconds: Double? {
        guard mode == .attached, data.end == nil, let age = runFileAge, age > silentAfter else { return nil }
        return age
    }
}

/// A mode this dashboard asked an axis for, and how many of its mode commands are unanswered.
public struct PendingMode: Equatable, Sendable {
    public var adaptive: Bool
    public var unconfirmed: Int
}

/// A command an attached dashboard sent: the status line's words for it, and the command.
public struct SentCommand: Equatable, Sendable {
    public var what: String
    public var action: Command.Action
}
