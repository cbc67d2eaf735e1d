import Dispatch
import Foundation
import Telemetry
import Terminal
import Dashboard
import Training

/// Runs one training session: the trainer on its own thread, the recorder and the display on
/// the bus, and the signal handling that turns Ctrl-C / SIGTERM into a clean stop.
struct TrainingSession {
    let setup: TrainingSetup
    let display: DisplayOptions

    /// Returns the process exit status: 0 completed or quit with q, 130 stopped by a signal, 1 failed.
    func run() throws -> Int32 {
        let bus = RecordBus()
        var timeOffset = 0.0
        if setup.resume != nil && setup.parent == nil {
            // A resumed run's clock continues from its run file's last record.
            let runFile = (setup.runDirectory as NSString).appendingPathComponent("run.jsonl")
            timeOffset = (try? lastRecordTime(runFile)) ?? 0
        }
        let trainer: Trainer
        do {
            trainer = try Trainer(config: setup.config, refinement: setup.refinement, train: setup.train,
                                  evalDomains: setup.evalDomains, bus: bus, runDirectory: setup.runDirectory,
                                  resume: setup.resume, timeOffset: timeOffset)
        } catch {
            throw CLIError("\(error)")
        }
        let runName = (setup.runDirectory as NSString).lastPathComponent
        var header = trainer.header(runName: runName)
        header.parent = setup.parent
        bus.publishHeader(header)
        let runFile = (setup.runDirectory as NSString).appendingPathComponent("run.jsonl")
        let dashboard = try DashboardLauncher.open(display, runFile: runFile)
        let viewer = dashboard == nil ? nil : bus.subscribe(name: "dashboard", capacity: 1 << 16)
        let printer = dashboard == nil ? ProgressPrinter(interval: display.reportEvery) : nil
        if let printer {
            printer.consume(header: header)
            printer.attach(to: bus)
        }
        let recorder: RunRecorder
        if setup.resume != nil && setup.parent == nil {
            recorder = try RunRecorder.resume(runFile: setup.runDirectory, bus: bus, step: trainer.step,
                                              t: timeOffset).recorder
        } else {
            recorder = try RunRecorder.create(runDirectory: setup.runDirectory, header: header, bus: bus)
            if let parent = setup.parent { bus.publish(.event(Fork.event(parent))) }
        }
        let signals = SignalHandling(onStop: { trainer.requestStop() },
                                     onForce: { NCursesScreen.closeAll(); Foundation.exit(130) })
        let done = DispatchSemaphore(value: 0)
        let outcome = Outcome()
        let thread = Thread {
            outcome.end = trainer.run()
            bus.close()
            done.signal()
        }
        thread.name = "gradflow.trainer"
        thread.stackSize = 8 << 20
        thread.start()
        if let (screen, options) = dashboard, let viewer {
            let runner = DashboardRunner(screen: screen, subscription: viewer, commands: trainer.commands,
                                         replay: nil, options: options)
            let exit = runner.run(interrupted: { signals.stopRequested })
            screen.close()
            if case .ended = exit {} else {
                // The dashboard was left while training runs: stop cleanly all the same.
                trainer.requestStop()
                print("gradflow: waiting for the trainer to finish its step…")
            }
        }
        done.wait()
        printer?.finish()
        signals.cancel()
        do { try recorder.finish() } catch { FileHandle.standardError.write(Data("gradflow: run file: \(error)\n".utf8)) }
        if dashboard != nil { ExitSummary.print(runFile: runFile) }
        print("run file: \(runFile)")
        let end = outcome.end
        switch end?.reason {
        case .completed?: return 0
        case .interrupted?: return signals.stopRequested ? 130 : 0  // q in the dashboard is a normal exit
        default:
            FileHandle.standardError.write(Data("gradflow: training failed: \(end?.message ?? "unknown error")\n".utf8))
            return 1
        }
    }

    /// Seconds since start of the last record in an existing run file, so a resumed run's clock
    /// continues from there.
    func lastRecordTime(_ path: String) throws -> Double {
        let reader = try RunFileReader(path: path)
        var t = 0.0
        try reader.forEachRecord { t = max(t, $0.t) }
        return t
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

/// SIGINT and SIGTERM ask for a clean stop once; a second signal exits at once.
final class SignalHandling: @unchecked Sendable {
    private var sources: [DispatchSourceSignal] = []
    private var count = 0
    private let lock = NSLock()

    /// Whether a stop signal has arrived.
    var stopRequested: Bool {
        lock.lock(); defer { lock.unlock() }
        return count > 0
    }

    init(onStop: @escaping @Sendable () -> Void, onForce: @escaping @Sendable () -> Void = { exit(130) }) {
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let src = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            src.setEventHandler { [weak self] in
                guard let self else { return }
                self.lock.lock()
                self.count += 1
                let n = self.count
                self.lock.unlock()
                if n == 1 {
                    FileHandle.standardError.write(Data("\ngradflow: stopping at the end of this step (again to quit at once)\n".utf8))
                    onStop()
                } else {
                    onForce()
                }
            }
            src.resume()
            sources.append(src)
        }
    }

    func cancel() {
        for s in sources { s.cancel() }
        for sig in [SIGINT, SIGTERM] { signal(sig, SIG_DFL) }
    }
}
