import Dashboard
import Foundation
import Telemetry
import Terminal
import Themes

/// Decides between the dashboard and plain output, and opens the dashboard when it can.
enum DashboardLauncher {
    /// The terminal screen and the dashboard options, or nil when the run should print plain lines
    /// (`--no-tui`, output not a terminal, unknown TERM). A bad `--theme` is an error.
    /// `underMPIRun`: rank 0 of an `mpirun` job, whose standard input is a pipe from mpirun (or
    /// /dev/null with `mpirun --stdin none`): the dashboard draws on the controlling terminal.
    static func open(_ display: DisplayOptions, runFile: String?, underMPIRun: Bool = false) throws -> (NCursesScreen, DashboardOptions)? {
        // Check the theme first, so a bad one is reported even when the dashboard would not open.
        let themes: [Theme]
        do {
            themes = try ThemeLoader(bundledDirectory: bundledThemes()).catalog(selected: display.theme)
        } catch {
            throw CLIError("--theme: \(error)")
        }
        guard let style = GraphStyle(rawValue: display.graph) else {
            throw CLIError("--graph must be braille, block or ascii (got '\(display.graph)')")
        }
        let references = try loadReferences(display.compare)
        guard !display.noTui else { return nil }
        if !(isatty(0) == 1 && isatty(1) == 1) {
            guard underMPIRun, mpirunLeavesTheTerminal() else { return nil }
            takeTerminalForeground()
        }
        do {
            let screen = try NCursesScreen()
            var options = DashboardOptions(themes: themes, graphStyle: style, runFile: runFile)
            options.references = references
            return (screen, options)
        } catch {
            Console.error("gradflow: no dashboard (\(error)); printing progress lines\n")
            return nil
        }
    }

    /// Whether rank 0 has a controlling terminal whose keys mpirun does not read: mpirun forwards
    /// its standard input to rank 0 through a pipe unless started with `--stdin none`.
    static func mpirunLeavesTheTerminal() -> Bool {
        let fd = Foundation.open("/dev/tty", O_RDWR | O_NOCTTY)
        guard fd >= 0 else { return false }
        close(fd)
        var st = stat()
        if fstat(0, &st) == 0 && (st.st_mode & S_IFMT) == S_IFIFO {
            Console.error("gradflow: no dashboard: mpirun reads the terminal's keys (start it as `mpirun --stdin none …` for the dashboard); printing progress lines\n")
            return false
        }
        return true
    }

    /// The terminal and the process group that had it in the foreground before rank 0 took it.
    nonisolated(unsafe) private static var borrowed: (fd: Int32, group: pid_t)?

    /// mpirun starts every rank in a process group of its own, in the background of the terminal,
    /// where reading keys fails: rank 0 makes its group the terminal's foreground (so keys, and
    /// Ctrl-C, reach it) until `giveBackTerminal()`.
    static func takeTerminalForeground() {
        let fd = Foundation.open("/dev/tty", O_RDWR | O_NOCTTY)
        guard fd >= 0 else { return }
        let previous = tcgetpgrp(fd)
        signal(SIGTTOU, SIG_IGN)
        if tcsetpgrp(fd, getpgrp()) == 0 {
            borrowed = (fd, previous)
        } else {
            close(fd)
        }
    }

    /// Hands the terminal's foreground back to mpirun's process group (after the dashboard closed).
    static func giveBackTerminal() {
        guard let b = borrowed else { return }
        borrowed = nil
        tcsetpgrp(b.fd, b.group)
        close(b.fd)
    }

    /// Runs the dashboard on the records a replayer reads from a file (a replay, or `attach` with
    /// `commands` going to the run's channel) until the user leaves; the screen is closed and the
    /// replayer stopped on return. A second Ctrl-C leaves at once.
    static func run(screen: NCursesScreen, options: DashboardOptions, replayer: Replayer, bus: RecordBus,
                    commands: CommandSink?) -> (DashboardExit, DashboardState) {
        let subscription = bus.subscribe(name: "dashboard", capacity: 1 << 16)
        let signals = SignalHandling(onStop: {}, onForce: { SignalHandling.exitNow { NCursesScreen.closeAll() } })
        replayer.start()
        let runner = DashboardRunner(screen: screen, subscription: subscription, commands: commands, replay: replayer,
                                     options: options)
        let exit = runner.run(interrupted: { signals.stopRequested })
        screen.close()
        signals.cancel()
        replayer.stop()
        return (exit, runner.state)
    }

    /// The `--compare` runs, read in full; a file that cannot be read is an error naming it.
    static func loadReferences(_ paths: [String]) throws -> [ReferenceRun] {
        guard paths.count <= ReferenceRun.maxCount else {
            throw CLIError("--compare: at most \(ReferenceRun.maxCount) reference runs (got \(paths.count))")
        }
        return try paths.map { path in
            do { return try ReferenceRun.load(path: path) } catch { throw CLIError("--compare: \(error)") }
        }
    }

    /// The repository's themes/ folder when the executable runs from a build inside it.
    static func bundledThemes() -> URL? {
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<5 {
            let candidate = dir.appendingPathComponent("themes")
            if FileManager.default.fileExists(atPath: candidate.appendingPathComponent("default.theme").path) { return candidate }
            dir.deleteLastPathComponent()
        }
        return nil
    }
}
