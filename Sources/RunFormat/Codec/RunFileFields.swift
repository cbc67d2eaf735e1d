// The members of every object of the run file, one table per record type (docs/FORMAT.md).
//
// Each table is an enum: a case's raw value is its key, the cases are in the order the writer
// writes them (FORMAT.md lists them in the same order), and `table` names the members a reader
// requires. The encoder writes keys from these cases; the decoders find members, refuse
// duplicates and report missing ones through `FieldTable`; a test compares every table with
// FORMAT.md. Adding a member: a case here, a line in the encoder and the decoder, a row in FORMAT.md.

import JSONCore
import Refinement

/// The members of one kind of object: keys in writing order, and which ones a reader requires.
///
/// Keys are packed once (`JSONKey`), so finding a member costs a few integer compares; members
/// usually arrive in writing order, so the lookup tries the one after the previous member first.
struct FieldTable<Field: RawRepresentable & CaseIterable> where Field.RawValue == String {
    /// How errors name the object ("step record").
    let object: String
    let fields: [Field]
    let keys: [JSONKey]
    /// Bit i set: `fields[i]` is required.
    let requiredMask: UInt64

    init(_ object: String, required: [Field]) {
        self.object = object
        fields = Array(Field.allCases)
        precondition(fields.count <= 64, "a field table has at most 64 members")
        keys = fields.map { field in
            let utf8 = Array(field.rawValue.utf8)
            precondition(utf8.count <= 24, "run-file keys are at most 24 bytes: \(field.rawValue)")
            return utf8.withUnsafeBufferPointer { JSONKey(bytes: $0) }
        }
        var mask: UInt64 = 0
        for field in required {
            let i = fields.firstIndex { $0.rawValue == field.rawValue }!
            mask |= 1 << UInt64(i)
        }
        requiredMask = mask
    }

    /// The keys of the required members, in writing order.
    var required: [String] {
        fields.indices.filter { requiredMask & (1 << UInt64($0)) != 0 }.map { fields[$0].rawValue }
    }

    /// The packed key of `field`.
    func key(_ field: Field) -> JSONKey {
        keys[fields.firstIndex { $0.rawValue == field.rawValue }!]
    }

    /// The index of `key` in the table, trying `hint` first; nil for a key the table lacks.
    @inline(__always)
    func index(of key: JSONKey, hint: Int) -> Int? {
        keys.withUnsafeBufferPointer { k in
            if hint < k.count && k[hint] == key { return hint }
            for i in 0..<k.count where k[i] == key { return i }
            return nil
        }
    }
}

// MARK: - Header (line 1)

/// The header's members.
enum HeaderField: String, CaseIterable {
    case type, schema
    case runName = "run_name"
    case preset, parameters
    case totalSteps = "total_steps"
    case seed, threads, ranks
    case startTime = "start_time"
    case startISO = "start_iso"
    case data, axes, config
    case runId = "run_id"
    case parent
    static let table = FieldTable<Self>("header", required: allCases.filter { ![.startISO, .ranks, .runId, .parent].contains($0) })
}

/// A forked run's `parent` object in the header (1.2).
enum ParentField: String, CaseIterable {
    case run, step, checkpoint
    static let table = FieldTable<Self>("parent", required: allCases)
}

/// A `data` entry of the header.
enum DataSourceField: String, CaseIterable {
    case name, path, bytes, hash
    static let table = FieldTable<Self>("data", required: allCases)
}

/// An `axes` entry of the header.
enum AxisInfoField: String, CaseIterable {
    case axis, edges, bands
    static let table = FieldTable<Self>("axes", required: allCases)
}

/// A `bands` entry of a header axis.
enum BandInfoField: String, CaseIterable {
    case name, extent, floor, ceiling
    static let table = FieldTable<Self>("bands", required: allCases)
}

// MARK: - Records

/// A step record's members.
enum StepField: String, CaseIterable {
    case type, step, t, loss, lr
    case gradNorm = "grad_norm"
    case clipScale = "clip_scale"
    case tokensPerS = "tokens_per_s"
    case stepMs = "step_ms"
    case axes
    case contextEnergy = "context_energy"
    case attentionMass = "attention_mass"
    case attentionMassByHead = "attention_mass_by_head"
    case oscillation, spike
    case guardFallbacks = "guard_fallbacks"
    case twin
    static let table = FieldTable<Self>(
        "step record", required: [.type, .step, .t, .loss, .lr, .gradNorm, .clipScale, .tokensPerS, .stepMs])
}

/// The members of a step record's `axes` object: one per axis, named as the axis.
extension ScaleAxis {
    static let table = FieldTable<Self>("axes", required: [])
}

/// One axis in a step record's `axes`.
enum AxisSampleField: String, CaseIterable {
    case mode, weight, energy
    static let table = FieldTable<Self>("axis", required: allCases)
}

