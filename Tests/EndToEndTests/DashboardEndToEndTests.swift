import Foundation
import TestSupport
import Testing

/// Runs the built `gradflow` under tmux with a tiny model: the dashboard opens, a key changes a
/// weight (seen on screen and as an event in the run file), and q stops the run with an end record.
@Suite(.serialized) struct DashboardEndToEndTests {
    @Test(.enabled(if: EndToEnd.tmux != nil, "tmux is not installed: the dashboard end-to-end test needs it"),
          .timeLimit(.minutes(10)))
    func plusChangesAWeightAndQStopsTheRun() throws {
        let binary = try #require(EndToEnd.binary, "gradflow binary not found next to the test bundle (set GRADFLOW_BINARY)")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gradflow-e2e-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let tmux = Tmux(socket: "gradflow-e2e-\(getpid())")
        defer { tmux.killServer() }
        let runDir = dir.appendingPathComponent("run").path
        let exitFile = dir.appendingPathComponent("exit").path
        let command = "cd '\(dir.path)' && TERM=xterm-256color '\(binary.path)' train --layers 3 --heads 2 --dim 32 "
            + "--context 64 --batch 4 --steps 500000 --eval-every 200 --eval-windows 2 --threads 1 --out '\(runDir)'; "
            + "echo $? > '\(exitFile)'; sleep 60"
        try tmux.newSession(width: 150, height: 44, command: command)

        // The dashboard comes up with every panel.
        let first = try #require(tmux.waitFor(timeout: 180, { $0.contains("²Scales") && $0.contains("step ") }),
                                 "no dashboard within 180 s; screen:\n\(tmux.capture())")
        for title in ["¹Loss", "²Scales", "³Oscillation", "⁴Long-range attention", "⁵Events", "RUNNING", "q quit"] {
            #expect(first.contains(title), "\(title) missing from the dashboard:\n\(first)")
        }
        #expect(first.contains("▶ context local"), "the first band is selected")

        // + on the selected band: the status line, then the trainer's event on screen and on disk.
        tmux.sendKeys("+")
        let changed = tmux.waitFor(timeout: 120) { $0.contains("▲ weight") }
        #expect(changed != nil, "no weight event on screen after +:\n\(tmux.capture())")
        #expect(changed?.contains("context.local 1.00 → 1.10") == true, "the event shows the change:\n\(changed ?? "")")
        let runFile = runDir + "/run.jsonl"
        let weightLine = EndToEnd.waitForLine(in: runFile, timeout: 120) { $0.contains("\"kind\":\"weight\"") }
        #expect(weightLine?.contains("\"source\":\"key\"") == true)
        #expect(weightLine?.contains("\"axis\":\"context\"") == true)

