import Foundation
import TestSupport
import Testing

/// `gradflow sample` and `gradflow runs` on a tiny run trained here.
@Suite(.serialized) struct SampleAndRunsCLITests {
    @Test(.timeLimit(.minutes(10)))
    func sampleIsDeterministicRefusesBadPathsAndRunsListsTheRun() throws {
        let binary = try #require(EndToEnd.binary, "gradflow binary not found next to the test bundle (set GRADFLOW_BINARY)")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gradflow-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let run = dir.appendingPathComponent("tiny").path
        let trained = ChildProcess.run(binary.path, ["train", "--layers", "2", "--heads", "2", "--dim", "16", "--context", "32",
                                                     "--batch", "2", "--steps", "30", "--eval-every", "15", "--eval-windows", "2",
                                                     "--threads", "1", "--no-tui", "--out", run])
        #expect(trained.status == 0, "training failed:\n\(trained.output)")
        let runFile = try String(contentsOfFile: run + "/run.jsonl", encoding: .utf8)
        #expect(runFile.contains(#""sample_prompt":"\n","sample":""#), "each eval record carries the sample")

        func sample(_ args: [String]) -> (status: Int32, text: String, output: String) {
            let r = ChildProcess.run(binary.path, ["sample"] + args)
            let text = r.output.components(separatedBy: "gradflow sample:").first ?? ""
            return (r.status, text, r.output)
        }
        let a = sample([run, "--prompt", "The ", "--bytes", "64", "--seed", "5"])
        let b = sample([run + "/ckpt-000030.gfck", "--prompt", "The ", "--bytes", "64", "--seed", "5"])
        let c = sample([run, "--prompt", "The ", "--bytes", "64", "--seed", "6"])
        #expect(a.status == 0, "\(a.output)")
        #expect(a.text.hasPrefix("The "))
        #expect(a.text.utf8.count >= 64 + 4)
        // Off a terminal: the prompt and exactly the bytes drawn, no newline added (counted as
        // bytes: the output above is decoded leniently, and an untrained model draws non-UTF-8).
        let counted = ChildProcess.run("/bin/sh", ["-c", "'\(binary.path)' sample '\(run)' --prompt 'The ' --bytes 64 2>/dev/null | wc -c"])
        #expect(counted.output.trimmingCharacters(in: .whitespacesAndNewlines) == "68", "\(counted.output)")
        #expect(a.text == b.text, "the run folder means its latest checkpoint; same seed, same bytes")
        #expect(a.text != c.text, "another seed draws other bytes")
        #expect(a.output.contains("(step 30)") && a.output.contains("bytes/s"))

        let missing = sample([dir.appendingPathComponent("nope").path])
        #expect(missing.status != 0)
        #expect(missing.output.contains("nope: no such run folder or checkpoint file"), "\(missing.output)")
        let notCheckpoint = sample([run + "/run.jsonl"])
        #expect(notCheckpoint.status != 0)
        #expect(notCheckpoint.output.contains("run.jsonl: not a gradflow checkpoint"), "\(notCheckpoint.output)")
        let emptyFolder = sample([dir.path])
        #expect(emptyFolder.status != 0)
        #expect(emptyFolder.output.contains("no checkpoint in this folder"), "\(emptyFolder.output)")
        #expect(sample([run, "--temperature", "-1"]).status != 0)

        try FileManager.default.createDirectory(at: dir.appendingPathComponent("other"), withIntermediateDirectories: true)
        let listed = ChildProcess.run(binary.path, ["runs", dir.path])
        #expect(listed.status == 0)
        let lines = listed.output.split(separator: "\n")
        #expect(lines.first?.hasPrefix("NAME") == true)
        #expect(lines.contains { $0.hasPrefix("tiny ") && $0.contains("30/30") && $0.contains("finished") }, "\(listed.output)")
        #expect(lines.contains { $0.hasPrefix("other ") && $0.contains("not a run") }, "\(listed.output)")
        let json = ChildProcess.run(binary.path, ["runs", dir.path, "--json"])
        let parsed = try JSONSerialization.jsonObject(with: Data(json.output.utf8)) as? [[String: Any]]
        #expect(parsed?.first { $0["name"] as? String == "tiny" }?["state"] as? String == "finished")
        #expect(ChildProcess.run(binary.path, ["runs", dir.appendingPathComponent("nope").path]).status != 0)

        // --compare: an unreadable reference is an error naming the file (checked before any output).
        let badRef = ChildProcess.run(binary.path, ["replay", run, "--no-tui", "--compare", run + "/ckpt-000030.gfck"])
        #expect(badRef.status != 0)
        #expect(badRef.output.contains("--compare: \(run)/ckpt-000030.gfck:1: not a gradflow run file"), "\(badRef.output)")
        #expect(ChildProcess.run(binary.path, ["replay", run, "--no-tui", "--summary-only", "--compare", run]).status == 0)
        let badSummaryRef = ChildProcess.run(binary.path, ["replay", run, "--summary-only", "--compare", run + "/ckpt-000030.gfck"])
        #expect(badSummaryRef.status != 0 && badSummaryRef.output.contains("not a gradflow run file"), "checked with --summary-only too")
        let four = ChildProcess.run(binary.path, ["replay", run, "--no-tui"] + Array(repeating: ["--compare", run], count: 4).flatMap { $0 })
        #expect(four.status != 0 && four.output.contains("at most 3 reference runs"), "\(four.output)")
    }
}
