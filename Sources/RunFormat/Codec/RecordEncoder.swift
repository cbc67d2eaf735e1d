import Foundation
import JSONCore

/// Turns the header and records into run-file lines (docs/FORMAT.md lists every key).
///
/// Each call returns one complete line, newline included, so the writer can hand it to a single
/// write(2). Keys are snake_case and always appear in the same order.
public struct RecordEncoder {
    private var w = JSONWriter(capacity: 4096)

    public init() {}

    /// The header line.
    public mutating func encode(_ h: RunHeader) -> [UInt8] {
        w.reset()
        w.beginObject()
        w.key(HeaderField.type); w.literal("header")
        w.key(HeaderField.schema); w.string(h.schema)
        w.key(HeaderField.runName); w.string(h.runName)
        w.key(HeaderField.preset); w.string(h.preset)
        w.key(HeaderField.parameters); w.int(h.parameters)
        w.key(HeaderField.totalSteps); w.int(h.totalSteps)
        w.key(HeaderField.seed); w.uint64(h.seed)
        w.key(HeaderField.threads); w.int(h.threads)
        if h.ranks > 1 { w.key(HeaderField.ranks); w.int(h.ranks) }
        w.key(HeaderField.startTime); w.double(h.startTime)
        w.key(HeaderField.startISO); w.string(RecordEncoder.iso8601(h.startTime))
        w.key(HeaderField.data)
        w.beginArray()
        for d in h.data {
            w.beginObject()
            w.key(DataSourceField.name); w.string(d.name)
            w.key(DataSourceField.path); w.string(d.path)
            w.key(DataSourceField.bytes); w.int(d.bytes)
            w.key(DataSourceField.hash); w.string(d.hash)
            w.endObject()
        }
        w.endArray()
        w.key(HeaderField.axes)
        w.beginArray()
        for a in h.axes {
            w.beginObject()
            w.key(AxisInfoField.axis); w.string(a.axis.rawValue)
            w.key(AxisInfoField.edges); w.doubles(a.edges)
            w.key(AxisInfoField.bands)
            w.beginArray()
            for b in a.bands {
                w.beginObject()
                w.key(BandInfoField.name); w.string(b.name)
                w.key(BandInfoField.extent); w.string(b.extent)
                w.key(BandInfoField.floor); w.double(b.floor)
                w.key(BandInfoField.ceiling); w.double(b.ceiling)
                w.endObject()
            }
            w.endArray()
            w.endObject()
        }
        w.endArray()
        w.key(HeaderField.config); w.value(h.config)
        if !h.runId.isEmpty { w.key(HeaderField.runId); w.string(h.runId) }
        if let p = h.parent {
            w.key(HeaderField.parent)
            w.beginObject()
            w.key(ParentField.run); w.string(p.run)
            w.key(ParentField.step); w.int(p.step)
            w.key(ParentField.checkpoint); w.string(p.checkpoint)
            w.endObject()
        }
        w.endObject()
        return line()
    }

    /// One record's line.
    public mutating func encode(_ record: Record) -> [UInt8] {
        w.reset()
        switch record {
        case let .step(r): step(r)
        case let .eval(r): eval(r)
        case let .event(r): event(r)
        case let .checkpoint(r): checkpoint(r)
        case let .end(r): end(r)
        case let .system(r): system(r)
        }
        return line()
    }

    private mutating func line() -> [UInt8] {
        w.bytes.append(0x0A)
        return w.bytes
    }

    private mutating func start<F: RecordHead>(_: F.Type, _ type: StaticString, _ step: Int, _ t: Double) {
        w.beginObject()
        w.key(F.type); w.literal(type)
        w.key(F.step); w.int(step)
        w.key(F.t); w.double(t)
    }

    private mutating func step(_ r: StepRecord) {
        start(StepField.self, "step", r.step, r.t)
        w.key(StepField.loss); w.double(r.loss)
        w.key(StepField.lr); w.double(r.learningRate)
        // Measurements go out at single precision (docs/FORMAT.md, "Numbers").
        w.key(StepField.gradNorm); w.float(r.gradNorm)
        w.key(StepField.clipScale); w.float(r.clipScale)
        w.key(StepField.tokensPerS); w.float(r.tokensPerSecond)
        w.key(StepField.stepMs); w.float(r.stepMilliseconds)
        w.key(StepField.axes)
        w.beginObject()
        for a in r.axes {
            w.key(a.axis)
            w.beginObject()
            w.key(AxisSampleField.mode); w.string(a.mode.rawValue)
            w.key(AxisSampleField.weight)
            w.beginArray()
            for b in a.bands { w.float(b.weight) }
            w.endArray()
            w.key(AxisSampleField.energy)
            w.beginArray()
            for b in a.bands { w.float(b.energy) }
            w.endArray()
            w.endObject()
        }
        w.endObject()
        w.key(StepField.contextEnergy); w.floatMatrix(r.contextEnergyByLayer)
        w.key(StepField.attentionMass); w.floatMatrix(r.attentionMass)
        w.key(StepField.attentionMassByHead)
        w.beginArray()
        for layer in r.attentionMassByHead { w.floatMatrix(layer) }
        w.endArray()
        w.key(StepField.oscillation)
        w.beginObject()
        w.key(OscillationField.flipRate); w.beginArray(); for o in r.oscillation { w.float(o.flipRate) }; w.endArray()
        w.key(OscillationField.gradCos); w.beginArray(); for o in r.oscillation { w.float(o.gradientCosine) }; w.endArray()
        if !r.oscillation.isEmpty, r.oscillation.allSatisfy({ $0.updateCosine != nil }) {
            w.key(OscillationField.updateCos); w.beginArray(); for o in r.oscillation { w.float(o.updateCosine ?? .nan) }; w.endArray()
        }
        w.key(OscillationField.relUpdate); w.beginArray(); for o in r.oscillation { w.float(o.relativeUpdate) }; w.endArray()
        w.endObject()
        w.key(StepField.spike); w.bool(r.spike)
        w.key(StepField.guardFallbacks); w.int(r.guardFallbacks)
        if let twin = r.twin { TwinCoding.write(twin, &w) }
        w.endObject()
    }

