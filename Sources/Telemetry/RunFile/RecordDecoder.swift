/// Turns run-file lines back into the header and records (the inverse of `RecordEncoder`).
///
/// Decodes straight from the line's bytes into record values with `JSONScanner`, without an
/// intermediate tree, which is what makes a million step records readable in about a second.
/// Members may come in any order; unknown members are skipped (minor schema versions only add
/// members); a duplicated known member, a missing required one, or a value of the wrong kind is an
/// error that names the member.
public enum RecordDecoder {
    /// Keys of the format (docs/FORMAT.md).
    enum K {
        static let type = JSONKey("type"), step = JSONKey("step"), t = JSONKey("t")
        static let loss = JSONKey("loss"), lr = JSONKey("lr"), gradNorm = JSONKey("grad_norm")
        static let clipScale = JSONKey("clip_scale"), tokensPerS = JSONKey("tokens_per_s")
        static let stepMs = JSONKey("step_ms"), axes = JSONKey("axes")
        static let contextEnergy = JSONKey("context_energy"), attentionMass = JSONKey("attention_mass")
        static let attentionMassByHead = JSONKey("attention_mass_by_head"), oscillation = JSONKey("oscillation")
        static let spike = JSONKey("spike"), guardFallbacks = JSONKey("guard_fallbacks")
        static let mode = JSONKey("mode"), weight = JSONKey("weight"), energy = JSONKey("energy")
        static let flipRate = JSONKey("flip_rate"), gradCos = JSONKey("grad_cos"), relUpdate = JSONKey("rel_update")
        static let context = JSONKey("context"), time = JSONKey("time"), depth = JSONKey("depth")
        static let domains = JSONKey("domains"), name = JSONKey("name"), bpb = JSONKey("bpb")
        static let lossByPosition = JSONKey("loss_by_position"), contextGain = JSONKey("context_gain")
        static let window = JSONKey("window"), delta = JSONKey("delta")
        static let kind = JSONKey("kind"), axis = JSONKey("axis"), band = JSONKey("band"), layer = JSONKey("layer")
        static let old = JSONKey("old"), new = JSONKey("new"), source = JSONKey("source"), message = JSONKey("message")
        static let path = JSONKey("path"), bytes = JSONKey("bytes"), ms = JSONKey("ms")
        static let reason = JSONKey("reason"), finalLoss = JSONKey("final_loss"), bestValLoss = JSONKey("best_val_loss")
    }

    /// The record types of the format.
    public enum LineType: String, Sendable {
        case header, step, eval, event, checkpoint, end
    }

    // MARK: - Records