        // q: the dashboard asks the trainer to stop and leaves once the end record is written.
        tmux.sendKeys("q")
        let status = EndToEnd.waitForFile(exitFile, timeout: 180)
        #expect(status?.trimmingCharacters(in: .whitespacesAndNewlines) == "0", "q is a normal exit (130 is for signals)")
        let lines = (try? String(contentsOfFile: runFile, encoding: .utf8))?.split(separator: "\n") ?? []
        #expect(lines.last?.contains("\"type\":\"end\"") == true, "the run file ends with an end record")
        #expect(lines.last?.contains("\"reason\":\"interrupted\"") == true)
        // The terminal was given back: the shell's output follows the dashboard.
        #expect(tmux.capture().contains("run file:"), "after q the terminal shows the program's last output")
    }

    /// Replay with --compare, f forks at the replay position into a new live run, + changes a
    /// weight there, Ctrl-C stops it (the fork takes the signals again after the replay gave them
    /// back: it once ignored them); the new run folder's header names the parent.
    @Test(.enabled(if: EndToEnd.tmux != nil, "tmux is not installed: the dashboard end-to-end test needs it"),
          .timeLimit(.minutes(10)))
    func replayWithCompareForksIntoALiveRun() throws {
        let binary = try #require(EndToEnd.binary, "gradflow binary not found next to the test bundle (set GRADFLOW_BINARY)")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gradflow-e2e-fork-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        // The parent: planned for 100,000 steps with a checkpoint every 100, stopped by SIGINT once
        // its second checkpoint is on disk (a clean stop, with a last checkpoint), so that its fork
        // keeps training until q; and a reference run. Nothing here depends on how fast the machine
        // is: every wait is for a file, a record or a screen, with a generous backstop.
        let tiny = ["--layers", "2", "--heads", "2", "--dim", "64", "--context", "64", "--batch", "4", "--eval-windows", "2",
                    "--threads", "1", "--no-tui"]
        let parent = dir.appendingPathComponent("parent").path, other = dir.appendingPathComponent("other").path
        let training = try ChildProcess.start(binary.path, ["train", "--steps", "100000", "--eval-every", "500",
                                                            "--checkpoint-every", "100", "--out", parent] + tiny)
        defer { training.kill() }
        let second = EndToEnd.waitForExistence(parent + "/ckpt-000200.gfck", timeout: 300)
        training.signal(SIGINT)
        let stoppedStatus = training.wait(timeout: 120)
        try #require(second, "no second checkpoint within 300 s:\n\(training.output)")
        #expect(stoppedStatus == 130, "SIGINT stops the parent cleanly (status 130):\n\(training.output)")
        #expect(ChildProcess.run(binary.path, ["train", "--steps", "100", "--eval-every", "50", "--lr", "3e-3", "--out", other] + tiny).status == 0)

        let tmux = Tmux(socket: "gradflow-e2e-fork-\(getpid())")
        defer { tmux.killServer() }
        let exitFile = dir.appendingPathComponent("exit").path
        // A replay slow enough to stand still (the recording lasts seconds; ×0.01 makes it minutes):
        // the test pauses it, seeks forward past a checkpoint itself, and only then presses f.
        try tmux.newSession(width: 150, height: 44, command: "cd '\(dir.path)' && TERM=xterm-256color '\(binary.path)' replay parent --speed 0.01 --compare other; echo $? > '\(exitFile)'; sleep 60")
        let shown = try #require(tmux.waitFor(timeout: 180) { $0.contains("REPLAY") && $0.contains("┄ other") },
                                 "no replay dashboard within 180 s:\n\(tmux.capture())")
        #expect(shown.contains("┄ other"), "the reference run's legend:\n\(shown)")
        tmux.sendKeys("Space")
        _ = try #require(tmux.waitFor(timeout: 60) { $0.contains("REPLAY PAUSED") || $0.contains("REPLAY END") },
                         "space did not pause the replay:\n\(tmux.capture())")
        // Seek forward (⇧→, 20 % of the recording) until a checkpoint has been replayed. Each press
        // moves only forward, so pressing again before the screen caught up is harmless, and f works
        // at any position at or after the first checkpoint, the end included.
        var atCheckpoint: String?
        for _ in 0..<40 where atCheckpoint == nil {
            if let screen = tmux.waitFor(timeout: 3, { $0.contains("■ checkpoint") }) { atCheckpoint = screen; break }
            tmux.sendKeys("S-Right")
        }
        let replay = try #require(atCheckpoint ?? tmux.waitFor(timeout: 60) { $0.contains("■ checkpoint") },
                                  "no checkpoint replayed after seeking forward:\n\(tmux.capture())")
        #expect(replay.contains("┄ other"), "the reference run's legend:\n\(replay)")

        tmux.sendKeys("f")
        _ = try #require(tmux.waitFor(timeout: 180) { $0.contains("RUNNING") && $0.contains("┄ parent") },
                         "f did not switch to a live run with the original as a ghost:\n\(tmux.capture())")
        tmux.sendKeys("+")
        let changed = tmux.waitFor(timeout: 120) { $0.contains("context.local 1.00 → 1.10") }
        #expect(changed != nil, "a weight change in the fork:\n\(tmux.capture())")
        let runsDir = dir.appendingPathComponent("runs").path
        let forkName = (try? FileManager.default.contentsOfDirectory(atPath: runsDir))?.first ?? "none"
        let weightLine = EndToEnd.waitForLine(in: "\(runsDir)/\(forkName)/run.jsonl", timeout: 120) { $0.contains(#""kind":"weight""#) }
        #expect(weightLine?.contains(#""source":"key""#) == true, "the fork's run file records the key's weight change")

        tmux.sendKeys("C-c")
        let status = EndToEnd.waitForFile(exitFile, timeout: 180)
        #expect(status?.trimmingCharacters(in: .whitespacesAndNewlines) == "130", "Ctrl-C stops the fork: status \(status ?? "none")")
        let runs = (try? FileManager.default.contentsOfDirectory(atPath: dir.appendingPathComponent("runs").path)) ?? []
        #expect(runs.count == 1, "the fork went to a new run folder under runs/: \(runs)")
        let forkFile = dir.appendingPathComponent("runs").appendingPathComponent(runs.first ?? "none").appendingPathComponent("run.jsonl").path
        let lines = (try? String(contentsOfFile: forkFile, encoding: .utf8))?.split(separator: "\n") ?? []
        #expect(lines.first?.contains(#""parent":{"run":"parent","step":"#) == true, "the header names the parent:\n\(lines.first ?? "")")
        #expect(lines.contains { $0.contains("fork of parent at step") }, "the fork's first event names its parent")
        #expect(lines.last?.contains(#""reason":"interrupted""#) == true)
        #expect(tmux.capture().contains("summary  run"), "leaving prints the run summary")
    }
}

