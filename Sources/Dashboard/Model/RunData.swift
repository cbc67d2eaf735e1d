import Refinement
import Telemetry

/// One row of the Scales panel: a band of an axis, from the run header.
public struct BandRow: Sendable, Equatable {
    public var axis: ScaleAxis
    /// Index of the axis in the header's axes, and of the band in that axis.
    public var axisIndex: Int
    public var band: Int
    public var info: BandInfo
    public var target: WeightTarget { WeightTarget(axis: axis, band: band) }
    /// "context.long".
    public var label: String { "\(axis.rawValue).\(info.name)" }
}

/// A line of the Events panel.
public struct EventEntry: Sendable, Equatable {
    public enum Kind: Sendable, Equatable { case weight, mode, target, lr, revert, rollback, eval, checkpoint, warning, refused, info, end, verdict }
    public var step: Int
    public var kind: Kind
    public var text: String
    /// For a weight change: measurements before it and, until the next change, since (unpaired).
    public var effect: WeightEffect?
    /// For a change that opened a twin window: its step, and the verdict once the window closed.
    public var changeStep: Int? = nil
    public var verdict: String? = nil
}

/// What a weight change did: band share, the worst oscillating group and validation, before and
/// after (DASHBOARD.md "effect since").
public struct WeightEffect: Sendable, Equatable {
    public var bandName: String
    public var axisIndex: Int
    public var band: Int
    public var shareBefore: Double?
    public var shareAfter: Double?
    public var flipGroup: Int?
    public var flipGroupName: String
    public var flipBefore: Double?
    public var flipAfter: Double?
    public var valBefore: Double?
    public var valAfter: Double?
}

/// An open twin window: what changed and the latest paired sample.
public struct TwinWindow: Sendable, Equatable {
    public var changeStep: Int
    public var axis: ScaleAxis?
    public var band: Int?
    public var sample: TwinSample

    /// Whether the window tests a change of this band row.
    public func covers(_ row: BandRow) -> Bool {
        axis == row.axis && (band == nil || band == row.band)
    }
}

/// A vertical marker on the loss chart where a weight changed.
public struct WeightMarker: Sendable, Equatable {
    public var step: Int
    public var label: String
}

/// Everything the dashboard derives from the header and the records: bounded histories and the
/// latest samples. Reset when a replay restarts its stream; the UI preferences live elsewhere.
public struct RunData: Sendable, Equatable {
    public static let historyCapacity = 1024
    public static let sparkCapacity = 256
    /// Steps a sparkline's history is drawn from when a long run is read in at once (`gradflow
    /// attach`): 64 per sparkline bucket. A longer run's per-band shares and weights, oscillation
    /// and attention mass are taken from the step records on every `historyStride`-th line of the
    /// file (nearly every k-th step); the loss chart, tokens/s, spikes and twin samples from every
    /// step.
    public static let historySteps = sparkCapacity * 64

    /// The stride that gives a run of `steps` steps about `historySteps` sampled steps.
    public static func historyStride(steps: Int) -> Int { Swift.max(1, steps / historySteps) }
    public static let maxEvents = 200
    public static let maxMarkers = 64