/// A step record's `oscillation` object (arrays with one entry per depth group).
enum OscillationField: String, CaseIterable {
    case flipRate = "flip_rate"
    case gradCos = "grad_cos"
    case updateCos = "update_cos"
    case relUpdate = "rel_update"
    static let table = FieldTable<Self>("oscillation", required: [])
}

/// An eval record's members.
enum EvalField: String, CaseIterable {
    case type, step, t, domains
    case lossByPosition = "loss_by_position"
    case contextGain = "context_gain"
    case samplePrompt = "sample_prompt"
    case sample
    static let table = FieldTable<Self>("eval record", required: [.type, .step, .t, .domains])
}

/// A `domains` entry of an eval record (`bpb` is written for people; readers derive it).
enum DomainField: String, CaseIterable {
    case name, loss, bpb
    static let table = FieldTable<Self>("eval domain", required: [.name, .loss])
}

/// A `context_gain` entry of an eval record.
enum ContextGainField: String, CaseIterable {
    case window, delta
    static let table = FieldTable<Self>("context gain", required: allCases)
}

/// An event record's members.
enum EventField: String, CaseIterable {
    case type, step, t, kind, axis, band, layer, old, new, source
    case commandId = "command_id"
    case message
    // A verdict's members (1.2).
    case changeStep = "change_step"
    case verdict, delta, ci, steps, partial
    case valDelta = "val_delta"
    // A rollback's members (1.2).
    case restoredStep = "restored_step"
    case stepsLost = "steps_lost"
    case batchesSkipped = "batches_skipped"
    case reverted
    static let table = FieldTable<Self>("event record", required: [.type, .step, .t, .kind, .source])
}

/// A step record's `twin` object (1.2).
enum TwinField: String, CaseIterable {
    case loss, steps, of
    case changeStep = "change_step"
    case delta, ci
    static let table = FieldTable<Self>("twin", required: [.loss, .steps, .of, .changeStep, .delta])
}

/// An entry of a verdict's `val_delta`.
enum DomainDeltaField: String, CaseIterable {
    case name, delta
    static let table = FieldTable<Self>("val_delta", required: allCases)
}

/// A system record's members (1.3).
enum SystemField: String, CaseIterable {
    case type, step, t
    case cpuPercent = "cpu_percent"
    case rssBytes = "rss_bytes"
    case threads, ranks
    case gpuMemoryBytes = "gpu_memory_bytes"
    case gpuUtilPercent = "gpu_util_percent"
    static let table = FieldTable<Self>("system record", required: [.type, .step, .t, .cpuPercent, .rssBytes, .threads, .ranks])
}

/// A checkpoint record's members.
enum CheckpointField: String, CaseIterable {
    case type, step, t, path, bytes, ms
    static let table = FieldTable<Self>("checkpoint record", required: allCases)
}

/// An end record's members.
enum EndField: String, CaseIterable {
    case type, step, t, reason, failure
    case finalLoss = "final_loss"
    case bestValLoss = "best_val_loss"
    case message
    static let table = FieldTable<Self>("end record", required: [.type, .step, .t, .reason])
}

extension JSONScanner {
    /// Reads an object whose members `table` lists: `member` reads each known member's value
    /// (called once per member, in the file's order); unknown members are skipped (nested
    /// `depth` deep); a duplicated known member, or a required one that is missing, is an error
    /// naming it (and `object`, which defaults to the table's name).
    @inline(__always)
    mutating func members<Field>(_ table: FieldTable<Field>, depth: Int, object: @autoclosure () -> String? = nil,
                                 _ member: (Field, inout JSONScanner) throws -> Void) throws {
        var seen: UInt64 = 0
        var next = 0
        try beginObject()
        var first = true
        while let key = try nextMember(&first) {
            guard let i = table.index(of: key, hint: next) else {
                try skipValue(depth: depth)
                continue
            }
            let bit: UInt64 = 1 << UInt64(i)
            if seen & bit != 0 { throw JSONSyntaxError(offset: offset, message: "duplicate member \"\(key)\"") }
            seen |= bit
            next = i + 1
            try member(table.fields[i], &self)
        }
        let missing = table.requiredMask & ~seen
        if missing != 0 {
            let name = table.fields[missing.trailingZeroBitCount].rawValue
            throw JSONSyntaxError(offset: 0, message: "\(object() ?? table.object) lacks member \"\(name)\"")
        }
    }
}

/// The members every record starts with.
protocol RecordHead: RawRepresentable, Equatable where RawValue == String {
    static var type: Self { get }
    static var step: Self { get }
    static var t: Self { get }
}

extension StepField: RecordHead {}
extension EvalField: RecordHead {}
extension EventField: RecordHead {}
extension CheckpointField: RecordHead {}
extension EndField: RecordHead {}
extension SystemField: RecordHead {}
