import RunFormat
import Foundation

/// Writes what the bus carries to the run file, on its own thread.
///
/// The trainer publishes and never waits; the recorder's subscription holds up to `capacity`
/// records (a write(2) per record keeps it far ahead of any trainer, but if the disk stalls long
/// enough for step records to be dropped, the recorder writes a `warning` event saying how many).
/// It fsyncs at least once a second and after every checkpoint and end record. `finish()` drains
/// everything published so far, fsyncs and closes.
public final class RunRecorder: @unchecked Sendable {
    public let path: String
    private let bus: RecordBus
    private let subscription: BusSubscription
    private let writer: RunFileWriter
    private let stop = StopFlag()
    private let done = DispatchSemaphore(value: 0)
    private var thread: Thread?
    private let lock = NSLock()
    private var failure: Error?
    private var failureHandler: (@Sendable (Error) -> Void)?
    private var written = 0
    private var reportedDrops = 0
    private var lastStep = 0, lastT = 0.0
    /// Seconds between fsyncs while records keep coming.
    public let syncInterval: Double

    /// Records onto `writer` what `bus` carries from now on.
    public init(bus: RecordBus, writer: RunFileWriter, capacity: Int = 1 << 16, syncInterval: Double = 1.0) {
        self.bus = bus
        self.writer = writer
        self.path = writer.path
        self.syncInterval = syncInterval
        subscription = bus.subscribe(name: "recorder", capacity: capacity)
    }

    /// A recorder for a new run: creates `runDirectory` if needed and `run.jsonl` inside it
    /// (refusing an existing one), writes the header, and starts recording.
    public static func create(runDirectory: String, header: RunHeader, bus: RecordBus) throws -> RunRecorder {
        do {
            try FileManager.default.createDirectory(atPath: runDirectory, withIntermediateDirectories: true)
        } catch {
            throw RunFileError(.io, path: runDirectory, "cannot create the run directory: \(error.localizedDescription)")
        }
        let path = RunFileLocation.file(in: runDirectory)
        let recorder = RunRecorder(bus: bus, writer: try RunFileWriter.create(path: path, header: header))
        recorder.start()
        return recorder
    }

    /// A recorder for a resumed run: opens the existing run file (a run directory or the file) for
    /// append, starts recording, and publishes a `resume-run` event at `step` on the bus, so the file
    /// and every observer see it once. Subscribe other observers before calling this if they should
    /// see the event. Returns the recorder and the existing file's header.
    public static func resume(runFile: String, bus: RecordBus, step: Int, t: Double,
                              message: String = "") throws -> (recorder: RunRecorder, header: RunHeader) {
        let path = try RunFileLocation.resolve(runFile)
        let (writer, header) = try RunFileWriter.openForAppend(path: path)
        let recorder = RunRecorder(bus: bus, writer: writer)
        recorder.start()
        bus.publish(.event(EventRecord(step: step, t: t, kind: .resume_run, source: .trainer,
                                       message: message.isEmpty ? "resumed from step \(step)" : message)))
        return (recorder, header)
    }

    /// Starts the recording thread (once).
    public func start() {
        lock.lock(); defer { lock.unlock() }
        guard thread == nil else { return }
        let t = Thread { [self] in run() }
        t.name = "gradflow.recorder"
        thread = t
        t.start()
    }

    /// Calls `handler` once, on the recording thread, with the first write error (at once if one
    /// was already met): a trainer stops then, instead of training for hours unrecorded (a full
    /// disk). The records after the error are not written.
    public func onFailure(_ handler: @escaping @Sendable (Error) -> Void) {
        lock.lock()
        let already = failure
        if already == nil { failureHandler = handler }
        lock.unlock()
        if let already { handler(already) }
    }

    /// Records written so far.
    public var recordsWritten: Int {
        lock.lock(); defer { lock.unlock() }
        return written
    }

    /// Writes everything published before this call, fsyncs and closes the file. Throws the first
    /// write error met while recording, if any.
    public func finish() throws {
        start()
        stop.set()
        done.wait()
        bus.unsubscribe(subscription)
        lock.lock()
        let error = failure
        lock.unlock()
        if let error { throw error }
    }

    private func run() {
        var lastSync = Date()
        var dirty = false
        while true {
            let stopping = stop.isSet
            // After stop is set, everything already enqueued is drained without waiting.
            let batch = stopping ? subscription.drain() : subscription.wait(timeout: 0.2, max: 4096)
            if batch.isEmpty && (stopping || subscription.isFinished) { break }
            var mustSync = false
            for record in batch {
                guard failure == nil else { break }
                writeDropWarning(before: record)
                do {
                    try writer.append(record)
                    dirty = true
                    lastStep = record.step
                    lastT = record.t
                    lock.lock(); written += 1; lock.unlock()
                    switch record {
                    case .checkpoint, .end: mustSync = true
                    default: break
                    }
                } catch {
                    fail(error)
                }
            }
            if dirty && (mustSync || Date().timeIntervalSince(lastSync) >= syncInterval) {
                do { try writer.sync() } catch { fail(error) }
                lastSync = Date()
                dirty = false
            }
        }
        writeDropWarning(before: nil)
        do { try writer.close() } catch { fail(error) }
        done.signal()
    }

    /// If the subscription dropped step records since the last check, records a warning event.
    private func writeDropWarning(before record: Record?) {
        let dropped = subscription.dropped
        guard dropped > reportedDrops, failure == nil else { return }
        let step = record?.step ?? lastStep
        let t = record?.t ?? lastT
        let event = EventRecord(step: step, t: t, kind: .warning, source: .recorder,
                                message: "recorder fell behind: \(dropped - reportedDrops) step records dropped")
        reportedDrops = dropped
        do { try writer.append(.event(event)) } catch { fail(error) }
    }

    private func fail(_ error: Error) {
        lock.lock()
        let first = failure == nil
        if first { failure = error }
        let handler = first ? failureHandler : nil
        failureHandler = first ? nil : failureHandler
        lock.unlock()
        handler?(error)
    }
}
