// What the paired twin and the divergence guard add to records (schema 1.2, docs/FORMAT.md
// "Twins, verdicts and rollbacks"), and how those members are written and read. Kept in one file
// so the run-file codec only calls in here.
import JSONCore

/// The twin's side of one step while a twin window is open.
public struct TwinSample: Sendable, Equatable {
    /// The twin's training loss on the same batch (nats).
    public var loss: Double
    /// Paired steps so far in this window, this one included.
    public var pairedSteps: Int
    /// Length of the window (`--twin-steps`).
    public var windowSteps: Int
    /// Step of the change under test (the window opened at this step boundary).
    public var changeStep: Int
    /// Running paired mean of d = loss_main − loss_twin over the window (nats).
    public var delta: Double
    /// Its 95 % interval (nil while too few steps are paired for one).
    public var low: Double?
    public var high: Double?

    public init(loss: Double, pairedSteps: Int, windowSteps: Int, changeStep: Int, delta: Double,
                low: Double? = nil, high: Double? = nil) {
        self.loss = loss
        self.pairedSteps = pairedSteps
        self.windowSteps = windowSteps
        self.changeStep = changeStep
        self.delta = delta
        self.low = low
        self.high = high
    }
}

/// How a twin window ended: the paired estimate of the change's effect.
public struct VerdictInfo: Sendable, Equatable {
    /// The three verdicts (docs/METHOD.md, "Did a change help?").
    public enum Word: String, Sendable, CaseIterable {
        case helped
        case hurt
        case noEffect = "no detectable effect"
    }

    /// Validation Δ (main − twin) of one domain at the window's end, on the same windows.
    public struct DomainDelta: Sendable, Equatable {
        public var name: String
        public var delta: Double
        public init(name: String, delta: Double) {
            self.name = name
            self.delta = delta
        }
    }

    /// Step of the change (the event that opened the window).
    public var changeStep: Int
    public var word: Word
    /// Paired mean of d_t = loss_main − loss_twin (nats; negative: the change lowered the loss).
    public var delta: Double
    /// 95 % interval of the mean (nil when too few steps were paired).
    public var low: Double?
    public var high: Double?
    /// Paired steps used.
    public var steps: Int
    /// The window closed early (a new change, a revert, a rollback or the end of the run).
    public var partial: Bool
    /// Validation Δ per domain at the window's end (empty when the window closed without one).
    public var validation: [DomainDelta]

    public init(changeStep: Int, word: Word, delta: Double, low: Double?, high: Double?, steps: Int,
                partial: Bool, validation: [DomainDelta]) {
        self.changeStep = changeStep
        self.word = word
        self.delta = delta
        self.low = low
        self.high = high
        self.steps = steps
        self.partial = partial
        self.validation = validation
    }
}

/// What a rollback of the divergence guard did.
public struct RollbackInfo: Sendable, Equatable {
    /// The step of the snapshot the state went back to.
    public var restoredStep: Int
    /// Steps whose updates were discarded (from the snapshot to the bad step, inclusive).
    public var stepsLost: Int
    /// Batches the data order moved past (the ones that led to the divergence).
    public var batchesSkipped: Int
    /// The changes since the snapshot that were undone with it, as events describe them.
    public var reverted: [String]

    public init(restoredStep: Int, stepsLost: Int, batchesSkipped: Int, reverted: [String]) {
        self.restoredStep = restoredStep
        self.stepsLost = stepsLost
        self.batchesSkipped = batchesSkipped
        self.reverted = reverted
    }
}

// MARK: - Run-file members

enum TwinCoding {
    /// `"twin": {"loss", "steps", "of", "change_step", "delta", "ci"}` inside a step record.
    static func write(_ t: TwinSample, _ w: inout JSONWriter) {
        w.key(StepField.twin)
        w.beginObject()
        w.key(TwinField.loss); w.double(t.loss)
        w.key(TwinField.steps); w.int(t.pairedSteps)
        w.key(TwinField.of); w.int(t.windowSteps)
        w.key(TwinField.changeStep); w.int(t.changeStep)
        w.key(TwinField.delta); w.double(t.delta)
        if let lo = t.low, let hi = t.high { w.key(TwinField.ci); w.doubles([lo, hi]) }
        w.endObject()
    }

