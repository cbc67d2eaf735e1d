import Foundation
import Telemetry
import TestSupport
import Testing

/// `gradflow attach` on a run that another process writes (issue 19, "Must show"): a headless
/// `gradflow train --no-tui` and the Python example (`python/examples/train_gpt.py`, CPU torch) each
/// run in the background while dashboards under tmux come and go: `+` becomes a command whose
/// answer (a `weight` event, source `attach`, with the command's id) is in the run file and on the
/// screen, and whose weight later step records carry; `q` detaches and the run goes on; `x` `y`
/// stops it with an end record; two dashboards attached at once both show a change made by one.
///
/// Every wait is for a record in the run file, a screen, or a process's end, with a generous
/// backstop for a failing test, never a window of wall time the test relies on, so the tests pass
/// on a busy machine. Each dashboard runs in a tmux server of its own (a private socket); the
/// servers, the dashboards and the trainers are killed on every exit path (`defer`, and
/// `TmuxProgram`'s watchdog should the test process die).
@Suite(.serialized) struct AttachEndToEndTests {
    @Test(.enabled(if: AttachE2E.tmux != nil, "tmux is not installed: the attach end-to-end tests need it"),
          .timeLimit(.minutes(10)))
    func attachSteersAHeadlessTrainerDetachesAndStopsIt() throws {
        let binary = try #require(ChildProcess.gradflow, "gradflow binary not found next to the test bundle (set GRADFLOW_BINARY)")
        let scratch = try AttachE2E.scratch("gradflow-attach")
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let runDir = scratch + "/run"
        // A tiny model, planned far beyond the test: the test stops it (x y) before it ends.
        let trainer = try TiedProcess.start(binary, ["train", "--no-tui", "--out", runDir, "--steps", "1000000"] + AttachE2E.tinySwift)
        defer { trainer.kill() }
        try AttachE2E.steerDetachAndStop(binary: binary, runDir: runDir, scratch: scratch, trainer: trainer, tag: "sw")
        // `x` `y` is a stop asked through the channel, not a signal: status 0 (TrainingSession.exitCode).
        let status = trainer.wait(timeout: 300)
        #expect(status == 0, "the trainer stopped by x y exits 0 (130 is for signals):\n\(trainer.output)")
    }

