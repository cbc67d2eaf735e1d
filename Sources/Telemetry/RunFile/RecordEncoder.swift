import Foundation

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
        w.key("type"); w.literal("header")
        w.key("schema"); w.string(h.schema)
        w.key("run_name"); w.string(h.runName)
        w.key("preset"); w.string(h.preset)
        w.key("parameters"); w.int(h.parameters)
        w.key("total_steps"); w.int(h.totalSteps)
        w.key("seed"); w.uint64(h.seed)
        w.key("threads"); w.int(h.threads)
        w.key("start_time"); w.double(h.startTime)
        w.key("start_iso"); w.string(RecordEncoder.iso8601(h.startTime))
        w.key("data")
        w.beginArray()
        for d in h.data {
            w.beginObject()
            w.key("name"); w.string(d.name)
            w.key("path"); w.string(d.path)
            w.key("bytes"); w.int(d.bytes)
            w.key("hash"); w.string(d.hash)
            w.endObject()
        }
        w.endArray()
        w.key("axes")
        w.beginArray()
        for a in h.axes {
            w.beginObject()
            w.key("axis"); w.string(a.axis.rawValue)
            w.key("edges"); w.doubles(a.edges)
            w.key("bands")
            w.beginArray()
            for b in a.bands {
                w.beginObject()
                w.key("name"); w.string(b.name)
                w.key("extent"); w.string(b.extent)
                w.key("floor"); w.double(b.floor)
                w.key("ceiling"); w.double(b.ceiling)
                w.endObject()
            }
            w.endArray()
            w.endObject()
        }
        w.endArray()
        w.key("config"); w.value(h.config)
        if let p = h.parent {
            w.key("parent")
            w.beginObject()
            w.key("run"); w.string(p.run)
            w.key("step"); w.int(p.step)
            w.key("checkpoint"); w.string(p.checkpoint)
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
        }
        return line()
    }

    private mutating func line() -> [UInt8] {
        w.bytes.append(0x0A)
        return w.bytes
    }

    private mutating func start(_ type: StaticString, _ step: Int, _ t: Double) {
        w.beginObject()
        w.key("type"); w.literal(type)
        w.key("step"); w.int(step)
        w.key("t"); w.double(t)
    }

    private mutating func step(_ r: StepRecord) {
        start("step", r.step, r.t)
        w.key("loss"); w.double(r.loss)
        w.key("lr"); w.double(r.learningRate)
        // Measurements go out at single precision (docs/FORMAT.md, "Numbers").
        w.key("grad_norm"); w.float(r.gradNorm)
        w.key("clip_scale"); w.float(r.clipScale)
        w.key("tokens_per_s"); w.float(r.tokensPerSecond)
        w.key("step_ms"); w.float(r.stepMilliseconds)
        w.key("axes")
        w.beginObject()
        for a in r.axes {
            w.key(a.axis.rawValue)
            w.beginObject()
            w.key("mode"); w.string(a.mode.rawValue)
            w.key("weight")
            w.beginArray()
            for b in a.bands { w.float(b.weight) }
            w.endArray()
            w.key("energy")
            w.beginArray()
            for b in a.bands { w.float(b.energy) }
            w.endArray()
            w.endObject()
        }
        w.endObject()
        w.key("context_energy"); w.floatMatrix(r.contextEnergyByLayer)
        w.key("attention_mass"); w.floatMatrix(r.attentionMass)
        w.key("attention_mass_by_head")
        w.beginArray()
        for layer in r.attentionMassByHead { w.floatMatrix(layer) }
        w.endArray()
        w.key("oscillation")
        w.beginObject()
        w.key("flip_rate"); w.beginArray(); for o in r.oscillation { w.float(o.flipRate) }; w.endArray()
        w.key("grad_cos"); w.beginArray(); for o in r.oscillation { w.float(o.gradientCosine) }; w.endArray()
        if !r.oscillation.isEmpty, r.oscillation.allSatisfy({ $0.updateCosine != nil }) {
            w.key("update_cos"); w.beginArray(); for o in r.oscillation { w.float(o.updateCosine ?? .nan) }; w.endArray()
        }
        w.key("rel_update"); w.beginArray(); for o in r.oscillation { w.float(o.relativeUpdate) }; w.endArray()
        w.endObject()
        w.key("spike"); w.bool(r.spike)
        w.key("guard_fallbacks"); w.int(r.guardFallbacks)
        w.endObject()
    }

    private mutating func eval(_ r: EvalRecord) {
        start("eval", r.step, r.t)
        w.key("domains")
        w.beginArray()
        for d in r.domains {
            w.beginObject()
            w.key("name"); w.string(d.name)
            w.key("loss"); w.double(d.loss)
            w.key("bpb"); w.double(d.bitsPerByte)
            w.endObject()
        }
        w.endArray()
        w.key("loss_by_position"); w.floats(r.lossByPosition)
        w.key("context_gain")
        w.beginArray()
        for g in r.contextGain {
            w.beginObject()
            w.key("window"); w.int(g.window)
            w.key("delta"); w.float(g.delta)
            w.endObject()
        }
        w.endArray()
        if let sample = r.sample {
            w.key("sample_prompt"); w.string(r.samplePrompt ?? "")
            w.key("sample"); w.string(sample)
        }
        w.endObject()
    }

    private mutating func event(_ r: EventRecord) {
        start("event", r.step, r.t)
        w.key("kind"); w.string(r.kind.rawValue)
        if let axis = r.axis { w.key("axis"); w.string(axis.rawValue) }
        if let band = r.band { w.key("band"); w.int(band) }
        if let layer = r.layer { w.key("layer"); w.int(layer) }
        if let v = r.oldValue { w.key("old"); w.double(v) }
        if let v = r.newValue { w.key("new"); w.double(v) }
        w.key("source"); w.string(r.source)
        w.key("message"); w.string(r.message)
        w.endObject()
    }

    private mutating func checkpoint(_ r: CheckpointRecord) {
        start("checkpoint", r.step, r.t)
        w.key("path"); w.string(r.path)
        w.key("bytes"); w.int(r.bytes)
        w.key("ms"); w.float(r.milliseconds)
        w.endObject()
    }

    private mutating func end(_ r: EndRecord) {
        start("end", r.step, r.t)
        w.key("reason"); w.string(r.reason.rawValue)
        if let v = r.finalLoss { w.key("final_loss"); w.double(v) }
        if let v = r.bestValidationLoss { w.key("best_val_loss"); w.double(v) }
        w.key("message"); w.string(r.message)
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
