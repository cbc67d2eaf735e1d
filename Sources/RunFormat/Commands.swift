// Commands go the other way from records: from an observer (the dashboard, a test, the API, the
// command channel of another process) to the trainer, which applies them only at a step boundary
// and answers each with an EventRecord.

import Refinement

/// Who caused an event or sent a command: the `source` member of an event record
/// (docs/FORMAT.md). Kept open (a raw string) so that a file from a newer writer, with a source
/// this version does not know, still reads; the writers here use the named values only.
public struct EventSource: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public var description: String { rawValue }

    /// A key in the dashboard of the training process.
    public static let key = EventSource(rawValue: "key")
    /// A command-line flag (`--change`, `--twin-at`).
    public static let flag = EventSource(rawValue: "flag")
    /// `--schedule`: the changes of a recorded run, sent again.
    public static let schedule = EventSource(rawValue: "schedule")
    /// An adaptive policy.
    public static let policy = EventSource(rawValue: "policy")
    /// A program driving the trainer in-process.
    public static let api = EventSource(rawValue: "api")
    /// The trainer itself (warnings, a resume, a fork).
    public static let trainer = EventSource(rawValue: "trainer")
    /// The run-file recorder (dropped records).
    public static let recorder = EventSource(rawValue: "recorder")
    /// A twin window's verdict.
    public static let twin = EventSource(rawValue: "twin")
    /// The divergence guard.
    public static let divergenceGuard = EventSource(rawValue: "guard")
    /// SIGINT, SIGTERM or SIGHUP, or the trainer's standard output closed (a stop as for Ctrl-C).
    public static let signal = EventSource(rawValue: "signal")
    /// A study's scripted change.
    public static let study = EventSource(rawValue: "study")
    /// A line of the run's command channel (`commands.jsonl`, `gradflow attach`).
    public static let attach = EventSource(rawValue: "attach")
}

/// Which weight a command changes.
public struct WeightTarget: Sendable, Equatable, Hashable, Codable {
    public var axis: ScaleAxis
    public var band: Int
    /// Context axis only: one layer, or nil for every layer.
    public var layer: Int?

    public init(axis: ScaleAxis, band: Int, layer: Int? = nil) {
        self.axis = axis
        self.band = band
        self.layer = layer
    }
}

/// A request to the running trainer: what to do, who asked, and (for a line of the command
/// channel) the id its answering event names. Codable, so that a data-parallel run can carry rank
/// 0's commands to the other ranks (DataParallel's CommandCoding).
public struct Command: Sendable, Equatable, Codable {
    /// The largest learning-rate scale a command may set (docs/FORMAT.md, `lr_scale`): a factor
    /// beyond it is no learning rate anyone trains with, and 1e300 overflowed torch's float.
    public static let maxLearningRateScale = 1000.0

    /// Whether `scale` is a learning-rate scale a command may set: above 0, at most the maximum.
    public static func isValidLearningRateScale(_ scale: Double) -> Bool {
        scale.isFinite && scale > 0 && scale <= maxLearningRateScale
    }

    /// What a refused scale is told.
    public static func learningRateScaleProblem(_ scale: Double) -> String {
        "the learning-rate scale must be above 0 and at most \(Int(maxLearningRateScale)), not \(scale)"
    }

    /// What a command asks for.
    public enum Action: Sendable, Equatable, Codable {
        /// Set one band's weight (switches that axis to manual).
        case setWeight(WeightTarget, Double)
        /// Switch an axis between its adaptive policy (true) and manual weights (false).
        case setAdaptive(ScaleAxis, Bool)
        /// Context axis, adaptive: set the target share π_b of one band (the others are rescaled).
        case setTarget(band: Int, share: Double)
        /// Multiply the learning-rate schedule by this factor from now on (replaces the previous scale),
        /// a number in (0, `Command.maxLearningRateScale`].
        case scaleLearningRate(Double)
        case pause
        case resume
        /// Write a checkpoint at the next step boundary.
        case checkpointNow
        /// Stop at the next step boundary (checkpoint and end record are written).
        case stop
        /// Open a twin window with no change (A/A check of the paired estimate).
        case openTwin
        /// Make the twin the main run: undo the change under test with its steps.
        case revert
    }

    public var action: Action
    public var source: EventSource
    /// The command channel's id of this command (nil for keys, flags and schedules).
    public var id: String?

    public init(_ action: Action, source: EventSource, id: String? = nil) {
        self.action = action
        self.source = source
        self.id = id
    }

    public static func setWeight(_ target: WeightTarget, _ value: Double, source: EventSource) -> Command {
        Command(.setWeight(target, value), source: source)
    }

    public static func setAdaptive(_ axis: ScaleAxis, _ on: Bool, source: EventSource) -> Command {
        Command(.setAdaptive(axis, on), source: source)
    }

    public static func setTarget(band: Int, share: Double, source: EventSource) -> Command {
        Command(.setTarget(band: band, share: share), source: source)
    }

    public static func pause(source: EventSource) -> Command { Command(.pause, source: source) }
    public static func resume(source: EventSource) -> Command { Command(.resume, source: source) }
    public static func checkpointNow(source: EventSource) -> Command { Command(.checkpointNow, source: source) }
    public static func stop(source: EventSource) -> Command { Command(.stop, source: source) }
    public static func openTwin(source: EventSource) -> Command { Command(.openTwin, source: source) }
    public static func revert(source: EventSource) -> Command { Command(.revert, source: source) }
}

/// Where observers send commands. The trainer's command queue conforms; tests use a recorder;
/// `gradflow attach` writes them to the run's command channel.
public protocol CommandSink: AnyObject, Sendable {
    /// Hands `command` on; returns why it could not be (nil when it was).
    @discardableResult
    func send(_ command: Command) -> String?
}
