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
    public enum Kind: Sendable, Equatable { case weight, mode, eval, checkpoint, warning, refused, info, end }
    public var step: Int
    public var kind: Kind
    public var text: String
    /// For a weight change: measurements before it and, until the next change, since.
    public var effect: WeightEffect?
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
    public static let maxEvents = 200
    public static let maxMarkers = 64

    public var header: RunHeader?
    public var rows: [BandRow] = []
    public var recordCount = 0
    public var lastStep: StepRecord?
    public var lastT: Double = 0
    public var trainLoss = DecimatedSeries(capacity: historyCapacity)
    public var tokensPerSecond = DecimatedSeries(capacity: sparkCapacity)
    public var validationNames: [String] = []
    public var validation: [DecimatedSeries] = []
    public var lastEval: EvalRecord?
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
    public var gradNorms = RecentWindow(capacity: 100)
    public var paused = false
    public var end: EndRecord?
    /// Newest last.
    public var events: [EventEntry] = []
    public var markers: [WeightMarker] = []
    /// Each evaluation's sample, oldest first (RunData+Samples.swift).
    public var samples: [SampleEntry] = []
    /// Index in `events` of the weight change whose "after" values still follow the run.
    var openEffect: Int?

    public init() {}

    public static func == (a: RunData, b: RunData) -> Bool {
        a.recordCount == b.recordCount && a.header == b.header && a.lastStep == b.lastStep && a.events == b.events
    }

    /// Names of the depth groups (the depth axis' band names), for the oscillation panel.
    public var groupNames: [String] {
        header?.axes.first { $0.axis == .depth }?.bands.map(\.name) ?? []
    }

    /// Context band descriptions ("0–8"), for the attention panel's columns.
    public var contextBands: [BandInfo] {
        header?.axes.first { $0.axis == .context }?.bands ?? []
    }

    /// Current weight of a band row from the latest step, if measured.
    public func weight(row: Int) -> Double? {
        guard row < rows.count, let step = lastStep else { return nil }
        let r = rows[row]
        guard let sample = step.axes.first(where: { $0.axis == r.axis }), r.band < sample.bands.count else { return nil }
        return sample.bands[r.band].weight
    }

    /// Mode of an axis from the latest step (.off when the axis is not measured).
    public func mode(of axis: ScaleAxis) -> WeightMode {
        lastStep?.axes.first { $0.axis == axis }?.mode ?? .off
    }

    /// "val:NAME" for a domain, whether or not the trainer already put the prefix on its name.
    public static func validationLabel(_ name: String) -> String {
        name.hasPrefix("val:") ? name : "val:" + name
    }

    /// The first validation domain's latest loss.
    public var latestValidation: Double? { validation.first?.last }
}
