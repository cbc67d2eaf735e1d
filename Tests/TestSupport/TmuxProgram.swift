import Foundation

/// One program in a terminal of its own: a tmux server on a private socket (`tmux -L NAME`) whose
/// only pane runs the program. The pane stays after the program ends (`remain-on-exit`), so its
/// last screen can still be read, and its exit status is kept in a file.
///
/// Nothing outlives the test: `stop()` (meant for a `defer`, safe to call twice) kills the server,
/// the program and the server's process by pid — a server started from a thread that blocks
/// signals ignores `kill-server` (SIGTERM), and a program in its pane may never see SIGHUP — and a watchdog
/// started with the pane does the same once the test process is gone (a crash, a CI timeout).
///
///     let attach = try TmuxProgram(tmux: tmuxPath, socket: "gf-attach-\(getpid())", program: binary,
///                                  arguments: ["attach", runDir], scratch: dir)
///     defer { attach.stop() }
///     let screen = attach.waitForScreen(timeout: 120) { $0.contains("ATTACHED") }
///     attach.sendKeys("q")
///     let status = attach.waitForExit(timeout: 60)   // nil: still running
public final class TmuxProgram {
    public let tmux: String
    public let socket: String
    public let session = "gradflow"
    private let pidFile: String
    private let exitFile: String
    /// The tmux server's process.
    public let serverPid: pid_t?
    private var stopped = false

    /// Starts a tmux server on `socket` with one `width`×`height` pane that runs `program` (a path)
    /// with `arguments` and `environment` added (TERM=xterm-256color unless given), in `directory`
    /// when given. `scratch` is a folder the test owns, for the server's configuration, the
    /// program's pid and its exit status.
    public init(tmux: String, socket: String, program: String, arguments: [String], environment: [String: String] = [:],
                directory: String? = nil, scratch: String, width: Int = 150, height: Int = 44) throws {
        self.tmux = tmux
        self.socket = socket
        let config = "\(scratch)/\(socket).conf"
        try "set-option -g remain-on-exit on\nset-option -g history-limit 0\n".write(toFile: config, atomically: true, encoding: .utf8)
        var env = ["TERM": "xterm-256color"]
        for (k, v) in environment { env[k] = v }
        let assignments = env.keys.sorted().map { "\($0)=\(Self.quote(env[$0]!))" }.joined(separator: " ")
        let me = getpid()
        pidFile = "\(scratch)/\(socket).pid"
        exitFile = "\(scratch)/\(socket).exit"
        // The pane's shell runs the program (through an inner sh that writes its pid and execs it)
        // and writes its exit status to a file: a tmux server started from a test thread that blocks
        // SIGCHLD never reaps its panes, so tmux's own #{pane_dead_status} cannot be relied on.
        // The watchdog: a background subshell of the pane's shell (so in the tmux server's process
        // tree, outside the test's process group), polling once a second while the test process and
        // the server ($TMUX names its pid) are alive. When the test process is gone first, it
        // SIGKILLs the program, ends the server and SIGKILLs it.
        let server = "\(Self.quote(tmux)) -L \(Self.quote(socket))"
        let watchdog = "(s=${TMUX#*,}; s=${s%%,*}; while kill -0 \(me) && kill -0 \"$s\"; do sleep 1; done; "
            + "if kill -0 \"$s\"; then [ -s \(Self.quote(exitFile)) ] || kill -9 \"$(cat \(Self.quote(pidFile)))\"; "
            + "\(server) kill-server; kill -9 \"$s\"; fi) </dev/null >/dev/null 2>&1 &"
        let cd = directory.map { "cd \(Self.quote($0)) && " } ?? ""
        let launch = "sh -c 'echo $$ > \"$0\"; exec \"$@\"' \(Self.quote(pidFile)) env \(assignments) "
            + ([program] + arguments).map(Self.quote).joined(separator: " ")
        let command = "\(watchdog) \(cd)\(launch); echo $? > \(Self.quote(exitFile))"
        let r = ChildProcess.run(tmux, ["-L", socket, "-f", config, "new-session", "-d", "-s", session, "-x", "\(width)", "-y", "\(height)", command],
                                 timeout: 120)
        guard r.status == 0 else {
            throw TmuxProgramError(message: "tmux new-session failed with status \(r.status): \(r.output)")
        }
        serverPid = ChildProcess.run(tmux, ["-L", socket, "display-message", "-p", "-t", session, "#{pid}"], timeout: 60)
            .output.split(whereSeparator: \.isWhitespace).first.flatMap { pid_t($0) }
    }

