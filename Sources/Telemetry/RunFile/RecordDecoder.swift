/// Turns run-file lines back into the header and records (the inverse of `RecordEncoder`).
///
/// Decodes straight from the line's bytes into record values with `JSONScanner`, without an
/// intermediate tree, which is what makes a million step records readable in about a second.
/// Members may come in any order; unknown members are skipped (minor schema versions only add
/// members); a duplicated known member, a missing required one, or a value of the wrong kind is an
/// error that names the member.
public enum RecordDecoder {
    /// Keys of the format (docs/FORMAT.md).
    /// Keys of the format (docs/FORMAT.md), packed as integer literals so that they are
    /// statically initialised (a `JSONKey("...")` initialiser would cost a lazy-init check per use).
    /// A test checks each against `JSONKey("...")`.
    enum K {
        /// "type"
        static let type = JSONKey(a: 0x65707974, b: 0x0, c: 0x0, count: 4)
        /// "step"
        static let step = JSONKey(a: 0x70657473, b: 0x0, c: 0x0, count: 4)
        /// "t"
        static let t = JSONKey(a: 0x74, b: 0x0, c: 0x0, count: 1)
        /// "loss"
        static let loss = JSONKey(a: 0x73736f6c, b: 0x0, c: 0x0, count: 4)
        /// "lr"
        static let lr = JSONKey(a: 0x726c, b: 0x0, c: 0x0, count: 2)
        /// "grad_norm"
        static let gradNorm = JSONKey(a: 0x726f6e5f64617267, b: 0x6d, c: 0x0, count: 9)
        /// "clip_scale"
        static let clipScale = JSONKey(a: 0x6163735f70696c63, b: 0x656c, c: 0x0, count: 10)
        /// "tokens_per_s"
        static let tokensPerS = JSONKey(a: 0x705f736e656b6f74, b: 0x735f7265, c: 0x0, count: 12)
        /// "step_ms"
        static let stepMs = JSONKey(a: 0x736d5f70657473, b: 0x0, c: 0x0, count: 7)
        /// "axes"
        static let axes = JSONKey(a: 0x73657861, b: 0x0, c: 0x0, count: 4)
        /// "context_energy"
        static let contextEnergy = JSONKey(a: 0x5f747865746e6f63, b: 0x796772656e65, c: 0x0, count: 14)
        /// "attention_mass"
        static let attentionMass = JSONKey(a: 0x6f69746e65747461, b: 0x7373616d5f6e, c: 0x0, count: 14)
        /// "attention_mass_by_head"
        static let attentionMassByHead = JSONKey(a: 0x6f69746e65747461, b: 0x625f7373616d5f6e, c: 0x646165685f79, count: 22)
        /// "oscillation"
        static let oscillation = JSONKey(a: 0x74616c6c6963736f, b: 0x6e6f69, c: 0x0, count: 11)
        /// "spike"
        static let spike = JSONKey(a: 0x656b697073, b: 0x0, c: 0x0, count: 5)
        /// "guard_fallbacks"
        static let guardFallbacks = JSONKey(a: 0x61665f6472617567, b: 0x736b6361626c6c, c: 0x0, count: 15)
        /// "mode"
        static let mode = JSONKey(a: 0x65646f6d, b: 0x0, c: 0x0, count: 4)
        /// "weight"
        static let weight = JSONKey(a: 0x746867696577, b: 0x0, c: 0x0, count: 6)
        /// "energy"
        static let energy = JSONKey(a: 0x796772656e65, b: 0x0, c: 0x0, count: 6)
        /// "flip_rate"
        static let flipRate = JSONKey(a: 0x7461725f70696c66, b: 0x65, c: 0x0, count: 9)
        /// "grad_cos"
        static let gradCos = JSONKey(a: 0x736f635f64617267, b: 0x0, c: 0x0, count: 8)
        /// "rel_update"
        static let relUpdate = JSONKey(a: 0x616470755f6c6572, b: 0x6574, c: 0x0, count: 10)
        /// "update_cos"
        static let updateCos = JSONKey(a: 0x635f657461647075, b: 0x736f, c: 0x0, count: 10)
        /// "context"
        static let context = JSONKey(a: 0x747865746e6f63, b: 0x0, c: 0x0, count: 7)
        /// "time"
        static let time = JSONKey(a: 0x656d6974, b: 0x0, c: 0x0, count: 4)
        /// "depth"
        static let depth = JSONKey(a: 0x6874706564, b: 0x0, c: 0x0, count: 5)
        /// "domains"
        static let domains = JSONKey(a: 0x736e69616d6f64, b: 0x0, c: 0x0, count: 7)
        /// "name"
        static let name = JSONKey(a: 0x656d616e, b: 0x0, c: 0x0, count: 4)
        /// "bpb"
        static let bpb = JSONKey(a: 0x627062, b: 0x0, c: 0x0, count: 3)
        /// "loss_by_position"
        static let lossByPosition = JSONKey(a: 0x5f79625f73736f6c, b: 0x6e6f697469736f70, c: 0x0, count: 16)
        /// "context_gain"
        static let contextGain = JSONKey(a: 0x5f747865746e6f63, b: 0x6e696167, c: 0x0, count: 12)
        /// "window"
        static let window = JSONKey(a: 0x776f646e6977, b: 0x0, c: 0x0, count: 6)
        /// "delta"
        static let delta = JSONKey(a: 0x61746c6564, b: 0x0, c: 0x0, count: 5)
        /// "kind"
        static let kind = JSONKey(a: 0x646e696b, b: 0x0, c: 0x0, count: 4)
        /// "axis"
        static let axis = JSONKey(a: 0x73697861, b: 0x0, c: 0x0, count: 4)
        /// "band"
        static let band = JSONKey(a: 0x646e6162, b: 0x0, c: 0x0, count: 4)
        /// "layer"
        static let layer = JSONKey(a: 0x726579616c, b: 0x0, c: 0x0, count: 5)
        /// "old"
        static let old = JSONKey(a: 0x646c6f, b: 0x0, c: 0x0, count: 3)
        /// "new"
        static let new = JSONKey(a: 0x77656e, b: 0x0, c: 0x0, count: 3)
        /// "source"
        static let source = JSONKey(a: 0x656372756f73, b: 0x0, c: 0x0, count: 6)
        /// "message"
        static let message = JSONKey(a: 0x6567617373656d, b: 0x0, c: 0x0, count: 7)
        /// "path"
        static let path = JSONKey(a: 0x68746170, b: 0x0, c: 0x0, count: 4)
        /// "bytes"
        static let bytes = JSONKey(a: 0x7365747962, b: 0x0, c: 0x0, count: 5)
        /// "ms"
        static let ms = JSONKey(a: 0x736d, b: 0x0, c: 0x0, count: 2)
        /// "reason"
        static let reason = JSONKey(a: 0x6e6f73616572, b: 0x0, c: 0x0, count: 6)
        /// "final_loss"
        static let finalLoss = JSONKey(a: 0x6f6c5f6c616e6966, b: 0x7373, c: 0x0, count: 10)
        /// "best_val_loss"
        static let bestValLoss = JSONKey(a: 0x6c61765f74736562, b: 0x73736f6c5f, c: 0x0, count: 13)
        /// "sample", "sample_prompt" (eval records since 1.2)
        static let sample = JSONKey("sample")
        static let samplePrompt = JSONKey("sample_prompt")
        static let all: [(JSONKey, String)] = [
            (sample, "sample"),
            (samplePrompt, "sample_prompt"),
            (type, "type"),
            (step, "step"),
            (t, "t"),
            (loss, "loss"),
            (lr, "lr"),
            (gradNorm, "grad_norm"),
            (clipScale, "clip_scale"),
            (tokensPerS, "tokens_per_s"),
            (stepMs, "step_ms"),
            (axes, "axes"),
            (contextEnergy, "context_energy"),
            (attentionMass, "attention_mass"),
            (attentionMassByHead, "attention_mass_by_head"),
            (oscillation, "oscillation"),
            (spike, "spike"),
            (guardFallbacks, "guard_fallbacks"),
            (mode, "mode"),
            (weight, "weight"),
            (energy, "energy"),
            (flipRate, "flip_rate"),
            (gradCos, "grad_cos"),
            (relUpdate, "rel_update"),
            (updateCos, "update_cos"),
            (context, "context"),
            (time, "time"),
            (depth, "depth"),
            (domains, "domains"),
            (name, "name"),
            (bpb, "bpb"),
            (lossByPosition, "loss_by_position"),
            (contextGain, "context_gain"),
            (window, "window"),
            (delta, "delta"),
            (kind, "kind"),
            (axis, "axis"),
            (band, "band"),
            (layer, "layer"),
            (old, "old"),
            (new, "new"),
            (source, "source"),
            (message, "message"),
            (path, "path"),
            (bytes, "bytes"),
            (ms, "ms"),
            (reason, "reason"),
            (finalLoss, "final_loss"),
            (bestValLoss, "best_val_loss"),
        ]
    }


