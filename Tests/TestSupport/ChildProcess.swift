import Foundation

/// A program started by a test, with stdin from /dev/null and stdout and stderr together in a
/// temporary file (or discarded).
///
/// Each program runs in its own process group, and a failing test leaves nothing running: `kill()`
/// (called by `run`, by `deinit`, and meant for a test's `defer`) ends the whole group, and the
/// groups still alive when the test process exits — or is ended by SIGINT, SIGTERM or SIGHUP —
/// are killed then (`LiveGroups`).
///
/// Started with posix_spawn and reaped with waitpid, not Foundation's `Process`: that could hang
/// in the tmux tests once tmux's server daemonised. The output goes to a file, never a pipe, which a
/// forked server (tmux's, mpirun's daemons) could keep open after the program itself ended.
///
///     let job = try ChildProcess.start(binary, ["train", "--steps", "3000"])
///     defer { job.kill() }
///     let status = job.wait(timeout: 30)   // nil: still running
///
///     let r = ChildProcess.run("/usr/bin/env", ["true"])   // (status: 0, output: "")
public final class ChildProcess {
    /// The program's process id.
    public let pid: pid_t
    /// The file holding its stdout and stderr; nil when the output is discarded.
    public let outputPath: String?
    private var status: Int32?

    /// The status `run` gives a program still running after its timeout (it is then killed).
    public static let timedOut: Int32 = -2
    /// The status `run` gives a program that could not be started.
    public static let notStarted: Int32 = -3

    private init(pid: pid_t, outputPath: String?) {
        self.pid = pid
        self.outputPath = outputPath
    }

    /// Starts `executable` (a path, not looked up in PATH) with `arguments`. `environment` nil
    /// passes this process's environment on; `capture: false` sends the output to /dev/null.
    public static func start(_ executable: String, _ arguments: [String], environment: [String: String]? = nil,
                             capture: Bool = true) throws -> ChildProcess {
        let outputPath = capture ? NSTemporaryDirectory() + "gradflow-test-out-\(UUID().uuidString)" : nil
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputPath ?? "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // Its own process group (pgid = pid), so that kill() reaches what it starts too. And a clean
        // signal state: the test runner's worker threads block most signals, and a blocked mask is
        // inherited across exec — a tmux server started that way ignores kill-server (SIGTERM) and its
        // panes' programs never see SIGHUP, so they outlived the test (issue 20).
        var noSignals = sigset_t(), defaults = sigset_t()
        sigemptyset(&noSignals)
        sigemptyset(&defaults)
        for sig in [SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGPIPE, SIGCHLD, SIGUSR1, SIGUSR2] { sigaddset(&defaults, sig) }
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        posix_spawnattr_setpgroup(&attributes, 0)
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { $0.map { strdup("\($0.key)=\($0.value)") } + [nil] }
        defer { for a in argv + (envp ?? []) { free(a) } }
        var pid: pid_t = 0
        LiveGroups.installHandlers()
        let rc = envp.map { posix_spawn(&pid, executable, &actions, &attributes, argv, $0) }
            ?? posix_spawn(&pid, executable, &actions, &attributes, argv, environ)
        guard rc == 0 else { throw StartError(executable: executable, code: rc) }
        LiveGroups.add(pid)
        return ChildProcess(pid: pid, outputPath: outputPath)
    }

    /// posix_spawn's refusal: `code` is its errno value (ETXTBSY for a binary still open for writing).
    public struct StartError: Error, CustomStringConvertible {
        public var executable: String
        public var code: Int32
        public var description: String { "posix_spawn \(executable): error \(code)" }
    }

    /// Waits for the program to end: its exit status, or -1 when a signal ended it.
    public func wait() -> Int32 {
        if let status { return status }
        var raw: Int32 = 0
        while true {
            if waitpid(pid, &raw, 0) == pid { return record(raw) }
            if errno != EINTR { return lost() }
        }
    }

    /// The exit status (-1 for a signal), or nil when the program still runs after `timeout`
    /// seconds (polled every 0.05 s; 0 only looks).
    public func wait(timeout: Double) -> Int32? {
        if let status { return status }
        let deadline = Date().addingTimeInterval(timeout)
        var raw: Int32 = 0
        while true {
            let r = waitpid(pid, &raw, WNOHANG)
            if r == pid { return record(raw) }
            if r < 0 && errno != EINTR { return lost() }
            if Date() >= deadline { return nil }
            Thread.sleep(forTimeInterval: 0.05)
        }
    }

    /// waitpid failed for good (the child is not ours to wait for any more): report -1, as for a
    /// signal, and never signal that pid again.
    private func lost() -> Int32 {
        status = -1
        return -1
    }

    private func record(_ raw: Int32) -> Int32 {
        let exited = (raw & 0x7f) == 0
        let decoded = exited ? (raw >> 8) & 0xff : -1
        status = decoded
        return decoded
    }

