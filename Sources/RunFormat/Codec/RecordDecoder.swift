import JSONCore
import Refinement

/// Turns run-file lines back into the header and records (the inverse of `RecordEncoder`).
///
/// Decodes straight from the line's bytes into record values with `JSONScanner`, without an
/// intermediate tree, which is what makes a million step records readable in about a second.
/// Members may come in any order; unknown members are skipped (minor schema versions only add
/// members); a duplicated known member, a missing required one, or a value of the wrong kind is an
/// error that names the member.
public enum RecordDecoder {
    /// The record types of the format.
    public enum LineType: String, Sendable {
        case header, step, eval, event, checkpoint, end, system
    }

    // MARK: - Records

    /// How much of a step record to build; what is not built is still checked for syntax.
    public enum StepDetail: Sendable {
        /// Every field.
        case full
        /// Without `context_energy` and `attention_mass_by_head` (left empty): what a history of
        /// the run needs (a dashboard reading in a long run keeps only `attention_mass` per layer).
        case history
        /// Without the per-layer arrays (`context_energy`, `attention_mass`,
        /// `attention_mass_by_head`, left empty): enough for progress lines and study metrics.
        case noLayerArrays
        /// Only the scalars (`axes` and `oscillation` left empty too): enough for a summary.
        case scalars
    }

    /// Decodes one record line (without its newline); `stepDetail` says how much of a step
    /// record to build.
    /// `checksSkippedNumbers`: see `JSONScanner.checksSkippedNumbers`.
    public static func record(_ line: UnsafeBufferPointer<UInt8>, stepDetail: StepDetail = .full,
                              checksSkippedNumbers: Bool = true) throws -> Record {
        let type = try lineType(line)
        var s = JSONScanner(line)
        s.checksSkippedNumbers = checksSkippedNumbers
        let record: Record
        switch type {
        case .step: record = .step(try step(&s, detail: stepDetail))
        case .eval: record = .eval(try eval(&s))
        case .event: record = .event(try event(&s))
        case .checkpoint: record = .checkpoint(try checkpoint(&s))
        case .end: record = .end(try end(&s))
        case .system: record = .system(try system(&s))
        case .header: throw JSONSyntaxError(offset: 0, message: "a second header line")
        }
        try s.expectEnd()
        return record
    }

    /// Decodes one record line given as bytes.
    public static func record(_ bytes: [UInt8]) throws -> Record {
        try bytes.withUnsafeBufferPointer { try record($0) }
    }

    static let typeKey = StepField.table.key(.type)

    /// The value of the line's top-level `type` member (looked for first at the front, where the
    /// writer puts it).
    public static func lineType(_ line: UnsafeBufferPointer<UInt8>) throws -> LineType {
        var s = JSONScanner(line)
        try s.beginObject()
        var first = true
        while let key = try s.nextMember(&first) {
            if key == Self.typeKey {
                let at = s.offset
                let name = try s.string()
                guard let type = LineType(rawValue: name) else {
                    throw JSONSyntaxError(offset: at, message: "unknown record type \"\(name)\"")
                }
                return type
            }
            try s.skipValue(depth: 1)
        }
        throw JSONSyntaxError(offset: 0, message: "missing member \"type\"")
    }

    static func step(_ s: inout JSONScanner, detail: StepDetail = .full) throws -> StepRecord {
        let layers = detail == .full, vectors = detail != .scalars
        let mass = layers || detail == .history
        var r = StepRecord(step: 0, t: 0, loss: 0, learningRate: 0, gradNorm: 0, clipScale: 1,
                           tokensPerSecond: 0, stepMilliseconds: 0)
        try s.members(StepField.table, depth: 1) { field, s in
            switch field {
            case .type: try s.skipString()
            case .step: r.step = try s.int()
            case .t: r.t = try s.double()
            case .loss: r.loss = try s.double()
            case .lr: r.learningRate = try s.double()
            case .gradNorm: r.gradNorm = try s.float()
            case .clipScale: r.clipScale = try s.float()
            case .tokensPerS: r.tokensPerSecond = try s.float()
            case .stepMs: r.stepMilliseconds = try s.float()
            // What the detail leaves out is only checked for syntax.
            case .axes where !vectors, .oscillation where !vectors,
                 .contextEnergy where !layers, .attentionMass where !mass, .attentionMassByHead where !layers:
                try s.skipValue(depth: 1)
            case .axes: r.axes = try axes(&s)
            case .contextEnergy: r.contextEnergyByLayer = try matrix(&s)
            case .attentionMass: r.attentionMass = try matrix(&s)
            case .attentionMassByHead:
                var layers: [[[Double]]] = []
                layers.reserveCapacity(8)
                try s.beginArray()
                var f = true
                while try s.nextElement(&f) { layers.append(try matrix(&s)) }
                r.attentionMassByHead = layers
            case .oscillation: r.oscillation = try oscillation(&s)
            case .spike: r.spike = try s.bool()
            case .guardFallbacks: r.guardFallbacks = try s.int()
            case .twin: r.twin = try TwinCoding.readTwin(&s)
            }
        }
        return r
    }

