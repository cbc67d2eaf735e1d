import ArgumentParser
import Foundation
import Telemetry
import Training

/// `gradflow train --fork RUN[@STEP]`: continue a run from its latest checkpoint at or before
/// STEP into a new run folder whose header names the parent.
enum Fork {
    /// "runs/a@1200" → ("runs/a", 1200); "runs/a" → ("runs/a", nil). Only digits after the last
    /// `@` make a step, so a folder name may contain `@`.
    static func parse(_ spec: String) -> (run: String, step: Int?) {
        if let at = spec.lastIndex(of: "@") {
            let digits = spec[spec.index(after: at)...]
            if !digits.isEmpty, digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber), let step = Int(digits) {
                return (String(spec[..<at]), step)
            }
        }
        return (spec, nil)
    }

    /// The parent's training data as its header names it: a file or folder, a synthetic task's
    /// spec, or nil for the embedded corpus. Throws when the parent's data is gone.
    static func trainingDataPath(_ spec: String, flag: String = "--fork") throws -> String? {
        guard let header = try? RunFileReader(path: parse(spec).run).header, let train = header.trainingData else { return nil }
        if let synthetic = SyntheticTask.spec(datasetName: train.trainingName) { return synthetic }
        if train.path == ByteDataset.embeddedPath { return nil }
        guard FileManager.default.fileExists(atPath: train.path) else {
            throw ValidationError("\(flag) \(spec): the run's training data \(train.path) is not there any more; give it with --data PATH")
        }
        return train.path
    }

    /// The checkpoint to start from and the parent record for the new run's header.
    static func locate(_ spec: String) throws -> (checkpoint: Checkpoint, parent: RunParent) {
        let (run, step) = parse(spec)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: run, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ValidationError("--fork \(spec): \(run) is not a run folder")
        }
        do {
            let path = try CheckpointFiles.resolve(run, atOrBefore: step)
            let checkpoint = try Checkpoint.read(path: path)
            let done = checkpoint.metadata.step, planned = checkpoint.metadata.config.steps
            guard done < planned else {
                throw ValidationError("--fork \(spec): the checkpoint at step \(done) is the run's end (all \(planned) steps done), "
                                      + "so a fork from it would train no steps; fork from an earlier step (RUN@STEP)")
            }
            let name = (try? RunFileReader(path: run).header.runName) ?? (run as NSString).lastPathComponent
            return (checkpoint, RunParent(run: name, step: checkpoint.metadata.step, checkpoint: path))
        } catch let e as CheckpointError {
            throw ValidationError("--fork \(spec): \(e.description)")
        }
    }

    /// The event that opens a fork's run file.
    static func event(_ parent: RunParent) -> EventRecord {
        EventRecord(step: parent.step, t: 0, kind: .resume_run, source: .trainer,
                    message: "fork of \(parent.run) at step \(parent.step) (\(parent.checkpoint))")
    }
}
