import Foundation
import Kernels
import Model

/// The checkpoints of a run folder (`ckpt-NNNNNN.gfck`, see `Trainer.checkpointPath`), and a
/// checkpoint's model for inference.
public enum CheckpointFiles {
    /// Checkpoint files in `runDirectory` by step, oldest first; empty when there are none or the
    /// folder cannot be read.
    public static func list(runDirectory: String) -> [(step: Int, path: String)] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: runDirectory)) ?? []
        var found: [(step: Int, path: String)] = []
        for name in names where name.hasPrefix("ckpt-") && name.hasSuffix(".gfck") {
            let digits = name.dropFirst(5).dropLast(5)
            guard !digits.isEmpty, digits.allSatisfy(\.isASCII), let step = Int(digits) else { continue }
            found.append((step, Trainer.checkpointPath(runDirectory: runDirectory, step: step)))
        }
        return found.sorted { $0.step < $1.step }
    }

    /// The temporary a checkpoint is written to before it is renamed into place: `path.tmp-PID`.
    public static func temporaryPath(for path: String, pid: pid_t) -> String {
        path + ".tmp-\(pid)"
    }

    /// Removes the temporaries of checkpoints that were never finished in `runDirectory`: those of
    /// process `pid` (a process quitting at once in the middle of a write), or all of them (nil:
    /// a writer that holds the run file's lock, so no other process is writing one). Returns how
    /// many went.
    @discardableResult
    public static func removeTemporaries(in runDirectory: String, pid: pid_t? = nil) -> Int {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: runDirectory)) ?? []
        var removed = 0
        for name in names where name.hasPrefix("ckpt-") && name.contains(".gfck.tmp-") {
            if let pid, !name.hasSuffix(".tmp-\(pid)") { continue }
            if unlink((runDirectory as NSString).appendingPathComponent(name)) == 0 { removed += 1 }
        }
        return removed
    }

    /// A checkpoint file, or the latest checkpoint of a run folder at or before `step` (nil: the
    /// latest). The error names the path and what was expected.
    public static func resolve(_ path: String, atOrBefore step: Int? = nil) throws -> String {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw CheckpointError("\(path): no such run folder or checkpoint file")
        }
        guard isDirectory.boolValue else { return path }
        let all = list(runDirectory: path)
        guard !all.isEmpty else {
            throw CheckpointError("\(path): no checkpoint in this folder (expected files named ckpt-NNNNNN.gfck)")
        }
        guard let step else { return all.last!.path }
        guard let found = all.last(where: { $0.step <= step }) else {
            throw CheckpointError("\(path): no checkpoint at or before step \(step) (the first is at step \(all[0].step))")
        }
        return found.path
    }
}

extension Checkpoint {
    /// A model of the checkpoint's shape holding its parameters, with room for `batch` windows,
    /// whose kernels use `threads` workers.
    public func model(batch: Int = 1, threads: Int = 1) throws -> GPT {
        let config = metadata.config.model
        if let e = config.validationError() { throw CheckpointError("checkpoint model is unusable: \(e)") }
        let gpt = GPT(config: config, batch: batch, seed: 0, parallel: Parallel(threads: threads))
        try load("params", into: gpt.params, count: gpt.layout.count)
        return gpt
    }

    /// Copies section `name` into `p`; it must hold exactly `count` values.
    func load(_ name: String, into p: UnsafeMutablePointer<Float>, count: Int) throws {
        guard let v = sections[name] else { throw CheckpointError("checkpoint has no section \(name)") }
        guard v.count == count else {
            throw CheckpointError("checkpoint section \(name) has \(v.count) values; this model needs \(count)")
        }
        v.withUnsafeBufferPointer { p.update(from: $0.baseAddress!, count: count) }
    }
}
