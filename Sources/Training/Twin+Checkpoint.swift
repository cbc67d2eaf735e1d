import Foundation
import Model
import Refinement
import Telemetry

/// The twin in a checkpoint (format version 2): an open window, or a twin kept after its verdict
/// for a revert, survives a crash, so a resumed run (or a fork from that checkpoint) finishes
/// the window and writes the verdict the uninterrupted run writes, bit for bit.
///
/// Metadata `extra["twin"]` holds `Twin.Saved` as JSON (the change's event as a run-file line,
/// the paired differences as IEEE bit patterns, the refinement snapshot, AdamW's step); the
/// arenas are sections `twin.params`, `twin.adam.m`, `twin.adam.v`, `twin.adam.previousGrad`,
/// `twin.adam.previousUpdate` and, when the twin's time axis is on, `twin.time.fast` and
/// `twin.time.slow`.
extension Twin {
    static let checkpointKey = "twin"

    /// The twin's small state. `version` is the twin section's own: a later layout bumps it.
    struct Saved: Codable {
        var version = Saved.currentVersion
        var changeStep: Int
        var windowSteps: Int
        var closedAtStep: Int?
        var description: String
        /// The change's event as written in a run file (one line, no newline).
        var change: String
        /// d_t, as `Double.bitPattern` (exact, and a non-finite difference survives too).
        var differences: [UInt64]
        var adamSteps: Int
        var refinement: RefinementEngine.Snapshot
        /// Time-band filter: which tensors have started, and the fallback count (nil: axis off).
        var timeStarted: String?
        var timeGuardFallbacks: Int?

        static let currentVersion = 1
    }

    /// The metadata text, the sections that point into the optimizer (alive as long as the
    /// twin), and those held in arrays (see `withPointers`).
    func checkpointSections(count: Int) throws -> (metadata: String, pointers: [(String, UnsafePointer<Float>, Int)], arrays: [(String, [Float])]) {
        var encoder = RecordEncoder()
        let line = String(decoding: encoder.encode(.event(change)), as: UTF8.self).trimmingCharacters(in: .newlines)
        let time = engine.timeFilter?.saveState()
        let saved = Saved(changeStep: changeStep, windowSteps: windowSteps, closedAtStep: closedAtStep, description: changeDescription,
                          change: line, differences: differences.values.map(\.bitPattern), adamSteps: optimizer.stepCount,
                          refinement: engine.snapshot(), timeStarted: time.map { $0.started.map { $0 ? "1" : "0" }.joined() },
                          timeGuardFallbacks: time?.guardFallbacks)
        let pointers: [(String, UnsafePointer<Float>, Int)] = [
            ("twin.adam.m", UnsafePointer(optimizer.m), count),
            ("twin.adam.v", UnsafePointer(optimizer.v), count),
            ("twin.adam.previousGrad", UnsafePointer(optimizer.previousGrad), count),
            ("twin.adam.previousUpdate", UnsafePointer(optimizer.previousUpdate), count),
        ]
        var arrays: [(String, [Float])] = [("twin.params", params)]
        if let time { arrays += [("twin.time.fast", time.fast), ("twin.time.slow", time.slow)] }
        return (String(decoding: try JSONEncoder().encode(saved), as: UTF8.self), pointers, arrays)
    }

    /// The checkpoint's twin for `trainer` (whose model and refinement setup it must fit), or nil
    /// when the checkpoint holds none (every version-1 file).
    static func restore(from ckpt: Checkpoint, trainer t: Trainer) throws -> Twin? {
        guard let text = ckpt.metadata.extra[checkpointKey] else { return nil }
        let saved: Saved
        do {
            saved = try JSONDecoder().decode(Saved.self, from: Data(text.utf8))
        } catch {
            throw CheckpointError("checkpoint's twin is unreadable (\(error))")
        }
        guard saved.version == Saved.currentVersion else {
            throw CheckpointError("checkpoint's twin has version \(saved.version); this gradflow reads version \(Saved.currentVersion)")
        }
        let count = t.model.layout.count
        var params = [Float](repeating: 0, count: count)
        try params.withUnsafeMutableBufferPointer { try ckpt.load("twin.params", into: $0.baseAddress!, count: count) }
        let optimizer = AdamW(config: t.config.adam, count: count)
        try ckpt.load("twin.adam.m", into: optimizer.m, count: count)
        try ckpt.load("twin.adam.v", into: optimizer.v, count: count)
        try ckpt.load("twin.adam.previousGrad", into: optimizer.previousGrad, count: count)
        try ckpt.load("twin.adam.previousUpdate", into: optimizer.previousUpdate, count: count)
        optimizer.stepCount = saved.adamSteps
        let engine: RefinementEngine
        do {
            engine = try RefinementEngine(setup: t.engine.setup, layout: t.model.layout, heads: t.engine.heads,
                                          totalSteps: t.config.steps, context: t.config.context)
            try engine.restore(saved.refinement)
            if let started = saved.timeStarted {
                guard let fast = ckpt.sections["twin.time.fast"], let slow = ckpt.sections["twin.time.slow"] else {
                    throw CheckpointError("checkpoint's twin has a time axis but no sections twin.time.fast and twin.time.slow")
                }
                try engine.startTimeFilter()
                try engine.timeFilter!.restore(TimeBandFilter.State(fast: fast, slow: slow, started: started.map { $0 == "1" },
                                                                    guardFallbacks: saved.timeGuardFallbacks ?? 0))
            } else {
                engine.dropTimeFilter()
            }
        } catch let e as CheckpointError {
            throw e
        } catch {
            throw CheckpointError("checkpoint's twin does not fit this run (\(error))")
        }
        guard case let .event(change)? = try? RecordDecoder.record(Array(saved.change.utf8)) else {
            throw CheckpointError("checkpoint's twin: its change event is unreadable ('\(saved.change)')")
        }
        let twin = Twin(params: params, optimizer: optimizer, engine: engine, changeStep: saved.changeStep,
                        windowSteps: saved.windowSteps, change: change, description: saved.description)
        twin.differences = PairedDifferences(values: saved.differences.map(Double.init(bitPattern:)))
        twin.closedAtStep = saved.closedAtStep
        return twin
    }
}