    @Test("attach without a terminal follows the run's progress to its end; a second writer of the run is refused",
          .timeLimit(.minutes(10)))
    func attachWithoutATerminalAndASecondWriter() throws {
        let binary = try #require(ChildProcess.gradflow, "gradflow binary not found next to the test bundle (set GRADFLOW_BINARY)")
        let scratch = try AttachE2E.scratch("gradflow-attach-notty")
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let runDir = scratch + "/run"
        var options = AttachE2E.tinySwift
        options[options.firstIndex(of: "--checkpoint-every")! + 1] = "1000"  // a checkpoint to resume from
        // Planned far beyond the test, which stops it (SIGINT) once attach is following it.
        let trainer = try TiedProcess.start(binary, ["train", "--no-tui", "--out", runDir, "--steps", "1000000"] + options)
        defer { trainer.kill() }
        let checkpoint = runDir + "/ckpt-001000.gfck"
        let run = RunTail(path: runDir + "/run.jsonl")
        try #require(run.wait(timeout: 180) { _ in FileManager.default.fileExists(atPath: checkpoint) },
                     "no checkpoint at step 1,000 within 180 s:\n\(trainer.output)")
        let second = ChildProcess.run(binary, ["train", "--no-tui", "--resume", checkpoint], timeout: 60)
        #expect(second.status != 0 && second.output.contains("this run file is locked by a process writing the run"),
                "a resume of a run being written is refused:\n\(second.output)")
        // stdin is /dev/null: no dashboard, so the progress lines until the end record.
        let attached = try ChildProcess.start(binary, ["attach", runDir])
        defer { attached.kill() }
        let deadline = Date().addingTimeInterval(60)
        while !attached.output.contains("without the dashboard there are no keys") && Date() < deadline {
            Thread.sleep(forTimeInterval: 0.1)
        }
        Thread.sleep(forTimeInterval: 1)  // a progress line or two
        trainer.signal(SIGINT)
        #expect(trainer.wait(timeout: 60) != nil, "the trainer stops on SIGINT:\n\(trainer.output)")
        let status = attached.wait(timeout: 60)
        let output = attached.output
        #expect(status == 0, "attach ends with the run:\n\(output)")
        #expect(output.contains("without the dashboard there are no keys"), "\(output)")
        #expect(output.contains("(interrupted)"), "the summary of the ended run:\n\(output)")
    }

    @Test(.enabled(if: AttachE2E.tmux != nil, "tmux is not installed: the attach end-to-end tests need it"),
          .timeLimit(.minutes(10)))
    func twoDashboardsAttachedAtOnceBothShowEachOthersChanges() throws {
        let binary = try #require(ChildProcess.gradflow, "gradflow binary not found next to the test bundle (set GRADFLOW_BINARY)")
        let scratch = try AttachE2E.scratch("gradflow-attach2")
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let runDir = scratch + "/run"
        let trainer = try TiedProcess.start(binary, ["train", "--no-tui", "--out", runDir, "--steps", "1000000"] + AttachE2E.tinySwift)
        defer { trainer.kill() }
        let run = RunTail(path: runDir + "/run.jsonl")
        try #require(run.wait(timeout: 300) { $0.lastStep >= 0 }, "no step record within 300 s:\n\(trainer.output)")

        let tmux = try #require(AttachE2E.tmux)
        let one = try TmuxProgram(tmux: tmux, socket: "gf-att2a-\(getpid())", program: binary, arguments: ["attach", runDir], scratch: scratch)
        defer { one.stop() }
        let two = try TmuxProgram(tmux: tmux, socket: "gf-att2b-\(getpid())", program: binary, arguments: ["attach", runDir], scratch: scratch)
        defer { two.stop() }
        for (name, dashboard) in [("first", one), ("second", two)] {
            _ = try #require(dashboard.waitForScreen(timeout: 180, AttachE2E.attachedDashboard),
                             "the \(name) dashboard did not open within 180 s:\n\(dashboard.capture())")
        }

        // Pause the run first (space in the first), so that Events holds still while the test reads it.
        one.sendKeys("Space")
        for (name, dashboard) in [("first", one), ("second", two)] {
            #expect(dashboard.waitForScreen(timeout: 180) { $0.contains("ATTACHED · PAUSED") } != nil,
                    "the \(name) dashboard shows the pause:\n\(dashboard.capture())")
        }

        // + in the first: both show the change in Events; only the first says it was its own.
        one.sendKeys("+")
        let up = "context.local 1.00 → 1.10"
        let ownScreen = one.waitForScreen(timeout: 180) { $0.contains(up) && $0.contains("applied at step") }
        #expect(ownScreen != nil, "the first dashboard shows its change and its answer:\n\(one.capture())")
        let otherScreen = two.waitForScreen(timeout: 180) { $0.contains(up) }
        #expect(otherScreen != nil, "the second dashboard shows the first one's change:\n\(two.capture())")
        #expect(otherScreen?.contains("applied at step") == false, "the answer belongs to the first dashboard only:\n\(otherScreen ?? "")")

        // + in the second builds on the weight now in force, and the first sees it too.
        two.sendKeys("+")
        let again = "context.local 1.10 → 1.21"
        #expect(two.waitForScreen(timeout: 180) { $0.contains(again) && $0.contains("applied at step") } != nil,
                "the second dashboard's change:\n\(two.capture())")
        #expect(one.waitForScreen(timeout: 180) { $0.contains(again) } != nil, "the first dashboard shows the second one's change:\n\(one.capture())")
        #expect(run.wait(timeout: 120) { $0.events.filter(AttachE2E.isAttachWeight).count >= 2 }, "two weight events from attach")
        let answers = run.events.filter(AttachE2E.isAttachWeight)
        #expect(answers.count == 2 && Set(answers.compactMap { $0["command_id"] as? String }).count == 2,
                "two weight events, one per command id: \(answers)")

        // Resume from the second; the steps from then on carry 1.21.
        two.sendKeys("Space")
        let resumedAt = run.lastStep
        #expect(run.wait(timeout: 300) { $0.lastStep >= resumedAt + 5 }, "the run resumed")
        #expect(run.contextWeightChanges.last.map { abs($0.weights[0] - 1.21) < 1e-9 } == true,
                "the step records carry 1.21: \(run.contextWeightChanges)")

        // Both leave with q; the run goes on until the test ends it.
        for dashboard in [one, two] { dashboard.sendKeys("q") }
        #expect(one.waitForExit(timeout: 120) == 0 && two.waitForExit(timeout: 120) == 0, "q detaches both dashboards")
        #expect(trainer.wait(timeout: 0) == nil, "the trainer runs on after both dashboards left:\n\(trainer.output)")
    }

    /// The same flow against the Python package's example on CPU torch.
    @Test(.enabled(if: AttachE2E.tmux != nil, "tmux is not installed: the attach end-to-end tests need it"),
          .enabled(if: AttachE2E.pythonWithTorch != nil,
                   "no Python with torch: set GRADFLOW_PYTHON_TORCH to one, or run scripts/test-python.sh to make .venv-py"),
          .timeLimit(.minutes(10)))
    func attachSteersThePythonExample() throws {
        let binary = try #require(ChildProcess.gradflow, "gradflow binary not found next to the test bundle (set GRADFLOW_BINARY)")
        let python = try #require(AttachE2E.pythonWithTorch)
        let scratch = try AttachE2E.scratch("gradflow-attach-py")
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let runDir = scratch + "/run"
        // A small model (the example's preset S is slower than the test needs), every axis on so
        // that weights can be steered, one thread, no evaluation, checkpoint or sample on the way.
        let example = AttachE2E.repositoryRoot + "/python/examples/train_gpt.py"
        var environment = ProcessInfo.processInfo.environment
        environment["OMP_NUM_THREADS"] = "1"
        environment["PYTHONUNBUFFERED"] = "1"
        let trainer = try TiedProcess.start(python, [example, "--steps", "100000", "--out", runDir, "--device", "cpu", "--threads", "1",
                                                      "--layers", "2", "--heads", "2", "--dim", "32", "--context", "64", "--batch", "4",
                                                      "--eval-every", "100000", "--eval-windows", "2", "--checkpoint-every", "0",
                                                      "--sample-bytes", "0", "--axes", "all"],
                                             environment: environment)
        defer { trainer.kill() }
        try AttachE2E.steerDetachAndStop(binary: binary, runDir: runDir, scratch: scratch, trainer: trainer, tag: "py")
        let status = trainer.wait(timeout: 300)
        #expect(status == 0, "the Python example stopped by x y exits 0:\n\(trainer.output)")
    }
}

