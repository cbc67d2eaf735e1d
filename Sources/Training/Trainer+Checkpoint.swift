import Foundation
import Model
import Refinement
import Telemetry

extension Trainer {
    /// Path of the checkpoint for a step inside the run directory.
    public static func checkpointPath(runDirectory: String, step: Int) -> String {
        (runDirectory as NSString).appendingPathComponent(String(format: "ckpt-%06d.gfck", step))
    }

    /// Writes a checkpoint of the current state (atomically) and publishes a checkpoint record.
    func saveCheckpoint() throws {
        guard let runDirectory else { return }
        let t0 = Date()
        let path = Self.checkpointPath(runDirectory: runDirectory, step: step)
        var extra: [String: String] = [:]
        if !channel.runId.isEmpty { extra[Self.runIdKey] = channel.runId }
        if !channel.applied.isEmpty {
            extra[Self.appliedCommandsKey] = String(decoding: try JSONEncoder().encode(channel.applied), as: UTF8.self)
        }
        extra["refinement"] = String(decoding: try JSONEncoder().encode(main.refinement.snapshot()), as: UTF8.self)
        extra["guard"] = String(decoding: try JSONEncoder().encode(divergence.persistent(window: main.guardWindow)), as: UTF8.self)
        extra["lr.scale"] = String(learningRateScale.bitPattern)
        var sections = [("params", UnsafePointer(main.params.pointer), main.params.count)] + main.optimizerSections(prefix: "")
        var arrays: [(String, [Float])] = []
        if let time = main.timeSections(prefix: "") {
            extra["time.started"] = time.started
            extra["time.guardFallbacks"] = String(time.guardFallbacks)
            arrays += time.sections
        }
        if let twin {
            let saved = try twin.checkpointSections()
            extra[Twin.checkpointKey] = saved.metadata
            sections += saved.pointers
            arrays += saved.arrays
        }
        let meta = Checkpoint.Metadata(
            config: config, refinement: main.refinement.setup.config, step: step,
            rngState: [main.data.state.0, main.data.state.1, main.data.state.2, main.data.state.3],
            adamSteps: main.optimizer.stepCount, bestValidationLoss: bestValidation, sections: [], extra: extra)
        let bytes = try withPointers(arrays) { try Checkpoint.write(path: path, metadata: meta, sections: sections + $0) }
        bus.publish(.checkpoint(CheckpointRecord(step: step, t: elapsed, path: path, bytes: bytes,
                                                 milliseconds: Date().timeIntervalSince(t0) * 1000)))
    }

    /// Loads a checkpoint's state into this freshly built trainer.
    func restore(_ ckpt: Checkpoint) throws {
        let m = ckpt.metadata
        guard m.config.model == config.model else {
            throw CheckpointError("checkpoint is for a different model (\(m.config.model.layers) layers, \(m.config.model.channels) channels, context \(m.config.model.context)); this run has \(config.model.layers) layers, \(config.model.channels) channels, context \(config.model.context)")
        }
        try main.loadArenas(ckpt, prefix: "", adamSteps: m.adamSteps)
        guard m.rngState.count == 4 else { throw CheckpointError("checkpoint RNG state is malformed") }
        main.data = Xoshiro256(state: (m.rngState[0], m.rngState[1], m.rngState[2], m.rngState[3]))
        step = m.step
        bestValidation = m.bestValidationLoss
        if let text = m.extra[Self.appliedCommandsKey] {
            guard let ids = try? JSONDecoder().decode([String].self, from: Data(text.utf8)) else {
                throw CheckpointError("checkpoint's list of applied commands is malformed")
            }
            channel.applied = ids
        }
        if let started = m.extra["time.started"] {
            // A run that turned the time axis on mid-run has its EMAs in the checkpoint although
            // its starting settings have the axis off.
            try main.loadTime(ckpt, prefix: "", started: started, guardFallbacks: Int(m.extra["time.guardFallbacks"] ?? "0") ?? 0)
        }
        if let text = m.extra["refinement"] {
            do {
                try main.refinement.restore(try JSONDecoder().decode(RefinementEngine.Snapshot.self, from: Data(text.utf8)))
            } catch {
                throw CheckpointError("checkpoint's refinement state does not fit this run (\(error))")
            }
        }
        // Version 2: the learning-rate scale, the guard's state and the twin (absent in version 1).
        if let text = m.extra["lr.scale"] {
            guard let bits = UInt64(text), Double(bitPattern: bits) > 0 else {
                throw CheckpointError("checkpoint's learning-rate scale is malformed ('\(text)')")
            }
            learningRateScale = Double(bitPattern: bits)
        }
        if let text = m.extra["guard"] {
            do {
                restoredGuard = try JSONDecoder().decode(DivergenceGuard.Persistent.self, from: Data(text.utf8))
            } catch {
                throw CheckpointError("checkpoint's divergence guard state is unreadable (\(error))")
            }
            divergence.restore(restoredGuard!, window: &main.guardWindow)
        }
        twin = try Twin.restore(from: ckpt, trainer: self)
    }