    /// An array of single-precision statistics.
    static func floats(_ s: inout JSONScanner) throws -> [Double] {
        var out: [Double] = []
        out.reserveCapacity(4)
        try s.floatArray(into: &out)
        return out
    }

    static func matrix(_ s: inout JSONScanner) throws -> [[Double]] {
        var out: [[Double]] = []
        out.reserveCapacity(8)
        try s.beginArray()
        var first = true
        while try s.nextElement(&first) { out.append(try floats(&s)) }
        return out
    }

    static func axes(_ s: inout JSONScanner) throws -> [AxisSample] {
        var out: [AxisSample] = []
        try s.members(ScaleAxis.table, depth: 2) { axis, s in out.append(try axisSample(axis, &s)) }
        return out
    }

    static func axisSample(_ axis: ScaleAxis, _ s: inout JSONScanner) throws -> AxisSample {
        var mode = AxisMode.manual
        // Weights and energies go straight into the band samples (no temporary arrays).
        var bands: [BandSample] = []
        bands.reserveCapacity(4)
        var weights = 0, energies = 0
        let start = s.offset
        try s.members(AxisSampleField.table, depth: 3, object: "axis \"\(axis.rawValue)\"") { field, s in
            switch field {
            case .mode:
                mode = try s.named(AxisMode.self, "weight mode")
            case .weight:
                try s.beginArray()
                var f = true
                while try s.nextElement(&f) {
                    let v = try s.float()
                    if weights < bands.count { bands[weights].weight = v } else { bands.append(BandSample(weight: v, energy: .nan)) }
                    weights += 1
                }
            case .energy:
                try s.beginArray()
                var f = true
                while try s.nextElement(&f) {
                    let v = try s.float()
                    if energies < bands.count { bands[energies].energy = v } else { bands.append(BandSample(weight: .nan, energy: v)) }
                    energies += 1
                }
            }
        }
        guard weights == energies else {
            throw JSONSyntaxError(offset: start, message: "axis \"\(axis.rawValue)\": \(weights) weights but \(energies) energies")
        }
        return AxisSample(axis: axis, mode: mode, bands: bands)
    }

    static func oscillation(_ s: inout JSONScanner) throws -> [OscillationSample] {
        // The arrays fill the samples in place (no temporary arrays); `update_cos` is optional.
        var out: [OscillationSample] = []
        out.reserveCapacity(4)
        var counts = (0, 0, 0, 0)
        let start = s.offset
        try s.members(OscillationField.table, depth: 2) { field, s in
            try s.beginArray()
            var f = true
            while try s.nextElement(&f) {
                let v = try s.float()
                let i: Int
                switch field {
                case .flipRate: i = counts.0; counts.0 += 1
                case .gradCos: i = counts.1; counts.1 += 1
                case .relUpdate: i = counts.2; counts.2 += 1
                case .updateCos: i = counts.3; counts.3 += 1
                }
                if i == out.count { out.append(OscillationSample(flipRate: .nan, gradientCosine: .nan, relativeUpdate: .nan)) }
                switch field {
                case .flipRate: out[i].flipRate = v
                case .gradCos: out[i].gradientCosine = v
                case .relUpdate: out[i].relativeUpdate = v
                case .updateCos: out[i].updateCosine = v
                }
            }
        }
        guard counts.0 == counts.1 && counts.1 == counts.2 && (counts.3 == 0 || counts.3 == counts.0) else {
            let sizes = [counts.0, counts.1, counts.2] + (counts.3 > 0 ? [counts.3] : [])
            throw JSONSyntaxError(offset: start, message: "oscillation arrays differ in length (\(sizes.map(String.init).joined(separator: ", ")))")
        }
        return out
    }

    /// Reads a record other than a step record: `type`, `step` and `t` here, the rest by `member`.
    @inline(__always)
    static func record<Field: RecordHead, R: TimedRecord>(
        _ s: inout JSONScanner, _ table: FieldTable<Field>, _ empty: R,
        _ member: (Field, inout R, inout JSONScanner) throws -> Void) throws -> R {
        var r = empty
        try s.members(table, depth: 1) { field, s in
            switch field {
            case Field.type: try s.skipString()
            case Field.step: r.step = try s.int()
            case Field.t: r.t = try s.double()
            default: try member(field, &r, &s)
            }
        }
        return r
    }

