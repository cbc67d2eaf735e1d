import Foundation
import Testing
@testable import RunFormat
@testable import Telemetry

@Suite("Run recorder")
struct RecorderTests {
    @Test("records everything the bus carries, and finish drains, syncs and closes")
    func recordsEverything() throws {
        let dir = Fixtures.tempDirectory()
        defer { Fixtures.cleanup(dir) }
        let bus = RecordBus()
        let records = Fixtures.records(steps: 300)
        let recorder = try RunRecorder.create(runDirectory: dir + "/run-a", header: Fixtures.header(), bus: bus)
        for r in records { bus.publish(r) }
        try recorder.finish()
        #expect(recorder.recordsWritten == records.count)
        let (h, back, issues) = try Fixtures.readAll(dir + "/run-a")
        #expect(h == Fixtures.header() && back == records && issues.isEmpty)
    }

    @Test("records reach the file while the run goes on (within the sync interval)")
    func liveFlush() throws {
        let dir = Fixtures.tempDirectory()
        defer { Fixtures.cleanup(dir) }
        let bus = RecordBus()
        let recorder = try RunRecorder.create(runDirectory: dir, header: Fixtures.header(), bus: bus)
        let records = Fixtures.records(steps: 5)
        for r in records.prefix(3) { bus.publish(r) }
        // Wait for the records, not for a window of time (60 s only ends a failing test).
        var seen = 0
        let deadline = Date().addingTimeInterval(60)
        while seen < 3 && Date() < deadline {
            Thread.sleep(forTimeInterval: 0.02)
            seen = (try? Fixtures.readAll(dir).records.count) ?? 0
        }
        #expect(seen == 3)
        try recorder.finish()
    }

    @Test("a second recorder on the same directory is refused")
    func refuseExisting() throws {
        let dir = Fixtures.tempDirectory()
        defer { Fixtures.cleanup(dir) }
        let bus = RecordBus()
        let recorder = try RunRecorder.create(runDirectory: dir, header: Fixtures.header(), bus: bus)
        try recorder.finish()
        #expect(throws: RunFileError.self) { _ = try RunRecorder.create(runDirectory: dir, header: Fixtures.header(), bus: bus) }
    }

    @Test("resuming appends a resume-run event, which every observer also sees once")
    func resume() throws {
        let dir = Fixtures.tempDirectory()
        defer { Fixtures.cleanup(dir) }
        let first = Fixtures.records(steps: 10)
        let bus1 = RecordBus()
        let r1 = try RunRecorder.create(runDirectory: dir, header: Fixtures.header(), bus: bus1)
        for r in first.dropLast() { bus1.publish(r) }
        try r1.finish()

        let bus2 = RecordBus()
        let observer = bus2.subscribe(name: "dashboard")
        let (r2, header) = try RunRecorder.resume(runFile: dir, bus: bus2, step: 9, t: 5)
        #expect(header == Fixtures.header())
        let more = Fixtures.records(steps: 3, seed: 5)
        for r in more { bus2.publish(r) }
        try r2.finish()
        let seen = observer.drain()
        #expect(seen.count == more.count + 1)
        guard case let .event(e) = seen.first else { Issue.record("no event first"); return }
        #expect(e.kind == .resume_run && e.step == 9)
        let (_, back, issues) = try Fixtures.readAll(dir)
        #expect(issues.isEmpty)
        #expect(back == Array(first.dropLast()) + [.event(e)] + more)
    }

    @Test("when the recorder falls behind, the drop count is written as a warning event")
    func dropWarning() throws {
        let dir = Fixtures.tempDirectory()
        defer { Fixtures.cleanup(dir) }
        let bus = RecordBus()
        let path = dir + "/run.jsonl"
        let recorder = RunRecorder(bus: bus, writer: try RunFileWriter.create(path: path, header: Fixtures.header()), capacity: 10)
        // Not started yet: the queue overflows.
        let records = Fixtures.records(steps: 50).filter { if case .step = $0 { return true }; return false }
        for r in records { bus.publish(r) }
        try recorder.finish()
        let (_, back, _) = try Fixtures.readAll(path)
        guard case let .event(e) = back.first else { Issue.record("expected a warning first, got \(back.first as Any)"); return }
        #expect(e.kind == .warning && e.message.contains("40 step records dropped"))
        #expect(back.count == 11)
    }
}
