import ArgumentParser
import Dispatch
import DataParallel
import Foundation
import Telemetry
import Terminal
import Dashboard
import Training

/// Runs one training session: the trainer on its own thread, the recorder and the display on
/// the bus, and the signal handling that turns Ctrl-C / SIGTERM into a clean stop.
///
/// Under mpirun every rank runs a session; only rank 0 (the lead) has the display, the run file
/// and the checkpoints, the other ranks train quietly and print only errors.
struct TrainingSession {
    let setup: TrainingSetup
    let display: DisplayOptions
    var debug = DebugHooks()
    var collective: Collective = SingleProcess()
    /// What `readPastRun` found, when the caller read it before the session (mpirun's rank 0,
    /// which checks everything before the ranks agree to start).
    var pastRun: PastRun?

    /// What a resumed run carries over from its run file (its clock, id and answered commands),
    /// and the resume's refusals (a file being written, another run's checkpoint, later
    /// checkpoints that it would overwrite, a completed run): empty for a run that is not resumed.
    /// A missing run file starts afresh; one that cannot be read must not lose the run's id
    /// and answered commands (every old command would then be refused, or applied twice).
    static func readPastRun(_ setup: TrainingSetup) throws -> PastRun {
        guard setup.resume != nil && setup.parent == nil else { return PastRun() }
        let runFile = RunFileLocation.file(in: setup.runDirectory)
        guard FileManager.default.fileExists(atPath: runFile) else { return PastRun() }
        // Refused before the model is built and the dashboard opens; the writer's own lock,
        // taken when the file is opened, is what guarantees it.
        if RunFileWriter.isBeingWritten(path: runFile) {
            throw CLIError("\(runFile): \(RunFileWriter.lockedMessage)")
        }
        let past: PastRun
        do { past = try PastRun.read(runFile) } catch {
            throw CLIError("cannot read the run file this resume continues: \(error)")
        }
        if let mine = setup.resume?.runId, let theirs = past.runId, mine != theirs {
            throw ValidationError("--resume \(setup.resume?.path ?? "checkpoint"): the checkpoint was written by run \(mine), "
                                  + "but \(runFile) is run \(theirs); a checkpoint continues only its own run "
                                  + "(to start a new run from it, use --fork on the folder it came from)")
        }
        if let problem = laterCheckpointsProblem(setup, completed: past.completed) { throw ValidationError(problem) }
        return past
    }