/// The pieces the attach tests share.
enum AttachE2E {
    static let tmux: String? = ChildProcess.which("tmux")

    /// A tiny Swift model that takes milliseconds a step, with no evaluation on the way.
    static let tinySwift = ["--layers", "2", "--heads", "2", "--dim", "64", "--context", "64", "--batch", "4",
                            "--eval-every", "100000", "--eval-windows", "2", "--checkpoint-every", "100000", "--threads", "1"]

    /// The repository's root (this file is Tests/EndToEndTests/AttachEndToEndTests.swift).
    static let repositoryRoot: String = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().path

    /// A Python that imports torch: $GRADFLOW_PYTHON_TORCH, else the repository's .venv-py (made
    /// by scripts/test-python.sh); nil when neither has torch.
    static let pythonWithTorch: String? = {
        var candidates: [String] = []
        if let p = ProcessInfo.processInfo.environment["GRADFLOW_PYTHON_TORCH"], !p.isEmpty { candidates.append(p) }
        candidates.append(repositoryRoot + "/.venv-py/bin/python")
        for candidate in candidates where FileManager.default.isExecutableFile(atPath: candidate) {
            if ChildProcess.run(candidate, ["-c", "import torch"], timeout: 300).status == 0 { return candidate }
        }
        return nil
    }()

    static func scratch(_ prefix: String) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    /// An attached dashboard with its panels, the first band selected and the footer, which offers
    /// `q` as detach: the bottom line is drawn last, and on a busy machine a capture can come while
    /// the top of the first frame is on the screen and the rest is not.
    static func attachedDashboard(_ screen: String) -> Bool {
        screen.contains("ATTACHED") && screen.contains("²Scales") && screen.contains("▶ context local")
            && screen.contains("q detach")
    }