    /// The configuration as JSON for the run header.
    func configJSON() -> JSONValue {
        let c = config
        return .object([
            ("preset", .string(c.preset)),
            ("layers", .number(Double(c.model.layers))),
            ("heads", .number(Double(c.model.heads))),
            ("channels", .number(Double(c.model.channels))),
            ("max_context", .number(Double(c.model.context))),
            ("context", .number(Double(c.context))),
            ("vocab", .number(Double(c.model.vocab))),
            ("batch", .number(Double(c.batch))),
            ("steps", .number(Double(c.steps))),
            ("lr", .number(c.learningRate)),
            ("warmup_steps", .number(Double(c.warmupSteps))),
            ("min_lr_fraction", .number(c.schedule.minFraction)),
            ("beta1", .number(Double(c.adam.beta1))),
            ("beta2", .number(Double(c.adam.beta2))),
            ("epsilon", .number(Double(c.adam.epsilon))),
            ("weight_decay", .number(Double(c.adam.weightDecay))),
            ("clip", .number(c.clip)),
            ("init_seed", .number(Double(c.initSeed))),
            ("data_seed", .number(Double(c.dataSeed))),
            ("threads", .number(Double(c.threads))),
            ("eval_every", .number(Double(c.evalEvery))),
            ("eval_windows", .number(Double(c.evalWindows))),
            ("checkpoint_every", .number(Double(c.checkpointEvery))),
            ("refinement", .string(main.refinement.setup.config.summary)),
        ])
    }
}

/// A run state in a checkpoint: the main run's sections have bare names, a twin's the prefix
/// `twin.` (`Twin.sectionPrefix`). Its small state (AdamW's step, the refinement snapshot, the data
/// cursor) goes into the metadata, where each owner puts it.
extension RunState {
    /// AdamW's arenas as sections `prefix`adam.m, .v, .previousGrad and .previousUpdate (the
    /// pointers live as long as the state).
    func optimizerSections(prefix: String) -> [(String, UnsafePointer<Float>, Int)] {
        let o = optimizer, n = optimizer.count
        return [(prefix + "adam.m", UnsafePointer(o.m), n), (prefix + "adam.v", UnsafePointer(o.v), n),
                (prefix + "adam.previousGrad", UnsafePointer(o.previousGrad), n),
                (prefix + "adam.previousUpdate", UnsafePointer(o.previousUpdate), n)]
    }

    /// The time-band EMAs as sections `prefix`time.fast and .slow, with the started flags as a
    /// text of 0s and 1s and the fallback count (nil: the time axis is off).
    func timeSections(prefix: String) -> (started: String, guardFallbacks: Int, sections: [(String, [Float])])? {
        guard let s = refinement.timeFilter?.saveState() else { return nil }
        let names = Self.timeSectionNames(prefix: prefix)
        return (s.started.map { $0 ? "1" : "0" }.joined(), s.guardFallbacks, [(names.fast, s.fast), (names.slow, s.slow)])
    }

    /// The names of the time-band EMAs' sections: `prefix`time.fast and `prefix`time.slow.
    static func timeSectionNames(prefix: String) -> (fast: String, slow: String) {
        (prefix + "time.fast", prefix + "time.slow")
    }

    /// Loads sections `prefix`params and `prefix`adam.* into the arenas, and AdamW's step.
    func loadArenas(_ ckpt: Checkpoint, prefix: String, adamSteps: Int) throws {
        try ckpt.load(prefix + "params", into: params.pointer, count: params.count)
        for (name, p, n) in optimizerSections(prefix: prefix) {
            try ckpt.load(name, into: UnsafeMutablePointer(mutating: p), count: n)
        }
        optimizer.stepCount = adamSteps
    }

    /// Turns the time axis' EMAs on with the checkpoint's sections `prefix`time.* (see
    /// `timeSections`), which a checkpoint that records the axis as started must have.
    func loadTime(_ ckpt: Checkpoint, prefix: String, started: String, guardFallbacks: Int) throws {
        let names = Self.timeSectionNames(prefix: prefix)
        guard let fast = ckpt.sections[names.fast], let slow = ckpt.sections[names.slow] else {
            throw CheckpointError("checkpoint records a started time axis\(prefix.isEmpty ? "" : " for `\(prefix)`") but has no sections \(names.fast) and \(names.slow)")
        }
        try refinement.startTimeFilter()
        try refinement.timeFilter!.restore(TimeBandFilter.State(fast: fast, slow: slow, started: started.map { $0 == "1" },
                                                                guardFallbacks: guardFallbacks))
    }
}

/// Calls `body` with pointers to the arrays' values (alive for the call), in order.
func withPointers<R>(_ arrays: [(String, [Float])], _ body: ([(String, UnsafePointer<Float>, Int)]) throws -> R) rethrows -> R {
    guard let (name, first) = arrays.first else { return try body([]) }
    return try first.withUnsafeBufferPointer { p in
        try withPointers(Array(arrays.dropFirst())) { rest in
            // An empty array may have no base address; a section of 0 values reads nothing.
            let base = p.baseAddress ?? UnsafePointer(bitPattern: MemoryLayout<Float>.alignment)!
            return try body([(name, base, p.count)] + rest)
        }
    }
}

extension Checkpoint {
    /// The id of the run that wrote this checkpoint; nil for a file written before checkpoints
    /// carried it, or by a trainer with no run file.
    public var runId: String? { metadata.extra[Trainer.runIdKey] }
}
