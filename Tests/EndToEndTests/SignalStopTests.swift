import Foundation
import TestSupport
import Testing

/// A stop that comes from a signal is recorded as one (issue 18: an event-source type; before, every
/// stop, pause and resume said `key`), and losing the terminal or the output stops a run cleanly
/// instead of killing it without its end record.
@Suite struct SignalStopTests {
    /// A headless run of a tiny model that would go on for hours, recording to `dir`.
    static let tinyRun = ["train", "--no-tui", "--layers", "1", "--heads", "2", "--dim", "16", "--context", "32", "--batch", "2",
                          "--steps", "1000000", "--eval-every", "0", "--threads", "1"]

    /// The run file's lines.
    static func lines(_ dir: String) -> [Substring] {
        ((try? String(contentsOfFile: dir + "/run.jsonl", encoding: .utf8)) ?? "").split(separator: "\n")
    }

    /// Waits (a backstop of 120 s for a busy machine) until the run file holds more than `count`
    /// step records; the number it holds.
    @discardableResult
    static func waitForSteps(_ dir: String, moreThan count: Int = 0) -> Int {
        let deadline = Date(timeIntervalSinceNow: 120)
        var n = 0
        repeat {
            n = lines(dir).filter { $0.hasPrefix("{\"type\":\"step\"") }.count
            if n > count { break }
            usleep(50_000)
        } while Date() < deadline
        return n
    }

