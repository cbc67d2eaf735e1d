import ArgumentParser
import Dashboard
import Foundation
import Telemetry
import Terminal
import Training

/// `gradflow attach RUNDIR`: the live dashboard on a run that another process writes (a headless
/// `gradflow train`, an mpirun job, a PyTorch loop with the Python package). Keys become lines of
/// the run's command channel; q leaves the run going.
struct AttachCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "attach",
        abstract: "Open the live dashboard on a run another process is writing, and steer it.",
        discussion: """
        The dashboard reads RUNDIR/run.jsonl as it grows and sends every key that changes the run (weights, adaptive mode, pause, checkpoint, A/A check, revert, stop) as a line of RUNDIR/commands.jsonl, which the trainer applies at its next step boundary; the status line says "sent", then "applied at step N" (or why it was refused) when the trainer's event comes back. q leaves and the run goes on; x then y stops the run. Whoever can write the run folder can steer the run.

        A run that has ended opens as a replay. A run with no end record whose file has not grown for --silent-after seconds is said to be silent (its writer may have died); commands sent to it are applied if it is resumed. Without a terminal, or with --no-tui, attach prints the run's progress lines until it ends, as `replay --follow --no-tui` does (no keys).

        Examples:
          gradflow train --no-tui --out runs/long &
          gradflow attach runs/long
        """
    )

    @Argument(help: ArgumentHelp("A run directory (or its run.jsonl) that another process writes.", valueName: "run"))
    var runPath: String

    @Option(help: "Seconds without a new record after which an unfinished run is called silent (its writer may have died); 10 or more.")
    var silentAfter: Double = RunCatalog.liveWindow

    @OptionGroup var display: DisplayOptions

    func validate() throws {
        // A live trainer, paused or not, writes a system record every SystemRecord.interval seconds.
        let least = 2 * SystemRecord.interval
        guard silentAfter >= least, silentAfter.isFinite else {
            throw ValidationError("--silent-after must be \(Format.fixed(least, 0)) seconds or more (a live trainer, even paused, writes a record every \(Format.fixed(SystemRecord.interval, 0)) s), not \(silentAfter)")
        }
    }

    func run() throws {
        let runFile: String, runDirectory: String, header: RunHeader
        do {
            runFile = try RunFileLocation.resolve(runPath)
            runDirectory = try RunFileLocation.directory(runPath)
            header = try RunFileReader(path: runFile).header
        } catch {
            throw CLIError("\(error)")
        }
        if case let .end(end)? = RecordingExtent.lastRecord(path: runFile) {
            print("gradflow attach: \(header.runName) has ended (\(end.reason.rawValue) at step \(Format.grouped(end.step))): opening its replay")
            var replay = try ReplayCommand.parse([runFile, "--speed", "0"])
            replay.display = display
            try replay.run()
            return
        }
        guard !header.runId.isEmpty else {
            throw CLIError("\(runFile): written before run ids (schema \(header.schema)), so it cannot be steered; `gradflow replay \(runPath) --follow` shows it")
        }
        if let age = RunFileLocation.secondsSinceModified(runFile), age > silentAfter {
            Console.error("gradflow attach: \(runFile) has no end record and has not grown for \(Format.clock(age)): its writer may have died (a running or paused trainer adds a record at least every few seconds). Commands sent now are applied if the run is resumed.\n")
        }
        let channel: CommandChannelWriter
        do {
            channel = try CommandChannelWriter(runDirectory: runDirectory, runId: header.runId)
        } catch {
            throw CLIError("\(error)")
        }
        var channelWarning: String?
        var st = stat()
        if stat(channel.path, &st) == 0, let problem = CommandChannel.permissionProblem(mode: st.st_mode) {
            channelWarning = problem
            Console.error("gradflow attach: \(runDirectory)/\(problem)\n")
        }
        guard let (screen, launched) = try DashboardLauncher.open(display, runFile: runFile) else {
            // Keys need the dashboard; without one, attach follows the run's progress as replay does.
            Console.error("gradflow attach: without the dashboard there are no keys; printing \(header.runName)'s progress until it ends (Ctrl-C leaves it going)\n")
            var replay = try ReplayCommand.parse([runFile, "--speed", "0", "--follow", "--no-tui"])
            replay.display = display
            try replay.printProgress()
            return
        }
        var options = launched
        options.attachedCommandPrefix = Self.commandIdPrefix()
        options.silentAfter = silentAfter
        options.openingWarning = channelWarning
        let bus = RecordBus()
        let replayer: Replayer
        do {
            // The history already written is read in fast: every step's scalars, a sample of the
            // steps for the sparklines, and the latest steps in full (docs/PERFORMANCE.md, Attach).
            let steps = RecordingExtent.lastStep(path: runFile) ?? 0
            let catchUp = RunFileReader.CatchUp(detail: .scalars, sampleEvery: RunData.historyStride(steps: steps),
                                                sampleDetail: .history, checksSkippedNumbers: false)
            // Past an end record too: a run stopped and then resumed is followed into its next session.
            replayer = try Replayer(path: runFile, bus: bus, speed: 0, follow: true, followPastEnd: true, catchUp: catchUp)
        } catch {
            screen.close()
            throw CLIError("\(error)")
        }
        replayer.onIssue = { _ in }  // a torn last line is the writer's line in progress
        let (exit, state) = DashboardLauncher.run(screen: screen, options: options, replayer: replayer, bus: bus, commands: channel)
        let ended: EndRecord? = { if case let .ended(end) = exit { return end }; return state.data.end }()
        if let end = ended {
            print("gradflow attach: \(header.runName) ended (\(end.reason.rawValue) at step \(Format.grouped(end.step)))")
        } else if let silent = state.silentSeconds, state.data.latestCheckpointStep == nil {
            print("gradflow attach: detached from \(header.runName) at step \(Format.grouped(state.data.stepsDone)); it has been silent for \(Format.clock(silent)), so its writer may have died; it recorded no checkpoint, so unless its state was saved some other way it cannot be resumed (start it again)")
        } else if let silent = state.silentSeconds {
            print("gradflow attach: detached from \(header.runName) at step \(Format.grouped(state.data.stepsDone)); it has been silent for \(Format.clock(silent)), so its writer may have died; resuming the run from its latest checkpoint continues it and applies the commands sent meanwhile")
        } else {
            print("gradflow attach: detached from \(header.runName) at step \(Format.grouped(state.data.stepsDone)); it goes on (`gradflow attach \(runPath)` to come back)")
        }
    }

    /// A prefix no other dashboard uses: host, process and a random part.
    static func commandIdPrefix() -> String {
        let host = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "host"
        return "\(host)-\(getpid())-\(String(UInt32.random(in: 0...UInt32.max), radix: 36))"
    }
}