    private mutating func eval(_ r: EvalRecord) {
        start(EvalField.self, "eval", r.step, r.t)
        w.key(EvalField.domains)
        w.beginArray()
        for d in r.domains {
            w.beginObject()
            w.key(DomainField.name); w.string(d.name)
            w.key(DomainField.loss); w.double(d.loss)
            w.key(DomainField.bpb); w.double(d.bitsPerByte)
            w.endObject()
        }
        w.endArray()
        w.key(EvalField.lossByPosition); w.floats(r.lossByPosition)
        w.key(EvalField.contextGain)
        w.beginArray()
        for g in r.contextGain {
            w.beginObject()
            w.key(ContextGainField.window); w.int(g.window)
            w.key(ContextGainField.delta); w.float(g.delta)
            w.endObject()
        }
        w.endArray()
        if let sample = r.sample {
            w.key(EvalField.samplePrompt); w.string(r.samplePrompt ?? "")
            w.key(EvalField.sample); w.string(sample)
        }
        w.endObject()
    }

    private mutating func event(_ r: EventRecord) {
        start(EventField.self, "event", r.step, r.t)
        w.key(EventField.kind); w.string(r.kind.rawValue)
        if let axis = r.axis { w.key(EventField.axis); w.string(axis.rawValue) }
        if let band = r.band { w.key(EventField.band); w.int(band) }
        if let layer = r.layer { w.key(EventField.layer); w.int(layer) }
        if let v = r.oldValue { w.key(EventField.old); w.double(v) }
        if let v = r.newValue { w.key(EventField.new); w.double(v) }
        w.key(EventField.source); w.string(r.source.rawValue)
        if let id = r.commandId { w.key(EventField.commandId); w.string(id) }
        w.key(EventField.message); w.string(r.message)
        TwinCoding.write(event: r, &w)
        w.endObject()
    }

    private mutating func checkpoint(_ r: CheckpointRecord) {
        start(CheckpointField.self, "checkpoint", r.step, r.t)
        w.key(CheckpointField.path); w.string(r.path)
        w.key(CheckpointField.bytes); w.int(r.bytes)
        w.key(CheckpointField.ms); w.float(r.milliseconds)
        w.endObject()
    }

    private mutating func system(_ r: SystemRecord) {
        start(SystemField.self, "system", r.step, r.t)
        w.key(SystemField.cpuPercent); w.float(r.cpuPercent)
        w.key(SystemField.rssBytes); w.int(r.residentBytes)
        w.key(SystemField.threads); w.int(r.threads)
        w.key(SystemField.ranks); w.int(r.ranks)
        if let v = r.gpuMemoryBytes { w.key(SystemField.gpuMemoryBytes); w.int(v) }
        if let v = r.gpuUtilPercent { w.key(SystemField.gpuUtilPercent); w.float(v) }
        w.endObject()
    }

    private mutating func end(_ r: EndRecord) {
        start(EndField.self, "end", r.step, r.t)
        w.key(EndField.reason); w.string(r.reason.rawValue)
        if let f = r.failure { w.key(EndField.failure); w.string(f.rawValue) }
        if let v = r.finalLoss { w.key(EndField.finalLoss); w.double(v) }
        if let v = r.bestValidationLoss { w.key(EndField.bestValLoss); w.double(v) }
        w.key(EndField.message); w.string(r.message)
        w.endObject()
    }

    /// "2026-11-29T13:55:49Z" for the header's human-readable start time.
    static func iso8601(_ seconds: Double) -> String {
        guard seconds.isFinite, abs(seconds) < 1e11 else { return "" }
        var t = time_t(seconds.rounded(.down))
        var tm = tm()
        gmtime_r(&t, &tm)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02dZ",
                      Int(tm.tm_year) + 1900, Int(tm.tm_mon) + 1, Int(tm.tm_mday),
                      Int(tm.tm_hour), Int(tm.tm_min), Int(tm.tm_sec))
    }
}