    public var header: RunHeader?
    public var rows: [BandRow] = []
    public var recordCount = 0
    public var lastStep: StepRecord?
    /// The latest step record when each recent checkpoint was written: a session resumed from one
    /// goes back to that state (the header's step, the weights), not to the replaced steps'.
    var checkpointStates: [(step: Int, lastStep: StepRecord?)] = []
    static let checkpointStatesKept = 8
    /// The step of the latest checkpoint that counts (nil: none yet, so a resume has nothing to
    /// start from).
    public var latestCheckpointStep: Int? { checkpointStates.last?.step }
    /// The latest step record with the axes' weights and modes (while attach reads a long file
    /// in, most records carry scalars only): what a checkpoint's state is taken from.
    var lastStepWithAxes: StepRecord?
    /// Set by a resume: the steps completed (the checkpoint's) until the next step record.
    var resumedAt: Int?
    public var lastT: Double = 0
    public var trainLoss = DecimatedSeries(capacity: historyCapacity)
    public var tokensPerSecond = DecimatedSeries(capacity: sparkCapacity)
    public var validationNames: [String] = []
    public var validation: [DecimatedSeries] = []
    public var lastEval: EvalRecord? { evaluations.latest }
    var evaluations = RecentEvaluations()
    public var bestValidation: (loss: Double, step: Int)? {
        get { bestLoss.map { ($0, bestStep) } }
        set { bestLoss = newValue?.loss; bestStep = newValue?.step ?? 0 }
    }
    private var bestLoss: Double?
    private var bestStep = 0
    /// Per band row: share of the axis' energy, and the weight.
    public var shares: [DecimatedSeries] = []
    public var weights: [DecimatedSeries] = []
    public var latestShares: [Double?] = []
    /// Per depth group.
    public var flip: [DecimatedSeries] = []
    public var cosine: [DecimatedSeries] = []
    /// Per layer: attention mass in the last context band.
    public var longMass: [DecimatedSeries] = []
    public var spikes = 0
    public var lastSpikeStep: Int?
    public var gradNorms = RecentWindow(capacity: GradNormCV.window)
    public var paused = false
    public var end: EndRecord?
    /// The latest figures of the writing process (CPU, memory, threads, ranks), when recorded.
    public var system: SystemRecord?
    /// Newest last.
    public var events: [EventEntry] = []
    public var markers: [WeightMarker] = []
    /// Each evaluation's sample, oldest first (RunData+Samples.swift).
    public var samples: [SampleEntry] = []
    /// Index in `events` of the weight change whose "after" values still follow the run.
    var openEffect: Int?
    /// The twin's training loss over the current (or last) window: the Loss panel's ghost line.
    public var twinLoss = DecimatedSeries(capacity: historyCapacity)
    /// The open twin window (nil when none is open).
    public var twinWindow: TwinWindow?
    /// The last change that can open a window: its step, axis and band (band nil: the whole axis).
    var lastChange: (step: Int, axis: ScaleAxis?, band: Int?)?

    public init() {}

    public static func == (a: RunData, b: RunData) -> Bool {
        a.recordCount == b.recordCount && a.header == b.header && a.lastStep == b.lastStep && a.events == b.events
    }

    /// Steps completed: the end record's count, else one past the latest step record (step
    /// records carry the 0-based index of the step they describe).
    public var stepsDone: Int {
        end?.step ?? resumedAt ?? lastStep.map(\.stepsCompleted) ?? 0
    }

    /// Names of the depth groups (the depth axis' band names), for the oscillation panel.
    public var groupNames: [String] {
        header?.axes.first { $0.axis == .depth }?.bands.map(\.name) ?? []
    }

    /// Context band descriptions ("0–8"), for the attention panel's columns.
    public var contextBands: [BandInfo] {
        header?.axes.first { $0.axis == .context }?.bands ?? []
    }

    /// Weights the trainer applied (weight events) that no step record carries yet: the step of
    /// the event and the new value. A step record at or after that step supersedes them.
    public var appliedWeights: [WeightTarget: (step: Int, value: Double)] = [:]

    /// Current weight of a band row: a just-applied change, else the latest step's, if measured.
    public func weight(row: Int) -> Double? {
        guard row < rows.count else { return nil }
        let r = rows[row]
        if let applied = appliedWeights[r.target] { return applied.value }
        guard let step = lastStep else { return nil }
        guard let sample = step.axes.first(where: { $0.axis == r.axis }), r.band < sample.bands.count else { return nil }
        return sample.bands[r.band].weight
    }

    /// The bounds a band row's weight respects in its axis' current mode (Refinement's one table).
    public func bounds(row: Int) -> WeightBounds {
        let r = rows[row]
        return AxisBounds.bounds(r.axis, band: r.band, mode: mode(of: r.axis))
    }

    /// Mode of an axis from the latest step (.off when the axis is not measured).
    public func mode(of axis: ScaleAxis) -> AxisMode {
        lastStep?.axes.first { $0.axis == axis }?.mode ?? .off
    }

    /// "val:NAME" for a domain, whether or not the trainer already put the prefix on its name.
    public static func validationLabel(_ name: String) -> String { DomainEval.prefixed(name) }

    /// The first validation domain's latest loss.
    public var latestValidation: Double? { validation.first?.last }
}
