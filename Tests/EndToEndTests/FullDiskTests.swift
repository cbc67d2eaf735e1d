import Foundation
import TestSupport
import Testing

/// A run file that can no longer be written stops the run at once, with a message that says so
/// and a non-zero status, instead of training on unrecorded until the next checkpoint fails.
///
/// The full disk is a 600 KiB tmpfs mounted in a mount namespace of the test's own (`unshare -m`),
/// which needs root; elsewhere the test is reported as skipped.
@Suite struct FullDiskTests {
    /// Whether this machine can mount a tmpfs of the test's own: root, with `unshare`, allowed to
    /// mount (root in a container may lack the right).
    static let canMount: Bool = {
        guard geteuid() == 0, let unshare = ChildProcess.which("unshare") else { return false }
        return ChildProcess.run(unshare, ["-m", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"], timeout: 30).status == 0
    }()

    @Test("A full disk under the run file stops the run promptly, says so, and exits 1", .timeLimit(.minutes(5)),
          .enabled(if: canMount, "mounting a small tmpfs needs root, unshare and the right to mount"))
    func fullDiskStopsTheRun() throws {
        let binary = try #require(EndToEnd.binary, "gradflow binary not found next to the test bundle (set GRADFLOW_BINARY)")
        let unshare = try #require(ChildProcess.which("unshare"))
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gradflow-fulldisk-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // A tiny model: each step record is about 1 KB, so the run file fills the disk after a few
        // hundred of the 100,000 steps, long before the first checkpoint (step 50,000).
        let train = [binary.path, "train", "--no-tui", "--layers", "1", "--heads", "2", "--dim", "16", "--context", "32",
                     "--batch", "2", "--steps", "100000", "--checkpoint-every", "50000", "--eval-every", "0", "--threads", "1",
                     "--out", dir + "/run"].map { "'\($0)'" }.joined(separator: " ")
        let r = ChildProcess.run(unshare, ["-m", "sh", "-c", "mount -t tmpfs -o size=600k tmpfs '\(dir)' && \(train); echo \"status $?\"; "
                                           + "ls '\(dir)/run'; wc -c < '\(dir)/run/run.jsonl'"], timeout: 240)
        let out = r.output
        #expect(out.contains("status 1"), "\(out)")
        #expect(out.contains("No space left on device; stopping at the end of this step"), "\(out)")
        #expect(out.contains("the run file ends before step") && out.contains("continue with --resume"), "\(out)")
        // Stopped at once: far fewer steps than the 100,000 planned (the stop event names the step).
        let stopped = out.firstMatch(of: #/ends before step (\d+)/#).flatMap { Int($0.1) }
        #expect(stopped.map { $0 < 20_000 } == true, "stopped at step \(stopped.map(String.init) ?? "?")\n\(out)")
    }
}
