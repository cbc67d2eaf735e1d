import Foundation
import Testing
@testable import RunFormat
@testable import Telemetry

@Suite("Run catalog and run-file additions (samples, parent)")
struct RunCatalogTests {
    /// Writes a run file from a header and records.
    func write(_ dir: URL, _ name: String, header: RunHeader, records: [Record], tail: String = "",
               modified: Date? = nil) throws {
        let folder = dir.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        var e = RecordEncoder()
        var bytes = e.encode(header)
        for r in records { bytes += e.encode(r) }
        bytes += Array(tail.utf8)
        let file = folder.appendingPathComponent("run.jsonl")
        try Data(bytes).write(to: file)
        if let modified { try FileManager.default.setAttributes([.modificationDate: modified], ofItemAtPath: file.path) }
    }

    func steps(_ n: Int) -> [Record] {
        (0..<n).map { .step(StepRecord(step: $0, t: Double($0), loss: 3 - Double($0) * 0.1, learningRate: 1e-3, gradNorm: 1,
                                        clipScale: 1, tokensPerSecond: 100, stepMilliseconds: 10)) }
    }

    func eval(_ step: Int, _ loss: Double) -> Record {
        .eval(EvalRecord(step: step, t: Double(step), domains: [DomainEval(name: "val:x", loss: loss)]))
    }

    @Test("runs lists finished, interrupted, live, damaged, failed, forked and foreign folders without failing")
    func catalog() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gradflow-runs-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let old = Date(timeIntervalSinceNow: -3600)
        try write(dir, "a-finished", header: Fixtures.header(totalSteps: 10, name: "a-finished"),
                  records: steps(10) + [eval(5, 2.5), eval(10, 2.7),
                                        .end(EndRecord(step: 10, t: 10, reason: .completed, finalLoss: 2.1, bestValidationLoss: 2.5))],
                  modified: old)
        try write(dir, "b-interrupted", header: Fixtures.header(totalSteps: 10), records: steps(4) + [eval(3, 2.9)],
                  tail: #"{"type":"step","st"#, modified: old)
        try write(dir, "c-live", header: Fixtures.header(totalSteps: 10), records: steps(2))
        try write(dir, "d-failed", header: Fixtures.header(totalSteps: 10),
                  records: steps(1) + [.end(EndRecord(step: 1, t: 1, reason: .failed, finalLoss: nil, bestValidationLoss: nil, message: "loss became nan"))])
        var forked = Fixtures.header(totalSteps: 10, name: "e-fork")
        forked.parent = RunParent(run: "a-finished", step: 5, checkpoint: "runs/a-finished/ckpt-000005.gfck")
        try write(dir, "e-fork", header: forked, records: steps(3), modified: old)
        try write(dir, "f-bad-line", header: Fixtures.header(totalSteps: 10), records: steps(2),
                  tail: "{not json}\n" + String(decoding: RecordEncoder().encodeLine(steps(3)[2]), as: UTF8.self), modified: old)
        let damaged = dir.appendingPathComponent("g-damaged")
        try FileManager.default.createDirectory(at: damaged, withIntermediateDirectories: true)
        try Data("this is not a run\n".utf8).write(to: damaged.appendingPathComponent("run.jsonl"))
        let foreign = dir.appendingPathComponent("h-photos")
        try FileManager.default.createDirectory(at: foreign, withIntermediateDirectories: true)
        try Data([0xFF, 0xD8]).write(to: foreign.appendingPathComponent("cat.jpg"))
        try Data("loose file".utf8).write(to: dir.appendingPathComponent("notes.txt"))
        // Killed mid-line, then resumed: the fragment before the resume is recovery, not damage.
        let resumed = [Record.event(EventRecord(step: 2, t: 5, kind: .resume_run, source: .trainer, message: "resumed from step 2")),
                       .end(EndRecord(step: 2, t: 6, reason: .interrupted, finalLoss: nil, bestValidationLoss: nil))]
        try write(dir, "j-recovered", header: Fixtures.header(totalSteps: 10), records: steps(3),
                  tail: #"{"type":"step","st"# + "\n" + resumed.map { String(decoding: RecordEncoder().encodeLine($0), as: UTF8.self) }.joined(),
                  modified: old)
        // A pipe where the run file should be: listed as damaged, never waited on.
        let piped = dir.appendingPathComponent("i-pipe")
        try FileManager.default.createDirectory(at: piped, withIntermediateDirectories: true)
        #expect(mkfifo(piped.appendingPathComponent("run.jsonl").path, 0o600) == 0)

        let entries = try RunCatalog.scan(dir.path)
        #expect(entries.map(\.name) == ["a-finished", "b-interrupted", "c-live", "d-failed", "e-fork", "f-bad-line", "g-damaged", "h-photos",
                                        "i-pipe", "j-recovered"])
        let byName = Dictionary(uniqueKeysWithValues: entries.map { ($0.name, $0) })
        #expect(byName["a-finished"]?.state == .finished)
        #expect(byName["a-finished"]?.stepsDone == 10)
        #expect(byName["a-finished"]?.totalSteps == 10)
        #expect(byName["a-finished"]?.finalValidation == 2.7)
        #expect(byName["a-finished"]?.bestValidation == 2.5)
        #expect(byName["a-finished"]?.preset == "S")
        #expect(byName["a-finished"]?.startTime == Fixtures.header().startTime)
        #expect(byName["b-interrupted"]?.state == .interrupted)
        #expect(byName["b-interrupted"]?.stepsDone == 4)
        #expect(byName["c-live"]?.state == .live)
        #expect(byName["d-failed"]?.state == .failed)
        #expect(byName["d-failed"]?.note == "loss became nan")
        #expect(byName["e-fork"]?.parent == RunParent(run: "a-finished", step: 5, checkpoint: "runs/a-finished/ckpt-000005.gfck"))
        #expect(byName["e-fork"]?.state == .interrupted)
        #expect(byName["f-bad-line"]?.state == .damaged)
        #expect(byName["f-bad-line"]?.note == "1 bad line skipped")
        #expect(byName["f-bad-line"]?.stepsDone == 3, "a damaged run still shows what could be read")
        #expect(byName["g-damaged"]?.state == .damaged)
        #expect(byName["g-damaged"]?.note?.contains("not a gradflow run file") == true)
        // A run not written to for long whose writer still holds the file's lock (a long
        // evaluation) is live, not interrupted.
        let held = dir.appendingPathComponent("e-fork/run.jsonl").path
        let quietButHeld = try RunFileWriter.openForAppend(path: held).writer
        #expect(RunFileLocation.secondsSinceModified(held).map { $0 > RunCatalog.liveWindow } == true, "still old")
        #expect(try RunCatalog.scan(dir.path).first { $0.name == "e-fork" }?.state == .live)
        try quietButHeld.close()
        #expect(byName["h-photos"]?.state == .notARun)
        #expect(byName["j-recovered"]?.state == .interrupted && byName["j-recovered"]?.note == nil, "\(String(describing: byName["j-recovered"]))")
        #expect(byName["i-pipe"]?.state == .damaged && byName["i-pipe"]?.note?.contains("is not a regular file") == true)
        #expect(byName["h-photos"]?.preset == nil)
        #expect(throws: RunFileError.self) { try RunCatalog.scan(dir.appendingPathComponent("missing").path) }
        // A run folder given itself lists that run; a file is said to be one.
        #expect(try RunCatalog.scan(dir.appendingPathComponent("a-finished").path).map(\.name) == ["a-finished"])
        do {
            _ = try RunCatalog.scan(dir.appendingPathComponent("notes.txt").path)
            Issue.record("a file was listed as a folder of runs")
        } catch let e as RunFileError {
            #expect(e.description.contains("is a file, not a folder of runs"))
        }
    }

    @Test("an eval record's sample and a header's parent round-trip; older lines have neither")
    func additions() throws {
        var h = Fixtures.header()
        h.parent = RunParent(run: "base \"run\"", step: 1200, checkpoint: "runs/base/ckpt-001200.gfck")
        var e = RecordEncoder()
        let headerLine = e.encode(h)
        #expect(try HeaderDecoder.header(Array(headerLine.dropLast())) == h)
        #expect(try HeaderDecoder.header(Array(e.encode(Fixtures.header()).dropLast())).parent == nil)
        let r = EvalRecord(step: 200, t: 3, domains: [DomainEval(name: "val:x", loss: 2)], samplePrompt: "\n",
                           sample: "ROMEO:\nO \"love\"\t\u{1}é")
        let text = String(decoding: e.encode(.eval(r)), as: UTF8.self)
        #expect(text.contains(#""sample_prompt":"\n","sample":"ROMEO:\nO \"love\"\t\u0001é""#))
        #expect(try RecordDecoder.record(Array(text.utf8.dropLast())) == .eval(r))
        let older = #"{"type":"eval","step":200,"t":3,"domains":[{"name":"val:x","loss":2,"bpb":2.88}],"loss_by_position":[],"context_gain":[]}"#
        guard case let .eval(back) = try RecordDecoder.record(Array(older.utf8)) else { Issue.record("not an eval"); return }
        #expect(back.sample == nil && back.samplePrompt == nil)
    }
}