    /// The record types of the format.
    public enum LineType: String, Sendable {
        case header, step, eval, event, checkpoint, end
    }

    // MARK: - Records

    /// How much of a step record to build; what is not built is still checked for syntax.
    public enum StepDetail: Sendable {
        /// Every field.
        case full
        /// Without the per-layer arrays (`context_energy`, `attention_mass`,
        /// `attention_mass_by_head`, left empty): enough for progress lines and study metrics.
        case noLayerArrays
        /// Only the scalars (`axes` and `oscillation` left empty too): enough for a summary.
        case scalars
    }

    /// Decodes one record line (without its newline); `stepDetail` says how much of a step
    /// record to build.
    public static func record(_ line: UnsafeBufferPointer<UInt8>, stepDetail: StepDetail = .full) throws -> Record {
        let type = try lineType(line)
        var s = JSONScanner(line)
        let record: Record
        switch type {
        case .step: record = .step(try step(&s, detail: stepDetail))
        case .eval: record = .eval(try eval(&s))
        case .event: record = .event(try event(&s))
        case .checkpoint: record = .checkpoint(try checkpoint(&s))
        case .end: record = .end(try end(&s))
        case .header: throw JSONSyntaxError(offset: 0, message: "a second header line")
        }
        try s.expectEnd()
        return record
    }