    /// Returns the process exit status: 0 completed or quit with q, 130 stopped by a signal, 1 failed.
    func run() throws -> Int32 {
        // A write to a closed pipe (the progress lines, stderr under mpirun) fails instead of
        // killing the run with SIGPIPE before its checkpoint and end record.
        Console.ignoreBrokenPipe()
        let bus = RecordBus()
        let lead = collective.rank == 0
        var timeOffset = 0.0
        var past = PastRun()
        if lead {
            past = try pastRun ?? Self.readPastRun(setup)
            timeOffset = past.lastT
        }
        let trainer: Trainer
        do {
            trainer = try Trainer(config: setup.config, refinement: setup.refinement, train: setup.train,
                                  evalDomains: setup.evalDomains, bus: bus, runDirectory: lead ? setup.runDirectory : nil,
                                  resume: setup.resume, timeOffset: timeOffset, collective: collective)
        } catch {
            throw CLIError("\(error)")
        }
        do {
            trainer.interventions = try setup.recipe.interventionSettings(bandNames: trainer.bandNames, source: .flag)
        } catch {
            throw CLIError("\(error)")
        }
        debug.apply(to: trainer)
        guard lead else { return quietRank(trainer) }
        let runName = (setup.runDirectory as NSString).lastPathComponent
        var header = trainer.header(runName: runName)
        header.parent = setup.parent
        header.runId = past.runId ?? RunHeader.newRunId()
        bus.publishHeader(header)
        let runFile = RunFileLocation.file(in: setup.runDirectory)
        let underMPIRun = MPICollective.launchedByMPIRun
        let dashboard = try DashboardLauncher.open(display, runFile: runFile, underMPIRun: underMPIRun)
        let viewer = dashboard == nil ? nil : bus.subscribe(name: "dashboard", capacity: 1 << 16)
        let printer = dashboard == nil ? ProgressPrinter(interval: display.reportEvery) : nil
        if let printer {
            // A closed pipe (`gradflow train --no-tui | head`) stops the run as Ctrl-C does, with
            // its checkpoint and end record (SIGPIPE is ignored, see `run`).
            printer.outputClosed = {
                Console.error("gradflow: standard output was closed; \(SignalHandling.stopping)\n")
                trainer.requestStop(source: .signal)
            }
            printer.consume(header: header)
            printer.attach(to: bus)
        }
        let recorder: RunRecorder
        if setup.resume != nil && setup.parent == nil {
            // The header keeps the run's first process layout; the event says this session's
            // (a resume may use another rank or thread count).
            recorder = try RunRecorder.resume(runFile: setup.runDirectory, bus: bus, step: trainer.step, t: timeOffset,
                                              message: "resumed from step \(trainer.step) with \(header.processSummary)").recorder
        } else {
            recorder = try RunRecorder.create(runDirectory: setup.runDirectory, header: header, bus: bus)
            if let parent = setup.parent { bus.publish(.event(Fork.event(parent))) }
        }
        // This process holds the run file's lock now, so no other writes a checkpoint here: a
        // temporary left by one killed while writing is never finished.
        CheckpointFiles.removeTemporaries(in: setup.runDirectory)
        // A run file that can no longer be written (a full disk) stops the run at once: hours of
        // training that no file records would be lost anyway. Said now without a dashboard (whose
        // screen the message would garble), else when it has closed.
        let unrecorded = StopFlag()
        let headless = dashboard == nil
        recorder.onFailure { error in
            unrecorded.set()
            if headless { Console.error("gradflow: run file: \(error); \(SignalHandling.stopping)\n") }
            trainer.requestStop(source: .recorder)
        }
        do {
            try trainer.attachChannel(runDirectory: setup.runDirectory, runId: header.runId, history: past.channel)
        } catch {
            throw CLIError("\(error)")
        }
        trainer.recordSystemFigures()
        let signals = SignalHandling(onStop: {
            trainer.requestStop(source: .signal)
            // mpirun follows its SIGTERM with SIGKILL a second later (odls_base_sigkill_timeout):
            // the dashboard leaves at once, so the terminal is given back before that.
            if underMPIRun, let viewer { bus.unsubscribe(viewer) }
        }, onForce: {
            SignalHandling.exitNow {
                NCursesScreen.closeAll()
                CheckpointFiles.removeTemporaries(in: setup.runDirectory, pid: getpid())
            }
        })
        let (outcome, done) = Self.start(trainer, then: { bus.close() })
        if let (screen, options) = dashboard, let viewer {
            let runner = DashboardRunner(screen: screen, subscription: viewer, commands: trainer.commands,
                                         replay: nil, options: options)
            let exit = runner.run(interrupted: { signals.stopRequested })
            screen.close()
            DashboardLauncher.giveBackTerminal()
            if case .ended = exit {} else {
                // The dashboard was left while training runs: stop cleanly all the same.
                trainer.requestStop(source: .key)
                print("gradflow: waiting for the trainer to finish its step…")
            }
        }
        done.wait()
        printer?.finish()
        debug.report(trainer)
        do { try recorder.finish() } catch {
            if !headless { Console.error("gradflow: run file: \(error); the run stopped\n") }
        }
        signals.cancel()   // after the end record is on disk: a late SIGHUP then ends nothing half done
        if dashboard != nil { ExitSummary.print(runFile: runFile) }
        print("run file: \(runFile)")
        if unrecorded.isSet {
            if outcome.end?.reason == .failed { Console.error("gradflow: \(outcome.end?.message ?? "")\n") }
            Console.error("gradflow: the run file ends before step \(outcome.end?.step ?? trainer.step) (no end record); "
                          + "free space and continue with --resume from the last checkpoint\n")
            return 1
        }
        let code = Self.exitCode(outcome.end, stopRequested: signals.stopRequested || printer?.outputLost == true)
        if code == 1 { Console.error("gradflow: training failed: \(outcome.end?.message ?? "unknown error")\n") }
        return code
    }

