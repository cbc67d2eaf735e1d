import Foundation
import TestSupport
import Testing

/// `gradflow export`: `-` for standard output, every output checked before any is written, and a
/// pipe or device as the output refused instead of waiting on it.
@Suite struct ExportCLITests {
    @Test(.timeLimit(.minutes(5)))
    func standardOutputAllOrNothingAndNoWaitingOnAPipe() throws {
        let binary = try #require(EndToEnd.binary, "gradflow binary not found next to the test bundle (set GRADFLOW_BINARY)")
        let bash = try #require(ChildProcess.which("bash"), "bash not found")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gradflow-export-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let run = dir + "/run"
        #expect(ChildProcess.run(binary.path, ["train", "--no-tui", "--layers", "1", "--heads", "2", "--dim", "16", "--context", "32",
                                               "--batch", "2", "--steps", "30", "--threads", "1", "--out", run]).status == 0)
        // The CSV on standard output, and nothing else there (what was written goes to stderr).
        let piped = ChildProcess.run(bash, ["-c", "'\(binary.path)' export '\(run)' --csv - 2>/dev/null | head -n 2"], timeout: 60)
        let lines = piped.output.split(separator: "\n")
        #expect(lines.count == 2 && lines[0].hasPrefix("step,t,loss,") && lines[1].hasPrefix("0,"), "\(piped.output)")
        // One output that cannot be written: none is.
        try Data("old".utf8).write(to: URL(fileURLWithPath: dir + "/a.svg"))
        let partly = ChildProcess.run(binary.path, ["export", run, "--csv", dir + "/new.csv", "--svg", dir + "/a.svg"], timeout: 60)
        #expect(partly.status != 0 && partly.output.contains("a.svg: already exists"), "\(partly.output)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/new.csv"), "the CSV was written although the SVG could not be")
        // A pipe as the output: refused at once (it used to wait for a reader forever).
        #expect(mkfifo(dir + "/fifo", 0o600) == 0)
        let fifo = ChildProcess.run(binary.path, ["export", run, "--svg", dir + "/fifo", "--force"], timeout: 60)
        #expect(fifo.status > 0 && fifo.output.contains("is not a regular file"), "\(fifo.output)")
        // A link named like a chart that points at a checkpoint is the checkpoint: never replaced.
        try FileManager.default.createSymbolicLink(atPath: dir + "/link.svg", withDestinationPath: run + "/ckpt-000030.gfck")
        let linked = ChildProcess.run(binary.path, ["export", run, "--svg", dir + "/link.svg", "--force"], timeout: 60)
        #expect(linked.status != 0 && linked.output.contains("is a checkpoint"), "\(linked.output)")
        // Standard output and a TensorBoard folder in one call: the event file does not land on
        // descriptor 1 (closing standard output handed its number to the next file opened).
        let both = ChildProcess.run(bash, ["-c", "'\(binary.path)' export '\(run)' --csv - --tensorboard '\(dir)/tb' 2>/dev/null | wc -l"],
                                    timeout: 60)
        #expect(both.output.trimmingCharacters(in: .whitespacesAndNewlines) == "31", "30 rows and the header: \(both.output)")
        let same = ChildProcess.run(binary.path, ["export", run, "--csv", dir + "/same.csv", "--svg", dir + "/./same.csv"], timeout: 60)
        #expect(same.status != 0 && same.output.contains("name the same file"), "\(same.output)")
        let folder = ChildProcess.run(binary.path, ["export", run, "--csv", dir + "/missing/x.csv"], timeout: 60)
        #expect(folder.status != 0 && folder.output.contains("its folder \(dir)/missing does not exist"), "\(folder.output)")
    }
}