    /// The program's process id, once its pane has started it (nil before, or if it never did).
    public var programPid: pid_t? {
        (try? String(contentsOfFile: pidFile, encoding: .utf8)).flatMap { pid_t($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    @discardableResult
    public func run(_ args: [String]) -> (status: Int32, output: String) {
        ChildProcess.run(tmux, ["-L", socket] + args, timeout: 60)
    }

    /// The pane's text as it is now.
    public func capture() -> String { run(["capture-pane", "-p", "-t", session]).output }

    /// Sends keys by tmux's names: "+", "q", "Space", "S-Right".
    public func sendKeys(_ keys: String...) { run(["send-keys", "-t", session] + keys) }

    /// The first screen (polled every 0.25 s) that satisfies `match`, or nil after `timeout`
    /// seconds: a backstop for a failing test, never a window the test relies on.
    public func waitForScreen(timeout: Double, _ match: (String) -> Bool) -> String? {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let screen = capture()
            if match(screen) { return screen }
            if Date() >= deadline { return nil }
            Thread.sleep(forTimeInterval: 0.25)
        }
    }

    /// The program's exit status once it has ended (as the shell reports it: 128 + N for signal
    /// N), nil while it runs.
    public var exitStatus: Int32? {
        (try? String(contentsOfFile: exitFile, encoding: .utf8)).flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    /// Whether the program still runs: its pane is alive.
    public var isRunning: Bool { exitStatus == nil && programPid.map { Foundation.kill($0, 0) == 0 } == true }

    /// The exit status once the program has ended, or nil after `timeout` seconds (a backstop).
    public func waitForExit(timeout: Double) -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if let status = exitStatus { return status }
            if Date() >= deadline { return nil }
            Thread.sleep(forTimeInterval: 0.25)
        }
    }

    /// Ends everything: the server (kill-server, then SIGKILL to its process, and its socket file),
    /// the program if it still runs (SIGKILL); the watchdog sees the server gone within a second
    /// and leaves.
    public func stop() {
        guard !stopped else { return }
        stopped = true
        let alive = exitStatus == nil
        run(["kill-server"])
        if alive, let programPid { _ = Foundation.kill(programPid, SIGKILL) }
        if let serverPid, Foundation.kill(serverPid, 0) == 0 { _ = Foundation.kill(serverPid, SIGKILL) }
        // A server killed by SIGKILL leaves its socket file behind.
        let dir = ProcessInfo.processInfo.environment["TMUX_TMPDIR"].map { $0.isEmpty ? "/tmp" : $0 } ?? "/tmp"
        try? FileManager.default.removeItem(atPath: "\(dir)/tmux-\(getuid())/\(socket)")
    }

    deinit { stop() }

    /// `s` in single quotes for sh.
    public static func quote(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'" }
}

public struct TmuxProgramError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// Programs a test starts in the background that must not outlive the test process, even when it
/// dies without running its `defer`s (a crash, a CI timeout's SIGKILL).
public enum TiedProcess {
    /// `ChildProcess.start(executable, arguments)`, but through `sh`, which starts a watchdog and then
    /// `exec`s the program (so the ChildProcess's pid is the program's). The watchdog polls once a
    /// second while the test process and the program live; if the test process goes first, it
    /// SIGKILLs the program (checking its start time, so never a process that reused its pid).
    public static func start(_ executable: String, _ arguments: [String], environment: [String: String]? = nil) throws -> ChildProcess {
        // $$'s start time (field 22 of /proc/PID/stat) tells the program from a later process that
        // got its pid after it ended.
        let script = "(t=$(cut -d' ' -f22 /proc/$$/stat); while kill -0 \(getpid()) && kill -0 $$; do sleep 1; done; "
            + "kill -0 \(getpid()) || { [ \"$(cut -d' ' -f22 /proc/$$/stat 2>/dev/null)\" = \"$t\" ] && kill -9 $$; }) "
            + "</dev/null >/dev/null 2>&1 & exec \"$@\""
        return try ChildProcess.start("/bin/sh", ["-c", script, "sh", executable] + arguments, environment: environment)
    }
}