    /// Decodes one record line given as bytes.
    public static func record(_ bytes: [UInt8]) throws -> Record {
        try bytes.withUnsafeBufferPointer { try record($0) }
    }

    /// The value of the line's top-level `type` member (looked for first at the front, where the
    /// writer puts it).
    public static func lineType(_ line: UnsafeBufferPointer<UInt8>) throws -> LineType {
        var s = JSONScanner(line)
        try s.beginObject()
        var first = true
        while let key = try s.nextMember(&first) {
            if key == K.type {
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

    /// Tracks which known members an object had, to refuse duplicates and report missing ones.
    struct Seen {
        var bits: UInt64 = 0
        mutating func mark(_ i: Int, _ key: JSONKey, _ s: JSONScanner) throws {
            let b: UInt64 = 1 << UInt64(i)
            if bits & b != 0 { throw JSONSyntaxError(offset: s.offset, message: "duplicate member \"\(key)\"") }
            bits |= b
        }
        func require(_ names: [(Int, String)], in what: String) throws {
            for (i, n) in names where bits & (1 << UInt64(i)) == 0 {
                throw JSONSyntaxError(offset: 0, message: "\(what) lacks member \"\(n)\"")
            }
        }
    }

    static func step(_ s: inout JSONScanner, detail: StepDetail = .full) throws -> StepRecord {
        let layers = detail == .full, vectors = detail != .scalars
        var r = StepRecord(step: 0, t: 0, loss: 0, learningRate: 0, gradNorm: 0, clipScale: 1,
                           tokensPerSecond: 0, stepMilliseconds: 0)
        var seen = Seen()
        try s.beginObject()
        var first = true
        while let key = try s.nextMember(&first) {
            switch key {
            case K.type: try seen.mark(0, key, s); try s.skipString()
            case K.step: try seen.mark(1, key, s); r.step = try s.int()
            case K.t: try seen.mark(2, key, s); r.t = try s.double()
            case K.loss: try seen.mark(3, key, s); r.loss = try s.double()
            case K.lr: try seen.mark(4, key, s); r.learningRate = try s.double()
            case K.gradNorm: try seen.mark(5, key, s); r.gradNorm = try s.float()
            case K.clipScale: try seen.mark(6, key, s); r.clipScale = try s.float()
            case K.tokensPerS: try seen.mark(7, key, s); r.tokensPerSecond = try s.float()
            case K.stepMs: try seen.mark(8, key, s); r.stepMilliseconds = try s.float()
            case K.axes where !vectors, K.oscillation where !vectors:
                try seen.mark(key == K.axes ? 9 : 13, key, s)
                try s.skipValue(depth: 1)
            case K.axes: try seen.mark(9, key, s); r.axes = try axes(&s)
            case K.contextEnergy where !layers, K.attentionMass where !layers, K.attentionMassByHead where !layers:
                try seen.mark(key == K.contextEnergy ? 10 : (key == K.attentionMass ? 11 : 12), key, s)
                try s.skipValue(depth: 1)
            case K.contextEnergy: try seen.mark(10, key, s); r.contextEnergyByLayer = try matrix(&s)
            case K.attentionMass: try seen.mark(11, key, s); r.attentionMass = try matrix(&s)
            case K.attentionMassByHead:
                try seen.mark(12, key, s)
                var layers: [[[Double]]] = []
                layers.reserveCapacity(8)
                try s.beginArray()
                var f = true
                while try s.nextElement(&f) { layers.append(try matrix(&s)) }
                r.attentionMassByHead = layers
            case K.oscillation: try seen.mark(13, key, s); r.oscillation = try oscillation(&s)
            case K.spike: try seen.mark(14, key, s); r.spike = try s.bool()
            case K.guardFallbacks: try seen.mark(15, key, s); r.guardFallbacks = try s.int()
            default: try s.skipValue(depth: 1)
            }
        }
        try seen.require([(1, "step"), (2, "t"), (3, "loss"), (4, "lr"), (5, "grad_norm"), (6, "clip_scale"),
                          (7, "tokens_per_s"), (8, "step_ms")], in: "step record")
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
        var seen = Seen()
        try s.beginObject()
        var first = true
        while let key = try s.nextMember(&first) {
            let axis: ScaleAxis
            switch key {
            case K.context: try seen.mark(0, key, s); axis = .context
            case K.time: try seen.mark(1, key, s); axis = .time
            case K.depth: try seen.mark(2, key, s); axis = .depth
            default: try s.skipValue(depth: 2); continue
            }
            out.append(try axisSample(axis, &s))
        }
        return out
    }

    static func axisSample(_ axis: ScaleAxis, _ s: inout JSONScanner) throws -> AxisSample {
        var mode = WeightMode.manual
        // Weights and energies go straight into the band samples (no temporary arrays).
        var bands: [BandSample] = []
        bands.reserveCapacity(4)
        var weights = 0, energies = 0
        var seen = Seen()
        let start = s.offset
        try s.beginObject()
        var first = true
        while let key = try s.nextMember(&first) {
            switch key {
            case K.mode:
                try seen.mark(0, key, s)
                mode = try s.named(WeightMode.self, "weight mode")
            case K.weight:
                try seen.mark(1, key, s)
                try s.beginArray()
                var f = true
                while try s.nextElement(&f) {
                    let v = try s.float()
                    if weights < bands.count { bands[weights].weight = v } else { bands.append(BandSample(weight: v, energy: .nan)) }
                    weights += 1
                }
            case K.energy:
                try seen.mark(2, key, s)
                try s.beginArray()
                var f = true
                while try s.nextElement(&f) {
                    let v = try s.float()
                    if energies < bands.count { bands[energies].energy = v } else { bands.append(BandSample(weight: .nan, energy: v)) }
                    energies += 1
                }
            default: try s.skipValue(depth: 3)
            }
        }
        try seen.require([(0, "mode"), (1, "weight"), (2, "energy")], in: "axis \"\(axis.rawValue)\"")
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
        var seen = Seen()
        let start = s.offset
        try s.beginObject()
        var first = true
        while let key = try s.nextMember(&first) {
            let which: Int
            switch key {
            case K.flipRate: which = 0
            case K.gradCos: which = 1
            case K.relUpdate: which = 2
            case K.updateCos: which = 3
            default: try s.skipValue(depth: 2); continue
            }
            try seen.mark(which, key, s)
            try s.beginArray()
            var f = true
            while try s.nextElement(&f) {
                let v = try s.float()
                let i = [counts.0, counts.1, counts.2, counts.3][which]
                if i == out.count { out.append(OscillationSample(flipRate: .nan, gradientCosine: .nan, relativeUpdate: .nan)) }
                switch which {
                case 0: out[i].flipRate = v; counts.0 += 1
                case 1: out[i].gradientCosine = v; counts.1 += 1
                case 2: out[i].relativeUpdate = v; counts.2 += 1
                default: out[i].updateCosine = v; counts.3 += 1
                }
            }
        }
        guard counts.0 == counts.1 && counts.1 == counts.2 && (counts.3 == 0 || counts.3 == counts.0) else {
            let sizes = [counts.0, counts.1, counts.2] + (counts.3 > 0 ? [counts.3] : [])
            throw JSONSyntaxError(offset: start, message: "oscillation arrays differ in length (\(sizes.map(String.init).joined(separator: ", ")))")
        }
        return out
    }

    static func eval(_ s: inout JSONScanner) throws -> EvalRecord {
        var r = EvalRecord(step: 0, t: 0, domains: [])
        var seen = Seen()
        try s.beginObject()
        var first = true
        while let key = try s.nextMember(&first) {
            switch key {
            case K.type: try seen.mark(0, key, s); try s.skipString()
            case K.step: try seen.mark(1, key, s); r.step = try s.int()
            case K.t: try seen.mark(2, key, s); r.t = try s.double()
            case K.domains:
                try seen.mark(3, key, s)
                try s.beginArray()
                var f = true
                while try s.nextElement(&f) { r.domains.append(try domain(&s)) }
            case K.lossByPosition: try seen.mark(4, key, s); r.lossByPosition = try floats(&s)
            case K.contextGain:
                try seen.mark(5, key, s)
                try s.beginArray()
                var f = true
                while try s.nextElement(&f) { r.contextGain.append(try gain(&s)) }
            case K.samplePrompt: try seen.mark(6, key, s); r.samplePrompt = try s.string()
            case K.sample: try seen.mark(7, key, s); r.sample = try s.string()
            default: try s.skipValue(depth: 1)
            }
        }
        try seen.require([(1, "step"), (2, "t"), (3, "domains")], in: "eval record")
        return r
    }

    static func domain(_ s: inout JSONScanner) throws -> DomainEval {
        var d = DomainEval(name: "", loss: 0)
        var seen = Seen()
        try s.beginObject()
        var first = true
        while let key = try s.nextMember(&first) {
            switch key {
            case K.name: try seen.mark(0, key, s); d.name = try s.string()
            case K.loss: try seen.mark(1, key, s); d.loss = try s.double()
            default: try s.skipValue(depth: 3)   // bpb is derived from loss
            }
        }
        try seen.require([(0, "name"), (1, "loss")], in: "eval domain")
        return d
    }

    static func gain(_ s: inout JSONScanner) throws -> ContextGain {
        var g = ContextGain(window: 0, delta: 0)
        var seen = Seen()
        try s.beginObject()
        var first = true
        while let key = try s.nextMember(&first) {
            switch key {
            case K.window: try seen.mark(0, key, s); g.window = try s.int()
            case K.delta: try seen.mark(1, key, s); g.delta = try s.float()
            default: try s.skipValue(depth: 3)
            }
        }
        try seen.require([(0, "window"), (1, "delta")], in: "context gain")
        return g
    }

    static func event(_ s: inout JSONScanner) throws -> EventRecord {
        var r = EventRecord(step: 0, t: 0, kind: .warning, source: "")
        var seen = Seen()
        try s.beginObject()
        var first = true
        while let key = try s.nextMember(&first) {
            switch key {
            case K.type: try seen.mark(0, key, s); try s.skipString()
            case K.step: try seen.mark(1, key, s); r.step = try s.int()
            case K.t: try seen.mark(2, key, s); r.t = try s.double()
            case K.kind:
                try seen.mark(3, key, s)
                r.kind = try s.named(EventRecord.Kind.self, "event kind")
            case K.axis:
                try seen.mark(4, key, s)
                r.axis = try s.named(ScaleAxis.self, "axis")
            case K.band: try seen.mark(5, key, s); r.band = try s.optionalInt()
            case K.layer: try seen.mark(6, key, s); r.layer = try s.optionalInt()
            case K.old: try seen.mark(7, key, s); r.oldValue = try s.optionalDouble()
            case K.new: try seen.mark(8, key, s); r.newValue = try s.optionalDouble()
            case K.source: try seen.mark(9, key, s); r.source = try s.string()
            case K.message: try seen.mark(10, key, s); r.message = try s.string()
            default: try s.skipValue(depth: 1)
            }
        }
        try seen.require([(1, "step"), (2, "t"), (3, "kind"), (9, "source")], in: "event record")
        return r
    }

    static func checkpoint(_ s: inout JSONScanner) throws -> CheckpointRecord {
        var r = CheckpointRecord(step: 0, t: 0, path: "", bytes: 0, milliseconds: 0)
        var seen = Seen()
        try s.beginObject()
        var first = true
        while let key = try s.nextMember(&first) {
            switch key {
            case K.type: try seen.mark(0, key, s); try s.skipString()
            case K.step: try seen.mark(1, key, s); r.step = try s.int()
            case K.t: try seen.mark(2, key, s); r.t = try s.double()
            case K.path: try seen.mark(3, key, s); r.path = try s.string()
            case K.bytes: try seen.mark(4, key, s); r.bytes = try s.int()
            case K.ms: try seen.mark(5, key, s); r.milliseconds = try s.float()
            default: try s.skipValue(depth: 1)
            }
        }
        try seen.require([(1, "step"), (2, "t"), (3, "path"), (4, "bytes"), (5, "ms")], in: "checkpoint record")
        return r
    }

    static func end(_ s: inout JSONScanner) throws -> EndRecord {
        var r = EndRecord(step: 0, t: 0, reason: .completed, finalLoss: nil, bestValidationLoss: nil)
        var seen = Seen()
        try s.beginObject()
        var first = true
        while let key = try s.nextMember(&first) {
            switch key {
            case K.type: try seen.mark(0, key, s); try s.skipString()
            case K.step: try seen.mark(1, key, s); r.step = try s.int()
            case K.t: try seen.mark(2, key, s); r.t = try s.double()
            case K.reason:
                try seen.mark(3, key, s)
                r.reason = try s.named(EndRecord.Reason.self, "end reason")
            case K.finalLoss: try seen.mark(4, key, s); r.finalLoss = try s.optionalDouble()
            case K.bestValLoss: try seen.mark(5, key, s); r.bestValidationLoss = try s.optionalDouble()
            case K.message: try seen.mark(6, key, s); r.message = try s.string()
            default: try s.skipValue(depth: 1)
            }
        }
        try seen.require([(1, "step"), (2, "t"), (3, "reason")], in: "end record")
        return r
    }
}

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