    /// The stop event said `signal` and the last line is the end record of an interrupted run.
    static func expectCleanStop(_ dir: String, _ comment: String) {
        let lines = lines(dir)
        let stop = lines.first { $0.contains("\"type\":\"event\"") && $0.contains("\"kind\":\"stop\"") }
        #expect(stop?.contains("\"source\":\"signal\"") == true, "\(comment): the stop event: \(stop.map(String.init) ?? "none")")
        #expect(lines.last?.contains("\"type\":\"end\"") == true && lines.last?.contains("\"reason\":\"interrupted\"") == true,
                "\(comment): the last line: \(lines.last.map(String.init) ?? "none")")
        let checkpoints = (try? FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".gfck") }) ?? []
        #expect(!checkpoints.isEmpty, "\(comment): no checkpoint to resume from")
    }

    static func temporaryRunDirectory(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("gradflow-\(name)-\(UUID().uuidString)").path
    }

    @Test("SIGTERM and SIGHUP (the terminal gone; a closing terminal sends two, from the shell and from the kernel) stop a headless run cleanly: a stop event with source signal, a checkpoint, the end record",
          arguments: [[SIGTERM], [SIGHUP], [SIGHUP, SIGHUP]])
    func signalsAreRecordedAsSignal(_ signals: [Int32]) throws {
        let binary = try #require(EndToEnd.binary, "gradflow binary not found next to the test bundle (set GRADFLOW_BINARY)")
        let dir = Self.temporaryRunDirectory("signal")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let run = try ChildProcess.start(binary.path, Self.tinyRun + ["--out", dir])
        defer { run.kill() }
        Self.waitForSteps(dir)
        for (i, signal) in signals.enumerated() {
            if i > 0 { usleep(2_000) }   // a second SIGHUP never forces the exit
            run.signal(signal)
        }
        let status = run.wait(timeout: 120)
        #expect(status == 130, "gradflow train after signals \(signals): status \(status.map(String.init) ?? "still running after 120 s")\n\(run.output)")
        Self.expectCleanStop(dir, "signals \(signals)")
    }

    @Test("A second Ctrl-C quits at once with status 130: no crash, no half-written checkpoint left")
    func aSecondInterruptQuitsAtOnceAndCleanly() throws {
        let binary = try #require(EndToEnd.binary, "gradflow binary not found next to the test bundle (set GRADFLOW_BINARY)")
        // Preset S on two threads, a checkpoint every step: the second signal lands inside
        // OpenBLAS or a checkpoint's write (quitting with exit() there crashed, and left
        // ckpt-*.gfck.tmp-PID behind).
        for attempt in 0..<3 {
            let dir = Self.temporaryRunDirectory("twoints")
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let run = try ChildProcess.start(binary.path, ["train", "--no-tui", "--steps", "100000", "--eval-every", "0",
                                                           "--checkpoint-every", "1", "--threads", "2", "--out", dir])
            defer { run.kill() }
            Self.waitForSteps(dir, moreThan: 2)
            run.signal(SIGINT)
            usleep(useconds_t(2_000 + 3_000 * attempt))
            run.signal(SIGINT)
            let status = run.wait(timeout: 120)
            #expect(status == 130 && !run.output.contains("crashed"), "attempt \(attempt): status \(String(describing: status))\n\(run.output)")
            let left = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.contains(".tmp-") }
            #expect(left.isEmpty, "temporaries left: \(left)")
        }
    }

    @Test("Under nohup a run ignores SIGHUP and goes on; SIGTERM still stops it cleanly")
    func nohupKeepsTheRunGoing() throws {
        let binary = try #require(EndToEnd.binary, "gradflow binary not found next to the test bundle (set GRADFLOW_BINARY)")
        let nohup = try #require(ChildProcess.which("nohup"), "nohup not found")
        let dir = Self.temporaryRunDirectory("nohup")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let run = try ChildProcess.start(nohup, [binary.path] + Self.tinyRun + ["--out", dir])
        defer { run.kill() }
        let before = Self.waitForSteps(dir)
        run.signal(SIGHUP)
        let after = Self.waitForSteps(dir, moreThan: before + 20)
        #expect(run.wait(timeout: 0) == nil && after > before + 20,
                "the run under nohup ended after SIGHUP (\(before) → \(after) steps)\n\(run.output)")
        run.signal(SIGTERM)
        #expect(run.wait(timeout: 120) == 130)
        Self.expectCleanStop(dir, "nohup, then SIGTERM")
    }

    @Test("A closed pipe (`gradflow train --no-tui | head`) stops the run cleanly instead of killing it with SIGPIPE")
    func closedOutputStopsCleanly() throws {
        let binary = try #require(EndToEnd.binary, "gradflow binary not found next to the test bundle (set GRADFLOW_BINARY)")
        let bash = try #require(ChildProcess.which("bash"), "bash not found")
        let dir = Self.temporaryRunDirectory("pipe")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let command = ([binary.path] + Self.tinyRun + ["--report-every", "1", "--out", dir]).map { "'\($0)'" }.joined(separator: " ")
        let run = try ChildProcess.start(bash, ["-c", "set -o pipefail; \(command) | head -n 3 >/dev/null"])
        defer { run.kill() }
        let status = run.wait(timeout: 120)
        #expect(status == 130, "the pipeline's status (gradflow's, by pipefail): \(status.map(String.init) ?? "still running after 120 s")\n\(run.output)")
        #expect(run.output.contains("standard output was closed"), "\(run.output)")
        Self.expectCleanStop(dir, "closed pipe")
    }

    @Test("A slow reader of a non-blocking output (EAGAIN) only loses lines: the run goes on to its end")
    func aFullNonBlockingPipeIsNotAClosedOne() throws {
        let binary = try #require(EndToEnd.binary, "gradflow binary not found next to the test bundle (set GRADFLOW_BINARY)")
        let python = try #require(ChildProcess.which("python3"), "python3 not found")
        let dir = Self.temporaryRunDirectory("eagain")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // The pipe's write end is non-blocking and nobody reads it for 3 s: ~2,000 progress lines
        // of a tiny run fill its 64 KiB long before the run ends.
        let arguments = [binary.path, "train", "--no-tui", "--layers", "1", "--heads", "2", "--dim", "16", "--context", "32",
                         "--batch", "2", "--steps", "2000", "--eval-every", "0", "--threads", "1", "--report-every", "1", "--out", dir]
        let script = """
            import fcntl, os, subprocess, sys, time
            r, w = os.pipe()
            fcntl.fcntl(w, fcntl.F_SETFL, fcntl.fcntl(w, fcntl.F_GETFL) | os.O_NONBLOCK)
            p = subprocess.Popen(sys.argv[1:], stdout=w, stderr=subprocess.DEVNULL)
            os.close(w)
            time.sleep(3)
            while os.read(r, 1 << 16):
                pass
            print("status", p.wait())
            """
        let r = ChildProcess.run(python, ["-c", script] + arguments, timeout: 180)
        #expect(r.output.contains("status 0"), "\(r.output)")
        let last = Self.lines(dir).last.map(String.init) ?? ""
        #expect(last.contains("\"type\":\"end\"") && last.contains("\"reason\":\"completed\""), "\(last)")
    }
}