    static func readTwin(_ s: inout JSONScanner) throws -> TwinSample {
        var t = TwinSample(loss: .nan, pairedSteps: 0, windowSteps: 0, changeStep: 0, delta: .nan)
        try s.members(TwinField.table, depth: 2) { field, s in
            switch field {
            case .loss: t.loss = try s.double()
            case .steps: t.pairedSteps = try s.int()
            case .of: t.windowSteps = try s.int()
            case .changeStep: t.changeStep = try s.int()
            case .delta: t.delta = try s.double()
            case .ci: (t.low, t.high) = try interval(&s)
            }
        }
        return t
    }

    /// The verdict's and the rollback's members, flat in the event record.
    static func write(event r: EventRecord, _ w: inout JSONWriter) {
        if let v = r.verdict {
            w.key(EventField.changeStep); w.int(v.changeStep)
            w.key(EventField.verdict); w.string(v.word.rawValue)
            w.key(EventField.delta); w.double(v.delta)
            if let lo = v.low, let hi = v.high { w.key(EventField.ci); w.doubles([lo, hi]) }
            w.key(EventField.steps); w.int(v.steps)
            w.key(EventField.partial); w.bool(v.partial)
            w.key(EventField.valDelta)
            w.beginArray()
            for d in v.validation {
                w.beginObject()
                w.key(DomainDeltaField.name); w.string(d.name)
                w.key(DomainDeltaField.delta); w.double(d.delta)
                w.endObject()
            }
            w.endArray()
        }
        if let b = r.rollback {
            w.key(EventField.restoredStep); w.int(b.restoredStep)
            w.key(EventField.stepsLost); w.int(b.stepsLost)
            w.key(EventField.batchesSkipped); w.int(b.batchesSkipped)
            w.key(EventField.reverted)
            w.beginArray()
            for x in b.reverted { w.string(x) }
            w.endArray()
        }
    }

    /// Reads one of an event record's verdict or rollback members into `r`.
    static func readEventMember(_ field: EventField, _ s: inout JSONScanner, _ r: inout EventRecord) throws {
        var v = r.verdict ?? VerdictInfo(changeStep: 0, word: .noEffect, delta: .nan, low: nil, high: nil, steps: 0,
                                         partial: false, validation: [])
        var b = r.rollback ?? RollbackInfo(restoredStep: 0, stepsLost: 0, batchesSkipped: 0, reverted: [])
        switch field {
        case .changeStep: v.changeStep = try s.int()
        case .verdict: v.word = try s.named(VerdictInfo.Word.self, "verdict")
        case .delta: v.delta = try s.double()
        case .ci: (v.low, v.high) = try interval(&s)
        case .steps: v.steps = try s.int()
        case .partial: v.partial = try s.bool()
        case .valDelta:
            v.validation = []
            try s.beginArray()
            var first = true
            while try s.nextElement(&first) {
                var d = VerdictInfo.DomainDelta(name: "", delta: .nan)
                try s.members(DomainDeltaField.table, depth: 3) { field, s in
                    switch field {
                    case .name: d.name = try s.string()
                    case .delta: d.delta = try s.double()
                    }
                }
                v.validation.append(d)
            }
        case .restoredStep: b.restoredStep = try s.int()
        case .stepsLost: b.stepsLost = try s.int()
        case .batchesSkipped: b.batchesSkipped = try s.int()
        case .reverted:
            b.reverted = []
            try s.beginArray()
            var first = true
            while try s.nextElement(&first) { b.reverted.append(try s.string()) }
        default:
            preconditionFailure("not a verdict or rollback member: \(field)")
        }
        switch field {
        case .restoredStep, .stepsLost, .batchesSkipped, .reverted: r.rollback = b
        default: r.verdict = v
        }
    }

    static func interval(_ s: inout JSONScanner) throws -> (Double?, Double?) {
        let at = s.offset
        var values: [Double] = []
        try s.doubleArray(into: &values)
        guard values.count == 2 else { throw JSONSyntaxError(offset: at, message: "\"ci\" must be [low, high]") }
        return (values[0], values[1])
    }
}
