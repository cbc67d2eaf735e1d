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
        if !channel.applied.isEmpty {
            extra[Self.appliedCommandsKey] = String(decoding: try JSONEncoder().encode(channel.applied), as: UTF8.self)
        }
        if learningRateScale != 1 { extra[Self.learningRateScaleKey] = "\(learningRateScale)" }
        extra["refinement"] = String(decoding: try JSONEncoder().encode(engine.snapshot()), as: UTF8.self)
        let count = model.layout.count
        var sections: [(String, UnsafePointer<Float>, Int)] = [
            ("params", UnsafePointer(model.params), count),
            ("adam.m", UnsafePointer(optimizer.m), count),
            ("adam.v", UnsafePointer(optimizer.v), count),
            ("adam.previousGrad", UnsafePointer(optimizer.previousGrad), count),
            ("adam.previousUpdate", UnsafePointer(optimizer.previousUpdate), count),
        ]
        var timeState: TimeBandFilter.State?
        if let filter = engine.timeFilter {
            let s = filter.saveState()
            timeState = s
            extra["time.started"] = s.started.map { $0 ? "1" : "0" }.joined()
            extra["time.guardFallbacks"] = String(s.guardFallbacks)
        }
        let meta = Checkpoint.Metadata(
            config: config, refinement: engine.setup.config, step: step, rngState: [rng.state.0, rng.state.1, rng.state.2, rng.state.3],
            adamSteps: optimizer.stepCount, bestValidationLoss: bestValidation, sections: [], extra: extra)
        let bytes: Int
        if let timeState {
            bytes = try timeState.fast.withUnsafeBufferPointer { fast in
                try timeState.slow.withUnsafeBufferPointer { slow in
                    sections.append(("time.fast", fast.baseAddress!, fast.count))
                    sections.append(("time.slow", slow.baseAddress!, slow.count))
                    return try Checkpoint.write(path: path, metadata: meta, sections: sections)
                }
            }
        } else {
            bytes = try Checkpoint.write(path: path, metadata: meta, sections: sections)
        }
        bus.publish(.checkpoint(CheckpointRecord(step: step, t: elapsed, path: path, bytes: bytes,
                                                 milliseconds: Date().timeIntervalSince(t0) * 1000)))
    }

    /// Loads a checkpoint's state into this freshly built trainer.
    func restore(_ ckpt: Checkpoint) throws {
        let m = ckpt.metadata
        guard m.config.model == config.model else {
            throw CheckpointError("checkpoint is for a different model (\(m.config.model.layers) layers, \(m.config.model.channels) channels, context \(m.config.model.context)); this run has \(config.model.layers) layers, \(config.model.channels) channels, context \(config.model.context)")
        }
        let count = model.layout.count
        try ckpt.load("params", into: model.params, count: count)
        try ckpt.load("adam.m", into: optimizer.m, count: count)
        try ckpt.load("adam.v", into: optimizer.v, count: count)
        try ckpt.load("adam.previousGrad", into: optimizer.previousGrad, count: count)
        try ckpt.load("adam.previousUpdate", into: optimizer.previousUpdate, count: count)
        optimizer.stepCount = m.adamSteps
        guard m.rngState.count == 4 else { throw CheckpointError("checkpoint RNG state is malformed") }
        rng = Xoshiro256(state: (m.rngState[0], m.rngState[1], m.rngState[2], m.rngState[3]))
        step = m.step
        bestValidation = m.bestValidationLoss
        if let text = m.extra[Self.appliedCommandsKey] {
            guard let ids = try? JSONDecoder().decode([String].self, from: Data(text.utf8)) else {
                throw CheckpointError("checkpoint's list of applied commands is malformed")
            }
            channel.applied = ids
        }
        if let text = m.extra[Self.learningRateScaleKey] {
            guard let scale = Double(text), scale > 0 else { throw CheckpointError("checkpoint's learning-rate scale '\(text)' is malformed") }
            learningRateScale = scale
        }
        if let fast = ckpt.sections["time.fast"], let slow = ckpt.sections["time.slow"],
           let started = m.extra["time.started"] {
            // A run that turned the time axis on mid-run has its EMAs in the checkpoint although
            // its starting settings have the axis off.
            try engine.startTimeFilter()
            try engine.timeFilter!.restore(TimeBandFilter.State(fast: fast, slow: slow, started: started.map { $0 == "1" },
                                                    guardFallbacks: Int(m.extra["time.guardFallbacks"] ?? "0") ?? 0))
        }
        if let text = m.extra["refinement"] {
            do {
                try engine.restore(try JSONDecoder().decode(RefinementEngine.Snapshot.self, from: Data(text.utf8)))
            } catch {
                throw CheckpointError("checkpoint's refinement state does not fit this run (\(error))")
            }
        }
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
            ("refinement", .string(engine.setup.config.summary)),
        ])
    }
}
