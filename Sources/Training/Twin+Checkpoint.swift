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
/// twin's run state has the main run's sections with the prefix `twin.` (`RunState`'s
/// checkpoint sections: `twin.params`, `twin.adam.*` and, when its time axis is on, `twin.time.*`).
extension Twin {
    static let checkpointKey = "twin"
    /// What the names of the twin's state's sections begin with.
    static let sectionPrefix = "twin."

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
    func checkpointSections() throws -> (metadata: String, pointers: [(String, UnsafePointer<Float>, Int)], arrays: [(String, [Float])]) {
        var encoder = RecordEncoder()
        let line = String(decoding: encoder.encode(.event(change)), as: UTF8.self).trimmingCharacters(in: .newlines)
        let time = state.timeSections(prefix: Self.sectionPrefix)
        let saved = Saved(changeStep: changeStep, windowSteps: windowSteps, closedAtStep: closedAtStep, description: changeDescription,
                          change: line, differences: differences.values.map(\.bitPattern), adamSteps: state.optimizer.stepCount,
                          refinement: state.refinement.snapshot(), timeStarted: time?.started, timeGuardFallbacks: time?.guardFallbacks)
        // The parameters go after the main run's time sections, as files since version 2 have them.
        let arrays = [(Self.sectionPrefix + "params", state.params.values)] + (time?.sections ?? [])
        return (String(decoding: try JSONEncoder().encode(saved), as: UTF8.self), state.optimizerSections(prefix: Self.sectionPrefix), arrays)
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
        // A copy of the main state gives the shape; the checkpoint's values replace its arenas and
        // refinement (the guard window, data cursor and last loss a twin carries but does not use).
        let state = t.main.copy()
        try state.loadArenas(ckpt, prefix: Self.sectionPrefix, adamSteps: saved.adamSteps)
        do {
            try state.refinement.restore(saved.refinement)
            if let started = saved.timeStarted {
                try state.loadTime(ckpt, prefix: Self.sectionPrefix, started: started, guardFallbacks: saved.timeGuardFallbacks ?? 0)
            } else {
                state.refinement.dropTimeFilter()
            }
        } catch let e as CheckpointError {
            throw e
        } catch {
            throw CheckpointError("checkpoint's twin does not fit this run (\(error))")
        }
        guard case let .event(change)? = try? RecordDecoder.record(Array(saved.change.utf8)) else {
            throw CheckpointError("checkpoint's twin: its change event is unreadable ('\(saved.change)')")
        }
        let twin = Twin(state: state, changeStep: saved.changeStep, windowSteps: saved.windowSteps, change: change,
                        description: saved.description)
        twin.differences = PairedDifferences(values: saved.differences.map(Double.init(bitPattern:)))
        twin.closedAtStep = saved.closedAtStep
        return twin
    }
}
