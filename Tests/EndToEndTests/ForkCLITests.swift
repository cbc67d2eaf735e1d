import Foundation
import TestSupport
import Testing

/// `gradflow train --fork RUN@STEP` on a tiny run trained here.
@Suite(.serialized) struct ForkCLITests {
    /// Step and eval losses by step, as written (the exact decimal text, so equality is bit for bit).
    static func losses(_ file: String) throws -> [String: String] {
        var out: [String: String] = [:]
        for line in try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n") {
            guard line.contains(#""type":"step""#) || line.contains(#""type":"eval""#),
                  let step = line.firstMatch(of: #/"step":(\d+)/#)?.1 else { continue }
            let kind = line.contains(#""type":"step""#) ? "step" : "eval"
            let losses = line.matches(of: #/"loss":([-0-9.e+]+)/#).map { String($0.1) }.joined(separator: ",")
            out["\(kind) \(step)"] = losses
        }
        return out
    }

    @Test(.timeLimit(.minutes(10)))
    func aForkWithoutChangesReproducesTheParentFromItsCheckpoint() throws {
        let binary = try #require(EndToEnd.binary, "gradflow binary not found next to the test bundle (set GRADFLOW_BINARY)")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gradflow-fork-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let parent = dir.appendingPathComponent("parent").path
        let trained = ChildProcess.run(binary.path, ["train", "--layers", "2", "--heads", "2", "--dim", "16", "--context", "32",
                                                     "--batch", "2", "--steps", "40", "--eval-every", "10", "--eval-windows", "2",
                                                     "--checkpoint-every", "20", "--threads", "2", "--lr", "3e-3",
                                                     "--time-weights", "0.8,1,1.2", "--no-tui", "--out", parent])
        #expect(trained.status == 0, "training failed:\n\(trained.output)")
        // @25 takes the checkpoint at step 20, the latest at or before it.
        let child = dir.appendingPathComponent("child").path
        let forked = ChildProcess.run(binary.path, ["train", "--fork", parent + "@25", "--no-tui", "--out", child])
        #expect(forked.status == 0, "fork failed:\n\(forked.output)")
        let header = try String(contentsOfFile: child + "/run.jsonl", encoding: .utf8).split(separator: "\n").first ?? ""
        #expect(header.contains(#""parent":{"run":"parent","step":20,"checkpoint":""#), "\(header)")
        #expect(header.contains("ckpt-000020.gfck"))

        let a = try Self.losses(parent + "/run.jsonl"), b = try Self.losses(child + "/run.jsonl")
        #expect(b["step 19"] == nil && b["step 20"] != nil, "the fork starts at the checkpoint's step")
        let shared = b.keys.sorted()
        #expect(shared.count == 20 + 2, "20 steps and evals at 30 and 40: \(shared)")
        for key in shared { #expect(a[key] == b[key], "\(key): parent \(a[key] ?? "none"), fork \(b[key] ?? "none")") }

        let listed = ChildProcess.run(binary.path, ["runs", dir.path]).output
        #expect(listed.split(separator: "\n").contains { $0.hasPrefix("child ") && $0.hasSuffix("parent@20") }, "\(listed)")

        let refused = ChildProcess.run(binary.path, ["train", "--fork", parent + "@5", "--no-tui", "--out", dir.appendingPathComponent("x").path])
        #expect(refused.status != 0)
        #expect(refused.output.contains("no checkpoint at or before step 5 (the first is at step 20)"), "\(refused.output)")
        let again = ChildProcess.run(binary.path, ["train", "--fork", parent + "@25", "--no-tui", "--out", child])
        #expect(again.status != 0 && again.output.contains("already holds a run"), "a fork never overwrites a run")
        // The run's last checkpoint leaves a fork nothing to train.
        let atEnd = ChildProcess.run(binary.path, ["train", "--fork", parent, "--no-tui", "--out", dir.appendingPathComponent("y").path])
        #expect(atEnd.status != 0 && atEnd.output.contains("is the run's end (all 40 steps done)"), "\(atEnd.output)")
    }

    @Test(.timeLimit(.minutes(10)))
    func aForkFindsItsParentsDataOrSaysItIsGone() throws {
        let binary = try #require(EndToEnd.binary, "gradflow binary not found next to the test bundle (set GRADFLOW_BINARY)")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gradflow-forkdata-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let model = ["--layers", "1", "--heads", "2", "--dim", "16", "--context", "32", "--batch", "2", "--steps", "20",
                     "--eval-windows", "2", "--checkpoint-every", "10", "--threads", "1", "--no-tui"]
        // A synthetic task with a parameter: the fork trains on the same task.
        let synthetic = dir.appendingPathComponent("synthetic").path
        let trained = ChildProcess.run(binary.path, ["train", "--data", "synthetic:repeat:9"] + model + ["--out", synthetic])
        #expect(trained.status == 0, "training failed:\n\(trained.output)")
        let forked = ChildProcess.run(binary.path, ["train", "--fork", synthetic + "@10", "--no-tui", "--out", dir.appendingPathComponent("f1").path])
        #expect(forked.status == 0, "fork failed:\n\(forked.output)")
        let header = try String(contentsOfFile: dir.appendingPathComponent("f1/run.jsonl").path, encoding: .utf8).split(separator: "\n").first ?? ""
        #expect(header.contains(#""name":"train:synthetic-repeat-9""#), "\(header)")
        // A data file that is gone: the fork says so instead of training on something else.
        let file = dir.appendingPathComponent("text.txt")
        try String(repeating: "to be or not to be, that is the question. ", count: 200).write(to: file, atomically: true, encoding: .utf8)
        let onFile = dir.appendingPathComponent("file").path
        #expect(ChildProcess.run(binary.path, ["train", "--data", file.path] + model + ["--out", onFile]).status == 0)
        // --resume without --data continues on the run's own data too (it took the embedded corpus).
        // (The copy loses its last checkpoint, as a run killed before step 20 would not have it.)
        let copy = dir.appendingPathComponent("resumed").path
        try FileManager.default.copyItem(atPath: onFile, toPath: copy)
        try FileManager.default.removeItem(atPath: copy + "/ckpt-000020.gfck")
        // (The run folder names its latest checkpoint.)
        let resumed = ChildProcess.run(binary.path, ["train", "--resume", copy, "--no-tui"])
        #expect(resumed.status == 0, "resume failed:\n\(resumed.output)")
        let uninterrupted = try Self.losses(onFile + "/run.jsonl"), again = try Self.losses(copy + "/run.jsonl")
        #expect(uninterrupted.count >= 20 && (10..<20).allSatisfy { again["step \($0)"] != nil && again["step \($0)"] == uninterrupted["step \($0)"] },
                "the resumed steps equal the uninterrupted run's, bit for bit")
        try FileManager.default.removeItem(at: file)
        let gone = ChildProcess.run(binary.path, ["train", "--fork", onFile + "@10", "--no-tui", "--out", dir.appendingPathComponent("f2").path])
        #expect(gone.status != 0)
        #expect(gone.output.contains("the run's training data \(file.path) is not there any more; give it with --data PATH"), "\(gone.output)")
    }

    @Test(.timeLimit(.minutes(10)))
    func aResumeRefusesWhatItWouldIgnoreAndAnotherRunsCheckpoint() throws {
        let binary = try #require(EndToEnd.binary, "gradflow binary not found next to the test bundle (set GRADFLOW_BINARY)")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gradflow-resumeflags-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let model = ["--layers", "1", "--heads", "2", "--dim", "16", "--context", "32", "--batch", "2", "--steps", "20",
                     "--eval-windows", "2", "--checkpoint-every", "10", "--threads", "1", "--no-tui"]
        let a = dir.appendingPathComponent("a").path, b = dir.appendingPathComponent("b").path
        #expect(ChildProcess.run(binary.path, ["train"] + model + ["--out", a]).status == 0)
        #expect(ChildProcess.run(binary.path, ["train"] + model + ["--out", b]).status == 0)
        let before = try String(contentsOfFile: b + "/run.jsonl", encoding: .utf8)

        // Flags whose settings the checkpoint holds: named, not silently ignored.
        let longer = ChildProcess.run(binary.path, ["train", "--resume", b + "/ckpt-000010.gfck", "--steps", "5000", "--no-tui"])
        #expect(longer.status != 0 && longer.output.contains("drop --steps 5000"), "\(longer.output)")
        // A flag problem found while the command runs: status 64, pointing to train's help (not
        // the root's "Usage: gradflow <subcommand>").
        #expect(longer.status == 64 && longer.output.contains("See 'gradflow train --help'")
                && !longer.output.contains("<subcommand>"), "\(longer.output)")
        let forkLr = ChildProcess.run(binary.path, ["train", "--fork", b + "@10", "--lr", "0.01", "--no-tui", "--out", dir.appendingPathComponent("f").path])
        #expect(forkLr.status != 0 && forkLr.output.contains("drop --lr 0.01"), "\(forkLr.output)")
        // --out elsewhere: the resume would still write into the checkpoint's folder.
        let elsewhere = ChildProcess.run(binary.path, ["train", "--resume", b + "/ckpt-000010.gfck", "--no-tui", "--out", dir.appendingPathComponent("c").path])
        #expect(elsewhere.status != 0 && elsewhere.output.contains("--resume continues the run in its checkpoint's folder"), "\(elsewhere.output)")
        // Run a's checkpoint copied into run b's folder continues neither.
        try FileManager.default.copyItem(atPath: a + "/ckpt-000010.gfck", toPath: b + "/ckpt-000011.gfck")
        let foreign = ChildProcess.run(binary.path, ["train", "--resume", b + "/ckpt-000011.gfck", "--no-tui"])
        #expect(foreign.status != 0 && foreign.output.contains("a checkpoint continues only its own run"), "\(foreign.output)")
        #expect(try String(contentsOfFile: b + "/run.jsonl", encoding: .utf8) == before, "a refused resume wrote to the run file")
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("f").path)
                && !FileManager.default.fileExists(atPath: dir.appendingPathComponent("c").path))
        try FileManager.default.removeItem(atPath: b + "/ckpt-000011.gfck")
        // An earlier checkpoint would overwrite the later ones: --fork is for branching; a
        // completed run has nothing to resume.
        let earlier = ChildProcess.run(binary.path, ["train", "--resume", b + "/ckpt-000010.gfck", "--no-tui"])
        #expect(earlier.status == 64 && earlier.output.contains("the run has later checkpoints (ckpt-000020.gfck)")
                && earlier.output.contains("Branch from step 10 into a new run with --fork \(b)@10 --out NEWDIR")
                && !earlier.output.contains("Resume from the latest"), "\(earlier.output)")
        let completed = ChildProcess.run(binary.path, ["train", "--resume", b + "/ckpt-000020.gfck", "--no-tui"])
        #expect(completed.status == 64 && completed.output.contains("the run completed all its 20 steps; there is nothing to resume"),
                "\(completed.output)")
        #expect(try String(contentsOfFile: b + "/run.jsonl", encoding: .utf8) == before, "a refused resume wrote to the run file")
        // The run's own command line with --resume added, its folder spelled another way: accepted
        // (its last checkpoint gone, as after a crash before it).
        try FileManager.default.removeItem(atPath: b + "/ckpt-000020.gfck")
        let same = ChildProcess.run(binary.path, ["train"] + model + ["--resume", b + "/ckpt-000010.gfck", "--out", b + "/sub/.."])
        #expect(same.status == 0, "\(same.output)")
    }
}
