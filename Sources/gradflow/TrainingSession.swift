import Dispatch
import Foundation
import Telemetry
import Training

/// Runs one training session: the trainer on its own thread, the recorder and the display on
/// the bus, and the signal handling that turns Ctrl-C / SIGTERM into a clean stop.
struct TrainingSession {
    let setup: TrainingSetup
    let display: DisplayOptions

    /// Returns the process exit status: 0 completed, 130 interrupted, 1 failed.
    func run() throws -> Int32 {
        let bus = RecordBus()
        var timeOffset = 0.0
        if let ckpt = setup.resume {
            let runFile = (setup.runDirectory as NSString).appendingPathComponent("run.jsonl")
            timeOffset = (try? lastRecordTime(runFile)) ?? 0
            _ = ckpt
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
        let header = trainer.header(runName: runName)
        bus.publishHeader(header)
        let printer = bus.subscribe(name: "progress", capacity: 1 << 16)
        let recorder: RunRecorder
        if setup.resume != nil {
            recorder = try RunRecorder.resume(runFile: setup.runDirectory, bus: bus, step: trainer.step,
                                              t: timeOffset).recorder
        } else {
            recorder = try RunRecorder.create(runDirectory: setup.runDirectory, header: header, bus: bus)
        }
        let signals = SignalHandling { trainer.requestStop() }
        let done = DispatchSemaphore(value: 0)
        var end: EndRecord?
        let thread = Thread {
            end = trainer.run()
            bus.close()
            done.signal()
        }
        thread.name = "gradflow.trainer"
        thread.stackSize = 8 << 20
        thread.start()
        PlainProgress(header: header, reportEvery: display.reportEvery).follow(printer)
        done.wait()
        signals.cancel()
        do { try recorder.finish() } catch { FileHandle.standardError.write(Data("gradflow: run file: \(error)\n".utf8)) }
        let runFile = (setup.runDirectory as NSString).appendingPathComponent("run.jsonl")
        print("run file: \(runFile)")
        switch end?.reason {
        case .completed?: return 0
        case .interrupted?: return 130
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