    /// The flow of issue 19's "Must show" on a run that `trainer` writes into `runDir`:
    /// 1. attach, `+` on the selected band (context local): the status line says "sent", then
    ///    "applied at step N"; the run file holds a `weight` event with source `attach`, the id of
    ///    the line in commands.jsonl, at step N, and the step records from N on carry the weight;
    /// 2. `q`: the dashboard leaves, and the trainer goes on writing step records;
    /// 3. attach again, `x` `y`: a `stop` event answers the command, the end record (interrupted)
    ///    follows, and the dashboard shows the ended run.
    /// Leaves the trainer to end by itself; the caller checks its status.
    static func steerDetachAndStop(binary: String, runDir: String, scratch: String, trainer: ChildProcess, tag: String) throws {
        let tmux = try #require(Self.tmux)
        let run = RunTail(path: runDir + "/run.jsonl")
        try #require(run.wait(timeout: 300) { $0.lastStep >= 0 }, "no step record within 300 s:\n\(trainer.output)")
        // The trainer made the channel, private to its owner.
        let mode = (try? FileManager.default.attributesOfItem(atPath: runDir + "/commands.jsonl"))?[.posixPermissions] as? Int
        #expect(mode == 0o600, "commands.jsonl is created with mode 0600 (got \(mode.map { String($0, radix: 8) } ?? "none"))")

        // 1. Attach and press +.
        let first = try TmuxProgram(tmux: tmux, socket: "gf-att-\(tag)1-\(getpid())", program: binary, arguments: ["attach", runDir],
                                    scratch: scratch)
        defer { first.stop() }
        _ = try #require(first.waitForScreen(timeout: 180, attachedDashboard),
                         "no attached dashboard (with the footer's q detach) within 180 s:\n\(first.capture())")
        first.sendKeys("+")
        // The status line: "context local 0–8 → 1.10: sent", then "…: applied at step N" (for 6 s).
        let answered = try #require(first.waitForScreen(timeout: 180) { $0.contains("→ 1.10: applied at step") },
                                    "the status line never said the weight was applied:\n\(first.capture())")
        try #require(run.wait(timeout: 120) { $0.events.contains(where: isAttachWeight) }, "no weight event from attach in the run file")
        let event = try #require(run.events.first(where: isAttachWeight))
        #expect(event["axis"] as? String == "context" && number(event["band"]) == 0, "the event names the band: \(event)")
        #expect(number(event["old"]).map { abs($0 - 1) < 1e-9 } == true && number(event["new"]).map { abs($0 - 1.1) < 1e-9 } == true,
                "1.00 → 1.10: \(event)")
        let id = try #require(event["command_id"] as? String, "the event names the command's id: \(event)")
        let step = try #require(number(event["step"]).map { Int($0) })
        #expect(answered.contains("applied at step \(Format.grouped(step))"), "the status line names the event's step \(step):\n\(answered)")
        // The loss chart marks the change where it happened (Events scrolls on a fast run).
        #expect(first.waitForScreen(timeout: 60) { $0.contains("×1.10 @\(step)") } != nil, "the loss chart marks the change:\n\(first.capture())")
        // The id is the one of the line the dashboard wrote, with its issuer.
        let lines = (try? String(contentsOfFile: runDir + "/commands.jsonl", encoding: .utf8))?.split(separator: "\n") ?? []
        let sent = lines.compactMap { RunTail.object($0) }.first { $0["id"] as? String == id }
        #expect(sent?["command"] as? String == "set_weight" && sent?["issuer"] is [String: Any], "commands.jsonl holds the command \(id): \(lines)")
        // Step records carry the new weight from the event's step on.
        try #require(run.wait(timeout: 300) { $0.lastStep >= step + 5 }, "no step records after the change within 300 s")
        let changes = run.contextWeightChanges
        #expect(changes.count == 2 && changes.last?.step == step && changes.last.map { abs($0.weights[0] - 1.1) < 1e-9 } == true
                    && changes.first.map { abs($0.weights[0] - 1) < 1e-9 } == true,
                "the step records' context weights change once, to 1.1 at step \(step): \(changes)")

        // 2. q leaves the run going.
        first.sendKeys("q")
        let left = first.waitForExit(timeout: 120)
        #expect(left == 0, "q detaches with status 0:\n\(first.capture())")
        // (attach then prints "detached from …"; tmux does not always keep a dying pane's last
        // output after the dashboard's screen is restored, so the line is not checked here.)
        let atDetach = run.lastStep
        try #require(run.wait(timeout: 300) { $0.lastStep >= atDetach + 5 }, "the trainer wrote no new step records after q:\n\(trainer.output)")
        #expect(trainer.wait(timeout: 0) == nil && run.end == nil, "the run goes on after q")
        first.stop()

        // 3. Attach again; x asks, y stops the run.
        let second = try TmuxProgram(tmux: tmux, socket: "gf-att-\(tag)2-\(getpid())", program: binary, arguments: ["attach", runDir],
                                     scratch: scratch)
        defer { second.stop() }
        let reopened = try #require(second.waitForScreen(timeout: 180, attachedDashboard),
                                    "no attached dashboard the second time within 180 s:\n\(second.capture())")
        #expect(reopened.contains("1.10"), "the weight in force shows again:\n\(reopened)")
        second.sendKeys("x")
        _ = try #require(second.waitForScreen(timeout: 60) { $0.contains("stop the run?") }, "x asks first:\n\(second.capture())")
        second.sendKeys("y")
        try #require(run.wait(timeout: 300) { $0.end != nil }, "no end record within 300 s of x y:\n\(trainer.output)")
        #expect(run.end?["reason"] as? String == "interrupted", "the end record says interrupted: \(run.end ?? [:])")
        let stop = run.events.first { $0["kind"] as? String == "stop" && $0["source"] as? String == "attach" }
        #expect(stop?["command_id"] is String, "a stop event with source attach answers the command: \(run.events)")
        // The answer's status line (shown for 6 s) and the ended state, on whichever screens they come.
        var sawAnswer = false
        let ended = second.waitForScreen(timeout: 180) { screen in
            sawAnswer = sawAnswer || screen.contains("stop: applied at step")
            return screen.contains("INTERRUPTED")
        }
        #expect(ended != nil, "the dashboard shows the ended run:\n\(second.capture())")
        #expect(sawAnswer, "the status line said the stop was applied (it comes with or before the end):\n\(ended ?? "")")
        second.sendKeys("q")
        #expect(second.waitForExit(timeout: 120) == 0, "q leaves the ended run's dashboard:\n\(second.capture())")
    }

    static func number(_ value: Any?) -> Double? { (value as? NSNumber)?.doubleValue }

    static func isAttachWeight(_ e: [String: Any]) -> Bool {
        e["kind"] as? String == "weight" && e["source"] as? String == "attach"
    }
}