extension RecordEncoder {
    /// One record's line, for a test that appends it by hand.
    func encodeLine(_ r: Record) -> [UInt8] {
        var e = self
        return e.encode(r)
    }
}

@Suite("Recording extent")
struct RecordingExtentTests {
    @Test("the last complete record's step, skipping a torn last line; nil for no records")
    func lastStep() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gradflow-extent-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("run.jsonl")
        var e = RecordEncoder()
        var bytes = e.encode(Fixtures.header())
        try Data(bytes).write(to: file)
        #expect(RecordingExtent.lastStep(path: dir.path) == nil)
        var rng = TestRNG(seed: 1)
        for i in 0..<3000 { bytes += e.encode(.step(Fixtures.step(i, rng: &rng))) }
        bytes += Array(#"{"type":"step","step":3000,"t":1"#.utf8)
        try Data(bytes).write(to: file)
        #expect(RecordingExtent.lastStep(path: file.path) == 3000, "step record 2999 means 3,000 steps recorded")
        bytes += Array(",\n".utf8) + e.encode(.eval(EvalRecord(step: 3000, t: 9, domains: [])))
        try Data(bytes).write(to: file)
        #expect(RecordingExtent.lastStep(path: dir.path) == 3000)
        #expect(RecordingExtent.lastStep(path: dir.appendingPathComponent("none").path) == nil)
    }
}