    static func eval(_ s: inout JSONScanner) throws -> EvalRecord {
        try record(&s, EvalField.table, EvalRecord(step: 0, t: 0, domains: [])) { field, r, s in
            switch field {
            case .type, .step, .t: break
            case .domains:
                try s.beginArray()
                var f = true
                while try s.nextElement(&f) { r.domains.append(try domain(&s)) }
            case .lossByPosition: r.lossByPosition = try floats(&s)
            case .contextGain:
                try s.beginArray()
                var f = true
                while try s.nextElement(&f) { r.contextGain.append(try gain(&s)) }
            case .samplePrompt: r.samplePrompt = try s.string()
            case .sample: r.sample = try s.string()
            }
        }
    }

    static func domain(_ s: inout JSONScanner) throws -> DomainEval {
        var d = DomainEval(name: "", loss: 0)
        try s.members(DomainField.table, depth: 3) { field, s in
            switch field {
            case .name: d.name = try s.string()
            case .loss: d.loss = try s.double()
            case .bpb: try s.skipValue(depth: 3)   // derived from loss
            }
        }
        return d
    }

    static func gain(_ s: inout JSONScanner) throws -> ContextGain {
        var g = ContextGain(window: 0, delta: 0)
        try s.members(ContextGainField.table, depth: 3) { field, s in
            switch field {
            case .window: g.window = try s.int()
            case .delta: g.delta = try s.float()
            }
        }
        return g
    }

    static func event(_ s: inout JSONScanner) throws -> EventRecord {
        try record(&s, EventField.table, EventRecord(step: 0, t: 0, kind: .warning, source: EventSource(rawValue: ""))) { field, r, s in
            switch field {
            case .type, .step, .t: break
            case .kind: r.kind = try s.named(EventRecord.Kind.self, "event kind")
            case .axis: r.axis = try s.named(ScaleAxis.self, "axis")
            case .band: r.band = try s.optionalInt()
            case .layer: r.layer = try s.optionalInt()
            case .old: r.oldValue = try s.optionalDouble()
            case .new: r.newValue = try s.optionalDouble()
            case .source: r.source = EventSource(rawValue: try s.string())
            case .commandId: r.commandId = try s.string()
            case .message: r.message = try s.string()
            default: try TwinCoding.readEventMember(field, &s, &r)
            }
        }
    }

    static func checkpoint(_ s: inout JSONScanner) throws -> CheckpointRecord {
        try record(&s, CheckpointField.table, CheckpointRecord(step: 0, t: 0, path: "", bytes: 0, milliseconds: 0)) { field, r, s in
            switch field {
            case .type, .step, .t: break
            case .path: r.path = try s.string()
            case .bytes: r.bytes = try s.int()
            case .ms: r.milliseconds = try s.float()
            }
        }
    }

    static func system(_ s: inout JSONScanner) throws -> SystemRecord {
        try record(&s, SystemField.table, SystemRecord(step: 0, t: 0, cpuPercent: 0, residentBytes: 0, threads: 0, ranks: 1)) { field, r, s in
            switch field {
            case .type, .step, .t: break
            case .cpuPercent: r.cpuPercent = try s.float()
            case .rssBytes: r.residentBytes = try s.int()
            case .threads: r.threads = try s.int()
            case .ranks: r.ranks = try s.int()
            case .gpuMemoryBytes: r.gpuMemoryBytes = try s.optionalInt()
            case .gpuUtilPercent: r.gpuUtilPercent = try s.optionalDouble().map { Double(Float($0)) }
            }
        }
    }

    static func end(_ s: inout JSONScanner) throws -> EndRecord {
        let empty = EndRecord(step: 0, t: 0, reason: .completed, finalLoss: nil, bestValidationLoss: nil)
        return try record(&s, EndField.table, empty) { field, r, s in
            switch field {
            case .type, .step, .t: break
            case .reason: r.reason = try s.named(EndRecord.Reason.self, "end reason")
            case .failure: r.failure = EndRecord.Failure(rawValue: try s.string()) ?? .error
            case .finalLoss: r.finalLoss = try s.optionalDouble()
            case .bestValLoss: r.bestValidationLoss = try s.optionalDouble()
            case .message: r.message = try s.string()
            }
        }
    }
}

/// A record with a step and a time (every record type but the header).
protocol TimedRecord {
    var step: Int { get set }
    var t: Double { get set }
}

extension EvalRecord: TimedRecord {}
extension EventRecord: TimedRecord {}
extension CheckpointRecord: TimedRecord {}
extension EndRecord: TimedRecord {}
extension SystemRecord: TimedRecord {}

extension JSONScanner {
    /// A string naming a case of `T`; an unknown name is an error at the string's offset.
    mutating func named<T: RawRepresentable>(_: T.Type, _ what: String) throws -> T where T.RawValue == String {
        let at = offset
        let name = try string()
        guard let value = T(rawValue: name) else {
            throw JSONSyntaxError(offset: at, message: "unknown \(what) \"\(name)\"")
        }
        return value
    }
}