/// Where the pieces are, and small waiting helpers (programs run through TestSupport's ChildProcess).
enum EndToEnd {
    static let tmux: String? = ChildProcess.which("tmux")

    /// The `gradflow` built next to this test bundle (or $GRADFLOW_BINARY).
    static let binary: URL? = ChildProcess.gradflow.map { URL(fileURLWithPath: $0) }

    /// The file's text once it holds something; nil after `timeout` seconds, a backstop for a test
    /// that fails, never a window the test relies on.
    static func waitForFile(_ path: String, timeout: Double) -> String? {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let s = try? String(contentsOfFile: path, encoding: .utf8), !s.isEmpty { return s }
            Thread.sleep(forTimeInterval: 0.2)
        }
        return nil
    }

    /// Whether a file (of any contents) exists within `timeout` seconds (a backstop, as above).
    static func waitForExistence(_ path: String, timeout: Double) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if FileManager.default.fileExists(atPath: path) { return true }
            Thread.sleep(forTimeInterval: 0.2)
        }
        return false
    }

    static func waitForLine(in path: String, timeout: Double, _ match: (Substring) -> Bool) -> Substring? {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let s = try? String(contentsOfFile: path, encoding: .utf8), let line = s.split(separator: "\n").first(where: match) {
                return line
            }
            Thread.sleep(forTimeInterval: 0.2)
        }
        return nil
    }
}

/// A tmux server on its own socket, so the test never touches the user's sessions. The test kills
/// it in a `defer`; and in case the test process itself dies first (a crash, a CI timeout), every
/// session also runs a watchdog that kills the server once the test process is gone.
struct Tmux {
    let socket: String
    let session = "gradflow"

    @discardableResult
    func tmux(_ args: [String], capture: Bool = true) -> (status: Int32, output: String) {
        ChildProcess.run(EndToEnd.tmux ?? "/usr/bin/tmux", ["-L", socket] + args, capture: capture)
    }

    func newSession(width: Int, height: Int, command: String) throws {
        let watchdog = "(while kill -0 \(getpid()) 2>/dev/null; do sleep 1; done; '\(EndToEnd.tmux ?? "tmux")' -L '\(socket)' kill-server)"
            + " </dev/null >/dev/null 2>&1 &"
        let r = tmux(["new-session", "-d", "-s", session, "-x", "\(width)", "-y", "\(height)", watchdog + " " + command], capture: false)
        if r.status != 0 { throw TmuxError(message: "tmux new-session failed with status \(r.status)") }
    }

    func capture() -> String { tmux(["capture-pane", "-p", "-t", session]).output }

    func sendKeys(_ keys: String...) { tmux(["send-keys", "-t", session] + keys, capture: false) }

    /// The first screen (polled every 0.25 s) that satisfies `match`, or nil after `timeout` seconds.
    func waitFor(timeout: Double, _ match: (String) -> Bool) -> String? {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            let screen = capture()
            if match(screen) { return screen }
            Thread.sleep(forTimeInterval: 0.25)
        }
        return nil
    }

    func killServer() { tmux(["kill-server"], capture: false) }
}

struct TmuxError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}