    /// Decodes one record line (without its newline).
    public static func record(_ line: UnsafeBufferPointer<UInt8>) throws -> Record {
        let type = try lineType(line)
        var s = JSONScanner(line)
        let record: Record
        switch type {
        case .step: record = .step(try step(&s))
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

    static func step(_ s: inout JSONScanner) throws -> StepRecord {
        var r = StepRecord(step: 0, t: 0, loss: 0, learningRate: 0, gradNorm: 0, clipScale: 1,
                           tokensPerSecond: 0, stepMilliseconds: 0)
        var seen = Seen()
        try s.beginObject()
        var first = true
        while let key = try s.nextMember(&first) {
            switch key {
            case K.type: try seen.mark(0, key, s); try s.skipValue(depth: 1)
            case K.step: try seen.mark(1, key, s); r.step = try s.int()
            case K.t: try seen.mark(2, key, s); r.t = try s.double()
            case K.loss: try seen.mark(3, key, s); r.loss = try s.double()
            case K.lr: try seen.mark(4, key, s); r.learningRate = try s.double()
            case K.gradNorm: try seen.mark(5, key, s); r.gradNorm = try s.double()
            case K.clipScale: try seen.mark(6, key, s); r.clipScale = try s.double()
            case K.tokensPerS: try seen.mark(7, key, s); r.tokensPerSecond = try s.double()
            case K.stepMs: try seen.mark(8, key, s); r.stepMilliseconds = try s.double()
            case K.axes: try seen.mark(9, key, s); r.axes = try axes(&s)
            case K.contextEnergy: try seen.mark(10, key, s); r.contextEnergyByLayer = try matrix(&s)
            case K.attentionMass: try seen.mark(11, key, s); r.attentionMass = try matrix(&s)
            case K.attentionMassByHead:
                try seen.mark(12, key, s)
                var layers: [[[Double]]] = []
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

    static func doubles(_ s: inout JSONScanner) throws -> [Double] {
        var out: [Double] = []
        try s.beginArray()
        var first = true
        while try s.nextElement(&first) { out.append(try s.double()) }
        return out
    }

    static func matrix(_ s: inout JSONScanner) throws -> [[Double]] {
        var out: [[Double]] = []
        try s.beginArray()
        var first = true
        while try s.nextElement(&first) { out.append(try doubles(&s)) }
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
        var weights: [Double] = [], energies: [Double] = []
        var seen = Seen()
        let start = s.offset
        try s.beginObject()
        var first = true
        while let key = try s.nextMember(&first) {
            switch key {
            case K.mode:
                try seen.mark(0, key, s)
                let at = s.offset
                let name = try s.string()
                guard let m = WeightMode(rawValue: name) else {
                    throw JSONSyntaxError(offset: at, message: "unknown weight mode \"\(name)\"")
                }
                mode = m
            case K.weight: try seen.mark(1, key, s); weights = try doubles(&s)
            case K.energy: try seen.mark(2, key, s); energies = try doubles(&s)
            default: try s.skipValue(depth: 3)
            }
        }
        try seen.require([(0, "mode"), (1, "weight"), (2, "energy")], in: "axis \"\(axis.rawValue)\"")
        guard weights.count == energies.count else {
            throw JSONSyntaxError(offset: start, message: "axis \"\(axis.rawValue)\": \(weights.count) weights but \(energies.count) energies")
        }
        var bands: [BandSample] = []
        bands.reserveCapacity(weights.count)
        for i in weights.indices { bands.append(BandSample(weight: weights[i], energy: energies[i])) }
        return AxisSample(axis: axis, mode: mode, bands: bands)
    }

    static func oscillation(_ s: inout JSONScanner) throws -> [OscillationSample] {
        var flip: [Double] = [], cos: [Double] = [], rel: [Double] = []
        var seen = Seen()
        let start = s.offset
        try s.beginObject()
        var first = true
        while let key = try s.nextMember(&first) {
            switch key {
            case K.flipRate: try seen.mark(0, key, s); flip = try doubles(&s)
            case K.gradCos: try seen.mark(1, key, s); cos = try doubles(&s)
            case K.relUpdate: try seen.mark(2, key, s); rel = try doubles(&s)
            default: try s.skipValue(depth: 2)
            }
        }
        guard flip.count == cos.count && cos.count == rel.count else {
            throw JSONSyntaxError(offset: start, message: "oscillation arrays differ in length (\(flip.count), \(cos.count), \(rel.count))")
        }
        return flip.indices.map { OscillationSample(flipRate: flip[$0], gradientCosine: cos[$0], relativeUpdate: rel[$0]) }
    }

    static func eval(_ s: inout JSONScanner) throws -> EvalRecord {
        var r = EvalRecord(step: 0, t: 0, domains: [])
        var seen = Seen()
        try s.beginObject()
        var first = true
        while let key = try s.nextMember(&first) {
            switch key {
            case K.type: try seen.mark(0, key, s); try s.skipValue(depth: 1)
            case K.step: try seen.mark(1, key, s); r.step = try s.int()
            case K.t: try seen.mark(2, key, s); r.t = try s.double()
            case K.domains:
                try seen.mark(3, key, s)
                try s.beginArray()
                var f = true
                while try s.nextElement(&f) { r.domains.append(try domain(&s)) }
            case K.lossByPosition: try seen.mark(4, key, s); r.lossByPosition = try doubles(&s)
            case K.contextGain:
                try seen.mark(5, key, s)
                try s.beginArray()
                var f = true
                while try s.nextElement(&f) { r.contextGain.append(try gain(&s)) }
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
            case K.delta: try seen.mark(1, key, s); g.delta = try s.double()
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
            case K.type: try seen.mark(0, key, s); try s.skipValue(depth: 1)
            case K.step: try seen.mark(1, key, s); r.step = try s.int()
            case K.t: try seen.mark(2, key, s); r.t = try s.double()
            case K.kind:
                try seen.mark(3, key, s)
                let at = s.offset
                let name = try s.string()
                guard let k = EventRecord.Kind(rawValue: name) else {
                    throw JSONSyntaxError(offset: at, message: "unknown event kind \"\(name)\"")
                }
                r.kind = k
            case K.axis:
                try seen.mark(4, key, s)
                let at = s.offset
                let name = try s.string()
                guard let a = ScaleAxis(rawValue: name) else {
                    throw JSONSyntaxError(offset: at, message: "unknown axis \"\(name)\"")
                }
                r.axis = a
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
            case K.type: try seen.mark(0, key, s); try s.skipValue(depth: 1)
            case K.step: try seen.mark(1, key, s); r.step = try s.int()
            case K.t: try seen.mark(2, key, s); r.t = try s.double()
            case K.path: try seen.mark(3, key, s); r.path = try s.string()
            case K.bytes: try seen.mark(4, key, s); r.bytes = try s.int()
            case K.ms: try seen.mark(5, key, s); r.milliseconds = try s.double()
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
            case K.type: try seen.mark(0, key, s); try s.skipValue(depth: 1)
            case K.step: try seen.mark(1, key, s); r.step = try s.int()
            case K.t: try seen.mark(2, key, s); r.t = try s.double()
            case K.reason:
                try seen.mark(3, key, s)
                let at = s.offset
                let name = try s.string()
                guard let reason = EndRecord.Reason(rawValue: name) else {
                    throw JSONSyntaxError(offset: at, message: "unknown end reason \"\(name)\"")
                }
                r.reason = reason
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