    /// Why a `--resume` would lose what the run already has, or nil: a checkpoint before the run's
    /// latest would replace the steps after it and overwrite the later checkpoints (branching from
    /// an earlier step is what `--fork` is for), and a run whose file says it `completed` has
    /// nothing to resume (one killed between its last checkpoint and its end record gets that
    /// record from the resume).
    static func laterCheckpointsProblem(_ setup: TrainingSetup, completed: Bool) -> String? {
        guard let checkpoint = setup.resume else { return nil }
        let step = checkpoint.metadata.step, planned = checkpoint.metadata.config.steps
        let later = CheckpointFiles.list(runDirectory: setup.runDirectory).filter { $0.step > step }
        let name = (checkpoint.path as NSString?)?.lastPathComponent ?? "the checkpoint"
        if let latest = later.last {
            let names = later.map { ($0.path as NSString).lastPathComponent }
            // A completed run's latest checkpoint has nothing left to resume either.
            let resumeLatest = latest.step >= planned && completed ? "" : "Resume from the latest (\(latest.path)), or branch"
            return "--resume \(name): the run has later checkpoints (\(names.joined(separator: ", "))); resuming from step \(step) "
                + "would replace its steps after \(step) and overwrite them. \(resumeLatest.isEmpty ? "Branch" : resumeLatest) from "
                + "step \(step) into a new run with --fork \(setup.runDirectory)@\(step) --out NEWDIR"
        }
        if step >= planned && completed {
            return "--resume \(name): the run completed all its \(planned) steps; there is nothing to resume"
        }
        return nil
    }

    /// A rank other than 0: the trainer alone, stopped with the others (it returns what rank 0
    /// returns, since every rank ends at the same step for the same reason).
    func quietRank(_ trainer: Trainer) -> Int32 {
        let signals = SignalHandling(onStop: { trainer.requestStop(source: .signal) }, quiet: true)
        let (outcome, done) = Self.start(trainer)
        done.wait()
        signals.cancel()
        debug.report(trainer)
        return Self.exitCode(outcome.end, stopRequested: signals.stopRequested)
    }

    /// Runs the trainer on its own thread (named, with an 8 MiB stack), then `then`; the
    /// semaphore is signalled when both are done and `outcome` holds the end record.
    static func start(_ trainer: Trainer, then: @escaping () -> Void = {}) -> (Outcome, DispatchSemaphore) {
        let done = DispatchSemaphore(value: 0)
        let outcome = Outcome()
        let thread = Thread {
            outcome.end = trainer.run()
            then()
            done.signal()
        }
        thread.name = "gradflow.trainer"
        thread.stackSize = 8 << 20
        thread.start()
        return (outcome, done)
    }

    /// The exit status of a run that ended so: 0 when completed or left with q, 130 when stopped
    /// by a signal, 1 when it failed.
    static func exitCode(_ end: EndRecord?, stopRequested: Bool) -> Int32 {
        switch end?.reason {
        case .completed?: return 0
        case .interrupted?: return stopRequested ? 130 : 0  // q in the dashboard is a normal exit
        default: return 1
        }
    }

}

/// What a resumed run takes from its run file: the clock, the run id, and the commands the file
/// already answers (so none is applied twice).
struct PastRun {
    var lastT = 0.0
    var runId: String?
    var channel = ChannelHistory()
    /// Whether the file's last session ended with a `completed` end record.
    var completed = false

    static func read(_ path: String) throws -> PastRun {
        let reader = try RunFileReader(path: path)
        reader.stepDetail = .scalars
        var past = PastRun()
        past.runId = reader.header.runId.isEmpty ? nil : reader.header.runId
        try reader.forEachRecord { record in
            past.lastT = max(past.lastT, record.t)
            past.channel.add(record)
            switch record {
            case let .end(e): past.completed = e.reason == .completed
            case let .event(e) where e.kind == .resume_run: past.completed = false
            default: break
            }
        }
        return past
    }
}

/// The trainer thread's result, handed to the main thread after the join.
final class Outcome: @unchecked Sendable {
    var end: EndRecord?
}

/// An error the CLI reports as `gradflow: MESSAGE` with exit status 1.
struct CLIError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
