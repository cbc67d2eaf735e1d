import Foundation

/// One program in a terminal of its own: a tmux server on a private socket (`tmux -L NAME`) whose
/// only pane runs the program itself (the shell `exec`s it, so the pane's process is the program).
/// The pane stays after the program ends (`remain-on-exit`), so its last screen and its exit status
/// can still be read.
///
/// Nothing outlives the test: `stop()` (meant for a `defer`, safe to call twice) kills the server,
/// the program and the server's process by pid — a server started from a thread that blocks
/// SIGTERM ignores `kill-server`, and a program in its pane may never see SIGHUP — and a watchdog
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
    /// The pane's process: the program (nil when tmux could not tell).
    public let programPid: pid_t?
    /// The tmux server's process.
    public let serverPid: pid_t?
    private var stopped = false

    /// Starts a tmux server on `socket` with one `width`×`height` pane that runs `program` (a path)
    /// with `arguments` and `environment` added (TERM=xterm-256color unless given), in `directory`
    /// when given. `scratch` is a folder the test owns, for the server's configuration file.
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
        // The watchdog: a subshell of the pane's shell (so in the tmux server's process tree, outside
        // the test's process group), polling once a second while the test process and the server
        // ($TMUX names its pid) are alive. When the test process is gone first, it ends the program
        // ($$ is the pane's shell, which became the program) unless its pane is dead, and the server.
        let server = "\(Self.quote(tmux)) -L \(Self.quote(socket))"
        let watchdog = "(s=${TMUX#*,}; s=${s%%,*}; while kill -0 \(me) && kill -0 \"$s\"; do sleep 1; done; "
            + "if kill -0 \"$s\"; then [ \"$(\(server) display-message -p -t \(session) '#{pane_dead}')\" = 1 ] || kill -9 $$; "
            + "\(server) kill-server; kill -9 \"$s\"; fi) </dev/null >/dev/null 2>&1 &"
        let cd = directory.map { "cd \(Self.quote($0)) && " } ?? ""
        let command = "\(watchdog) \(cd)exec env \(assignments) \(([program] + arguments).map(Self.quote).joined(separator: " "))"
        let r = ChildProcess.run(tmux, ["-L", socket, "-f", config, "new-session", "-d", "-s", session, "-x", "\(width)", "-y", "\(height)", command],
                                 timeout: 120)
        guard r.status == 0 else {
            throw TmuxProgramError(message: "tmux new-session failed with status \(r.status): \(r.output)")
        }
        let ids = ChildProcess.run(tmux, ["-L", socket, "display-message", "-p", "-t", session, "#{pane_pid} #{pid}"], timeout: 60)
            .output.split(whereSeparator: \.isWhitespace).compactMap { pid_t($0) }
        programPid = ids.first
        serverPid = ids.count > 1 ? ids[1] : nil
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

    /// The program's exit status once it has ended (-1 for a signal), nil while it runs.
    public var exitStatus: Int32? {
        let fields = run(["display-message", "-p", "-t", session, "#{pane_dead} #{pane_dead_status} #{pane_dead_signal}"]).output
            .split(whereSeparator: \.isWhitespace).map(String.init)
        guard fields.first == "1" else { return nil }
        if fields.count > 1, let status = Int32(fields[1]) { return status }
        return -1
    }

    /// Whether the program still runs: its pane is alive.
    public var isRunning: Bool { exitStatus == nil && run(["has-session", "-t", session]).status == 0 }

    /// The exit status once the program has ended, or nil after `timeout` seconds (a backstop).
    public func waitForExit(timeout: Double) -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if let status = exitStatus { return status }
            if Date() >= deadline { return nil }
            Thread.sleep(forTimeInterval: 0.25)
        }
    }

    /// Ends everything: the server (kill-server, then SIGKILL to its process), the program if it
    /// still runs (SIGKILL); the watchdog sees the server gone within a second and leaves.
    public func stop() {
        guard !stopped else { return }
        stopped = true
        let alive = exitStatus == nil
        run(["kill-server"])
        if alive, let programPid { _ = Foundation.kill(programPid, SIGKILL) }
        if let serverPid, Foundation.kill(serverPid, 0) == 0 { _ = Foundation.kill(serverPid, SIGKILL) }
    }

    deinit { stop() }

    /// `s` in single quotes for sh.
    public static func quote(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'" }
}

public struct TmuxProgramError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}