    /// What the program printed so far, decoded leniently: a program may print bytes that are not
    /// UTF-8 (`gradflow sample` of an untrained model). Empty when the output is discarded.
    public var output: String {
        guard let outputPath, let data = FileManager.default.contents(atPath: outputPath) else { return "" }
        return String(decoding: data, as: UTF8.self)
    }

    /// Ends the program if it still runs (SIGTERM to its process group, then SIGKILL after 5 s;
    /// mpirun takes its ranks with it), kills whatever is left of its group, and removes the
    /// output file. Safe to call more than once.
    public func kill() {
        if wait(timeout: 0) == nil {
            Foundation.kill(-pid, SIGTERM)
            if wait(timeout: 5) == nil { Foundation.kill(-pid, SIGKILL); _ = wait(timeout: 5) }
        }
        // Anything the program started in its group and left behind.
        if LiveGroups.remove(pid) { Foundation.kill(-pid, SIGKILL) }
        if let outputPath { try? FileManager.default.removeItem(atPath: outputPath) }
    }

    /// Sends `signal` to the program alone (not its group), e.g. SIGINT for a clean stop.
    public func signal(_ signal: Int32) {
        if wait(timeout: 0) == nil { Foundation.kill(pid, signal) }
    }

    deinit { kill() }

    /// Runs a program to its end and returns its status (as `wait`) and output. After `timeout`
    /// seconds (default 600: a backstop that turns a hung program into a failure, never a window a
    /// test relies on) it is killed: status `timedOut`, and the output says so. A program that
    /// cannot start gives status `notStarted` and `StartError`'s description as its output.
    @discardableResult
    public static func run(_ executable: String, _ arguments: [String], environment: [String: String]? = nil,
                           timeout: Double? = 600, capture: Bool = true) -> (status: Int32, output: String) {
        let job: ChildProcess
        do {
            job = try start(executable, arguments, environment: environment, capture: capture)
        } catch {
            return (notStarted, "\(error)")
        }
        defer { job.kill() }
        guard let timeout else { let status = job.wait(); return (status, job.output) }
        guard let status = job.wait(timeout: timeout) else {
            return (timedOut, job.output + "\n(timed out after \(timeout) s)")
        }
        return (status, job.output)
    }

    /// The first executable `name` in $PATH (or /usr/bin:/bin), or nil.
    public static func which(_ name: String) -> String? {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let path = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return nil
    }

    /// The `gradflow` built next to the test bundle (or $GRADFLOW_BINARY), or nil.
    public static let gradflow: String? = {
        if let p = ProcessInfo.processInfo.environment["GRADFLOW_BINARY"] { return p }
        let dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for candidate in [dir, dir.deletingLastPathComponent()] {
            let url = candidate.appendingPathComponent("gradflow")
            if FileManager.default.isExecutableFile(atPath: url.path) { return url.path }
        }
        return nil
    }()
}

/// The process groups of the programs tests started and have not killed yet. When the test process
/// exits, or SIGINT, SIGTERM or SIGHUP ends it (a CI timeout, Ctrl-C), each is sent SIGKILL, so
/// no `gradflow` outlives the test run. A fixed table that the signal handler only reads.
public enum LiveGroups {
    static let capacity = 512
    nonisolated(unsafe) static let table: UnsafeMutablePointer<pid_t> = {
        let p = UnsafeMutablePointer<pid_t>.allocate(capacity: capacity)
        p.initialize(repeating: 0, count: capacity)
        return p
    }()
    static let lock = NSLock()
    nonisolated(unsafe) static var installed = false

    static func add(_ pid: pid_t) {
        lock.lock(); defer { lock.unlock() }
        for i in 0..<capacity where table[i] == 0 { table[i] = pid; return }
    }

    /// Whether `pid` was in the table (and is no more).
    @discardableResult
    static func remove(_ pid: pid_t) -> Bool {
        lock.lock(); defer { lock.unlock() }
        for i in 0..<capacity where table[i] == pid { table[i] = 0; return true }
        return false
    }

    /// SIGKILL to every group still listed (async-signal-safe: reads the table, calls kill(2)).
    static func killAll() {
        for i in 0..<capacity {
            let pid = table[i]
            if pid > 0 { _ = Foundation.kill(-pid, SIGKILL) }
        }
    }

    static func installHandlers() {
        lock.lock(); defer { lock.unlock() }
        guard !installed else { return }
        installed = true
        atexit { LiveGroups.killAll() }
        for sig in [SIGINT, SIGTERM, SIGHUP] {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { sig in
                LiveGroups.killAll()
                // Then end as the signal would have.
                Foundation.signal(sig, SIG_DFL)
                raise(sig)
            }
            sigemptyset(&action.sa_mask)
            action.sa_flags = 0
            sigaction(sig, &action, nil)
        }
    }
}
