import Foundation

/// A program started by a test, with stdin from /dev/null and stdout and stderr together in a
/// temporary file (or discarded).
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
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { $0.map { strdup("\($0.key)=\($0.value)") } + [nil] }
        defer { for a in argv + (envp ?? []) { free(a) } }
        var pid: pid_t = 0
        let rc = envp.map { posix_spawn(&pid, executable, &actions, nil, argv, $0) }
            ?? posix_spawn(&pid, executable, &actions, nil, argv, environ)
        guard rc == 0 else { throw StartError(executable: executable, code: rc) }
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

    /// Ends the program if it still runs (SIGTERM, then SIGKILL after 5 s; mpirun takes its ranks
    /// with it) and removes the output file.
    public func kill() {
        if wait(timeout: 0) == nil {
            Foundation.kill(pid, SIGTERM)
            if wait(timeout: 5) == nil { Foundation.kill(pid, SIGKILL); _ = wait(timeout: 5) }
        }
        if let outputPath { try? FileManager.default.removeItem(atPath: outputPath) }
    }

    /// Runs a program to its end and returns its status (as `wait`) and output. With a `timeout` it
    /// is killed after that many seconds: status `timedOut`, and the output says so. A program that
    /// cannot start gives status `notStarted` and `StartError`'s description as its output.
    @discardableResult
    public static func run(_ executable: String, _ arguments: [String], environment: [String: String]? = nil,
                           timeout: Double? = nil, capture: Bool = true) -> (status: Int32, output: String) {
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
