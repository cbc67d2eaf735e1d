import ArgumentParser
import Dashboard
import Foundation
import Telemetry
import Terminal
import Training

/// `gradflow replay RUNDIR|FILE`: plays a recorded run again, in the dashboard or as progress lines.
struct ReplayCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Replay a recorded run (RUNDIR/run.jsonl) in the dashboard or as progress lines.",
        discussion: """
        Records are played at the recorded pace times --speed (0: as fast as possible). Without a terminal, or with --no-tui, the same progress lines as `gradflow train --no-tui` are printed, then the run summary. --follow reads a run another process is still writing, until its end record (Ctrl-C to stop); when the file stops growing for a minute and no process holds it, a notice says its writer may have died. Damaged lines are skipped with a notice on standard error.

        Examples:
          gradflow replay runs/s-baseline --speed 20
          gradflow replay runs/s-baseline/run.jsonl --speed 0 --no-tui --summary-only
          gradflow replay runs/live --follow --no-tui
        """
    )

    @Argument(help: ArgumentHelp("A run directory or its run.jsonl file.", valueName: "run"))
    var runPath: String

    @Option(help: "Playback speed relative to the recorded pace; 0 plays as fast as possible.")
    var speed: Double = 1

    @Flag(help: "Keep reading a run file that is still being written, until its end record.")
    var follow = false

    @Flag(help: "Print only the run summary (reads at full speed; implies --no-tui).")
    var summaryOnly = false

    @OptionGroup var display: DisplayOptions

    func validate() throws {
        guard speed >= 0, speed.isFinite else { throw ValidationError("--speed must be 0 (as fast as possible) or a positive number, not \(speed)") }
    }

    func run() throws {
        do {
            if summaryOnly {
                try summarise()
            } else if try !tryDashboard() {
                try printProgress()
            }
        } catch let error as RunFileError {
            throw CLIError("\(error)")
        }
    }

    /// Notices about skipped lines go to standard error, so stdout stays the progress lines.
    static func notice(_ issue: ReadIssue) {
        Console.error("gradflow replay: notice: \(issue)\n")
    }

    /// --follow on a run nobody writes any more: said once, as attach says it (the wait goes on;
    /// the writer may be resumed).
    static func quiet(_ seconds: Double) {
        Console.error("gradflow replay: notice: no new record for \(Format.clock(seconds)) and no process is writing the run "
                      + "(none holds its lock): its writer may have died; still following (Ctrl-C stops)\n")
    }

    /// --summary-only: read, fold, print the summary (the run-file benchmark times this).
    func summarise() throws {
        // The references are checked as without --summary-only (too many, or unreadable, is an
        // error), though the summary draws none.
        _ = try DashboardLauncher.loadReferences(display.compare)
        let summary = try RunSummary.read(path: runPath, follow: follow ? .init(onQuiet: ReplayCommand.quiet) : nil,
                                          onIssue: ReplayCommand.notice)
        for line in summary.lines() { print(line) }
    }

    /// --no-tui: progress lines then the summary. At speed 0 the records go straight from the
    /// reader to the printer; otherwise through the replayer and the bus, at the chosen pace.
    func printProgress() throws {
        let printer = ProgressPrinter(interval: display.reportEvery)
        if speed == 0 {
            let reader = try RunFileReader(path: runPath, follow: follow ? .init(onQuiet: ReplayCommand.quiet) : nil)
            reader.onIssue = ReplayCommand.notice
            reader.stepDetail = .noLayerArrays  // progress lines and summary use no per-layer arrays
            printer.consume(header: reader.header)
            while let record = try reader.next() { printer.consume(record) }
            printer.printSummary(skippedLines: reader.issueCount)
            return
        }
        let bus = RecordBus()
        let replayer = try Replayer(path: runPath, bus: bus, speed: speed, follow: follow)
        replayer.onIssue = ReplayCommand.notice
        replayer.onQuiet = ReplayCommand.quiet
        printer.consume(header: replayer.header)
        printer.attach(to: bus)
        replayer.start()
        replayer.waitUntilFinished()
        replayer.stop()
        printer.finish(skippedLines: replayer.skippedLines)
    }

    // MARK: - Dashboard hook (the lead plugs the dashboard in here)

    /// Runs the replay in the dashboard. Returns false when no dashboard can run (no terminal,
    /// unknown TERM), and the command then prints progress lines as with --no-tui.
    func tryDashboard() throws -> Bool {
        guard let (screen, launched) = try DashboardLauncher.open(display, runFile: runPath) else { return false }
        var options = launched
        let bus = RecordBus()
        let replayer: Replayer, runDirectory: String
        do {
            replayer = try Replayer(path: runPath, bus: bus, speed: speed, follow: follow)
            runDirectory = try RunFileLocation.directory(runPath)
        } catch {
            screen.close()
            throw error
        }
        // A fork trains the steps after its checkpoint: the run's last one has none left.
        options.forkSteps = CheckpointFiles.list(runDirectory: runDirectory).map(\.step).filter { $0 < replayer.header.totalSteps }
        let (exit, _) = DashboardLauncher.run(screen: screen, options: options, replayer: replayer, bus: bus, commands: nil)
        if case let .fork(step) = exit {
            try forkLive(runDirectory: runDirectory, step: step)
            return true
        }
        ExitSummary.print(runFile: replayer.path)
        return true
    }

    /// Key f: `gradflow train --fork RUN@STEP` in this process, into a new run folder, with the
    /// recording (and the other --compare runs, up to three in all) as ghost lines.
    func forkLive(runDirectory: String, step: Int) throws {
        var args = ["--fork", "\(runDirectory)@\(step)", "--compare", runDirectory]
        for other in display.compare.prefix(ReferenceRun.maxCount - 1) { args += ["--compare", other] }
        if let theme = display.theme { args += ["--theme", theme] }
        args += ["--graph", display.graph]
        print("gradflow: forking \(runDirectory) at step \(step) into a new live run…")
        do {
            try TrainCommand.parse(args).run()
        } catch let e as ExitCode {
            throw e
        } catch {
            throw CLIError(TrainCommand.message(for: error))
        }
    }
}