/// The run file as it grows, read from where the last look stopped: the header, the events, the end
/// record, the last step, and where the step records' context weights changed.
final class RunTail {
    let path: String
    private var offset: UInt64 = 0
    private var pending = Data()
    private(set) var header: [String: Any]?
    private(set) var lastStep = -1
    private(set) var events: [[String: Any]] = []
    private(set) var end: [String: Any]?
    /// The first step record and each one whose `axes.context.weight` differs from the one before.
    private(set) var contextWeightChanges: [(step: Int, weights: [Double])] = []

    init(path: String) { self.path = path }

    /// Reads the lines completed since the last look.
    func poll() {
        guard let handle = FileHandle(forReadingAtPath: path) else { return }
        defer { try? handle.close() }
        try? handle.seek(toOffset: offset)
        guard let data = try? handle.readToEnd(), !data.isEmpty else { return }
        offset += UInt64(data.count)
        pending.append(data)
        guard let last = pending.lastIndex(of: UInt8(ascii: "\n")) else { return }
        let whole = pending[pending.startIndex...last]
        pending = Data(pending[pending.index(after: last)...])
        for line in whole.split(separator: UInt8(ascii: "\n")) {
            guard let record = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any] else { continue }
            switch record["type"] as? String {
            case "step":
                guard let step = (record["step"] as? NSNumber)?.intValue else { continue }
                lastStep = max(lastStep, step)
                let axes = record["axes"] as? [String: Any], context = axes?["context"] as? [String: Any]
                let weights = (context?["weight"] as? [Any])?.compactMap { ($0 as? NSNumber)?.doubleValue } ?? []
                if contextWeightChanges.last?.weights != weights { contextWeightChanges.append((step, weights)) }
            case "event": events.append(record)
            case "end": end = record
            default: if header == nil { header = record }
            }
        }
    }

    /// Whether `done` held within `timeout` seconds (the file read every 0.2 s): a backstop for a
    /// failing test, never a window the test relies on.
    func wait(timeout: Double, _ done: (RunTail) -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            poll()
            if done(self) { return true }
            if Date() >= deadline { return false }
            Thread.sleep(forTimeInterval: 0.2)
        }
    }

    static func object(_ line: Substring) -> [String: Any]? {
        try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
    }
}
