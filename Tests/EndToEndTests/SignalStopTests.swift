import Foundation
import TestSupport
import Testing

/// A stop that comes from a signal is recorded as one (issue 18: an event-source type; before, every
/// stop, pause and resume said `key`).
@Suite struct SignalStopTests {
    @Test("SIGTERM stops a headless run cleanly: a stop event with source signal, then the end record")
    func sigtermIsRecordedAsSignal() throws {
        let binary = try #require(EndToEnd.binary, "gradflow binary not found next to the test bundle (set GRADFLOW_BINARY)")
        let fm = FileManager.default
        let dir = fm.temporaryDirectory.appendingPathComponent("gradflow-sigterm-\(UUID().uuidString)").path
        defer { try? fm.removeItem(atPath: dir) }
        let run = try ChildProcess.start(binary.path, [
            "train", "--no-tui", "--layers", "1", "--heads", "2", "--dim", "16", "--context", "32", "--batch", "2",
            "--steps", "1000000", "--eval-every", "0", "--threads", "1", "--out", dir,
        ])
        // Wait for the first step record (a backstop of 120 s for a busy machine), then SIGTERM.
        let file = dir + "/run.jsonl"
        let deadline = Date(timeIntervalSinceNow: 120)
        while Date() < deadline, !((try? String(contentsOfFile: file, encoding: .utf8))?.contains("\"type\":\"step\"") ?? false) {
            usleep(50_000)
        }
        run.signal(SIGTERM)
        let status = run.wait(timeout: 120)
        #expect(status != nil, "gradflow train did not stop within 120 s of SIGTERM")
        let lines = ((try? String(contentsOfFile: file, encoding: .utf8)) ?? "").split(separator: "\n")
        let stop = lines.first { $0.contains("\"type\":\"event\"") && $0.contains("\"kind\":\"stop\"") }
        #expect(stop?.contains("\"source\":\"signal\"") == true, "the stop event: \(stop.map(String.init) ?? "none")")
        #expect(lines.last?.contains("\"type\":\"end\"") == true && lines.last?.contains("\"reason\":\"interrupted\"") == true,
                "the last line: \(lines.last.map(String.init) ?? "none")")
    }
}
