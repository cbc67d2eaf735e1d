import Foundation
import Testing
@testable import RunFormat
@testable import Telemetry

@Suite("Run file writer and reader")
struct RunFileTests {
    @Test("a written run reads back identically, by file or by run directory")
    func roundTrip() throws {
        let dir = Fixtures.tempDirectory()
        defer { Fixtures.cleanup(dir) }
        let records = Fixtures.records()
        let path = try Fixtures.writeRun(in: dir, records: records)
        for p in [path, dir] {
            let (h, back, issues) = try Fixtures.readAll(p)
            #expect(h == Fixtures.header())
            #expect(back == records)
            #expect(issues.isEmpty)
        }
    }

    @Test("a follower is told once when the file stops growing and no writer holds it, not while one does")
    func followerNoticesAQuietFileWithoutAWriter() throws {
        let dir = Fixtures.tempDirectory()
        defer { Fixtures.cleanup(dir) }
        var records = Fixtures.records(steps: 5)
        records.removeLast()   // no end record: a follower waits for more
        let path = try Fixtures.writeRun(in: dir, records: records)
        // A writer holds the file: no notice within the wait (stopped from outside after 1 s).
        let held = try RunFileWriter.openForAppend(path: path).writer
        let stop = StopFlag()
        let told = StopFlag()
        var follow = RunFileReader.Follow(pollInterval: 0.01, stop: stop, quietAfter: 0.2, onQuiet: { _ in told.set() })
        DispatchQueue.global().asyncAfter(deadline: .now() + 1) { stop.set() }
        var reader = try RunFileReader(path: path, follow: follow)
        while try reader.next() != nil {}
        #expect(!told.isSet, "a writer holds the file: it is not quiet")
        try held.close()
        // Nobody holds it: told once, with the seconds waited; the callback stops the follower.
        let stop2 = StopFlag()
        var waited: [Double] = []
        follow = RunFileReader.Follow(pollInterval: 0.01, stop: stop2, quietAfter: 0.2, onQuiet: { waited.append($0); stop2.set() })
        reader = try RunFileReader(path: path, follow: follow)
        var n = 0
        while try reader.next() != nil { n += 1 }
        #expect(n == records.count && waited.count == 1 && waited[0] >= 0.2, "\(waited)")
    }

    @Test("creating a run file where one exists is refused and leaves it untouched")
    func noOverwrite() throws {
        let dir = Fixtures.tempDirectory()
        defer { Fixtures.cleanup(dir) }
        let path = try Fixtures.writeRun(in: dir)
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        do {
            _ = try RunFileWriter.create(path: path, header: Fixtures.header())
            Issue.record("create overwrote an existing run file")
        } catch let e as RunFileError {
            #expect(e.kind == .alreadyExists)
            #expect(e.description.contains(path) && e.description.contains("never overwrites"))
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before)
    }

    @Test("a file cut at every byte offset of every record type reads back up to its last complete line")
    func truncationAtEveryOffset() throws {
        let dir = Fixtures.tempDirectory()
        defer { Fixtures.cleanup(dir) }
        // One record of each type after a complete one; the file is cut at every byte of the last.
        let all = Fixtures.records(steps: 40, byHead: false)
        var oneOfEach: [Record] = []
        for r in all where !oneOfEach.contains(where: { sameType($0, r) }) { oneOfEach.append(r) }
        #expect(oneOfEach.count == 5)
        var e = RecordEncoder()
        let header = e.encode(Fixtures.header())
        let first = e.encode(all[0])
        let cut = dir + "/cut.jsonl"
        var checked = 0
        for record in oneOfEach {
            let line = e.encode(record)
            for n in 0...line.count {
                try Data(header + first + line[0..<n]).write(to: URL(fileURLWithPath: cut))
                let reader = try RunFileReader(path: cut, chunkBytes: 4096)
                var back: [Record] = []
                try reader.forEachRecord { back.append($0) }
                // Complete: the whole line, with or without its newline.
                let complete = n >= line.count - 1
                #expect(back == (complete ? [all[0], record] : [all[0]]), "cut after \(n) bytes of \(record)")
                let torn = n > 0 && !complete
                #expect(reader.issues.count == (torn ? 1 : 0), "cut after \(n) bytes: \(reader.issues)")
                if torn { #expect(reader.issues[0].kind == .tornLastLine && reader.issues[0].line == 3) }
                checked += 1
            }
        }
        #expect(checked > 1000)
    }

    private func sameType(_ a: Record, _ b: Record) -> Bool {
        switch (a, b) {
        case (.step, .step), (.eval, .eval), (.event, .event), (.checkpoint, .checkpoint), (.end, .end): return true
        default: return false
        }
    }

    @Test("a process killed with SIGKILL while writing leaves a readable file")
    func killedWriter() throws {
        let dir = Fixtures.tempDirectory()
        defer { Fixtures.cleanup(dir) }
        // The child is a shell loop appending whole lines, killed mid-stream; then a torn tail is
        // added the way an interrupted non-atomic writer would leave it.
        let records = Fixtures.records(steps: 40)
        let path = try Fixtures.writeRun(in: dir, records: [])
        var e = RecordEncoder()
        let linesFile = dir + "/lines.txt"
        var all: [UInt8] = []
        for _ in 0..<200 { for r in records { all += e.encode(r) } }
        try Data(all).write(to: URL(fileURLWithPath: linesFile))
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", "while IFS= read -r l; do printf '%s\\n' \"$l\" >> '\(path)'; done < '\(linesFile)'"]
        let headerBytes = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        try p.run()
        // Kill it once it has appended a few lines (whatever the machine's speed; 60 s is a backstop).
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline,
              ((try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0) < headerBytes + 2_000 {
            Thread.sleep(forTimeInterval: 0.01)
        }
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        let h = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        h.seekToEndOfFile()
        h.write(Data(e.encode(records[0]).prefix(37)))
        try h.close()
        let (_, back, issues) = try Fixtures.readAll(path)
        #expect(back.count > 0)
        for (i, r) in back.enumerated() { #expect(r == records[i % records.count]) }
        #expect(issues.count == 1 && issues.first?.kind == .tornLastLine)
    }

    @Test("bad lines in the middle are reported with their line number and reading continues")
    func badLinesInTheMiddle() throws {
        let dir = Fixtures.tempDirectory()
        defer { Fixtures.cleanup(dir) }
        let records = Fixtures.records(steps: 5)
        let path = try Fixtures.writeRun(in: dir, records: records)
        var lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        lines.insert("{\"type\":\"step\",\"step\":", at: 2)     // line 3
        lines.insert("", at: 5)                                  // line 6
        lines.insert("garbage", at: 7)                           // line 8
        try lines.joined(separator: "\n").write(toFile: path, atomically: false, encoding: .utf8)
        var notices: [ReadIssue] = []
        let reader = try RunFileReader(path: path)
        reader.onIssue = { notices.append($0) }
        var back: [Record] = []
        try reader.forEachRecord { back.append($0) }
        #expect(back == records)
        #expect(notices.map(\.line) == [3, 6, 8])
        #expect(notices.allSatisfy { $0.kind == .badLine })
        #expect(notices[0].description.contains("run.jsonl:3:"))
        #expect(notices[1].message == "empty line")
    }

    @Test("fatal problems name the file (and line)")
    func fatalErrors() throws {
        let dir = Fixtures.tempDirectory()
        defer { Fixtures.cleanup(dir) }
        func error(_ path: String) -> RunFileError? {
            do { _ = try RunFileReader(path: path); return nil } catch { return error as? RunFileError }
        }
        #expect(error(dir + "/missing.jsonl")?.kind == .notFound)
        let e1 = error(dir)
        #expect(e1?.kind == .noRunFileInDirectory && e1!.description.contains("without run.jsonl"))
        let empty = dir + "/empty.jsonl"
        _ = FileManager.default.createFile(atPath: empty, contents: Data())
        #expect(error(empty)?.kind == .notARunFile)
        let csv = dir + "/data.csv"
        try "step,loss\n1,2\n".write(toFile: csv, atomically: true, encoding: .utf8)
        let e2 = error(csv)
        #expect(e2?.kind == .notARunFile && e2?.line == 1 && e2!.description.hasPrefix(csv + ":1:"))
        let other = dir + "/other.jsonl"
        try "{\"schema\":\"other/1\"}\n".write(toFile: other, atomically: true, encoding: .utf8)
        #expect(error(other)?.kind == .notARunFile)
        var h = Fixtures.header()
        h.schema = "gradflow.run/2"
        let future = dir + "/future.jsonl"
        _ = try RunFileWriter.create(path: future, header: h)
        let e3 = error(future)
        #expect(e3?.kind == .unsupportedSchema && e3!.description.contains("major version 2"))
        let bad = dir + "/bad.jsonl"
        try "{\"schema\":\"gradflow.run/1\",\"run_name\":3}\n".write(toFile: bad, atomically: true, encoding: .utf8)
        #expect(error(bad)?.kind == .invalidHeader)
        if geteuid() != 0 {  // root reads anything
            let locked = try Fixtures.writeRun(in: Fixtures.tempDirectory())
            chmod(locked, 0)
            #expect(error(locked)?.kind == .permissionDenied)
        }
        #expect(RunFileError.system("open", path: "/x", errno: EACCES).kind == .permissionDenied)
    }

    @Test("appending to an existing run continues after a torn line without gluing onto it")
    func resumeAfterTornLine() throws {
        let dir = Fixtures.tempDirectory()
        defer { Fixtures.cleanup(dir) }
        let records = Fixtures.records(steps: 5)
        let path = try Fixtures.writeRun(in: dir, records: records)
        let h = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        h.seekToEndOfFile()
        h.write("{\"type\":\"step\",\"st".data(using: .utf8)!)
        try h.close()
        let (writer, header) = try RunFileWriter.openForAppend(path: path)
        #expect(header == Fixtures.header())
        let more = Fixtures.records(steps: 3, seed: 9)
        for r in more { try writer.append(r) }
        try writer.close()
        let (_, back, issues) = try Fixtures.readAll(path)
        #expect(back == records + more)
        #expect(issues.count == 1 && issues[0].kind == .badLine)
    }

    @Test("a second writer of a run is refused while the first holds it, and nothing it would write lands")
    func secondWriterRefused() throws {
        let dir = Fixtures.tempDirectory()
        defer { Fixtures.cleanup(dir) }
        let path = dir + "/run.jsonl"
        let first = try RunFileWriter.create(path: path, header: Fixtures.header())
        #expect(RunFileWriter.isBeingWritten(path: path))
        #expect(throws: RunFileError.self) { _ = try RunFileWriter.openForAppend(path: path) }
        do { _ = try RunFileWriter.openForAppend(path: path) } catch let e as RunFileError {
            #expect(e.kind == .lockedByAnotherWriter && e.description.contains("this run file is locked by a process writing the run"))
        }
        let records = Fixtures.records(steps: 2)
        for r in records { try first.append(r) }
        try first.close()
        #expect(!RunFileWriter.isBeingWritten(path: path))
        let (second, _) = try RunFileWriter.openForAppend(path: path)
        try second.close()
        let (_, back, issues) = try Fixtures.readAll(path)
        #expect(back == records && issues.isEmpty)
    }

    @Test("lines longer than the limit are skipped and reported; memory stays bounded")
    func longLines() throws {
        let dir = Fixtures.tempDirectory()
        defer { Fixtures.cleanup(dir) }
        let records = Fixtures.records(steps: 3)
        let path = try Fixtures.writeRun(in: dir, records: records)
        var text = try String(contentsOfFile: path, encoding: .utf8)
        text += "{\"type\":\"event\",\"x\":\"" + String(repeating: "y", count: 300_000) + "\"}\n"
        text += String(decoding: RecordEncoder().encodeCopy(records[0]), as: UTF8.self)
        try text.write(toFile: path, atomically: false, encoding: .utf8)
        let reader = try RunFileReader(path: path, chunkBytes: 4096, maxLineBytes: 65536)
        var back: [Record] = []
        try reader.forEachRecord { back.append($0) }
        #expect(back == records + [records[0]])
        #expect(reader.issues.count == 1 && reader.issues[0].line == records.count + 2)
        #expect(reader.issues[0].message.contains("exceeds"))
    }

    @Test("follow mode reads a file while another thread writes it, until the end record")
    func follow() throws {
        let dir = Fixtures.tempDirectory()
        defer { Fixtures.cleanup(dir) }
        let records = Fixtures.records(steps: 60)
        let path = dir + "/run.jsonl"
        let writer = try RunFileWriter.create(path: path, header: Fixtures.header())
        let writerThread = Thread {
            for (i, r) in records.enumerated() {
                try? writer.append(r)
                if i % 10 == 0 { Thread.sleep(forTimeInterval: 0.01) }
            }
            try? writer.close()
        }
        let reader = try RunFileReader(path: path, follow: .init(pollInterval: 0.005))
        writerThread.start()
        #expect(try Self.readFollowing(reader) == records)
    }

    /// Every record a following reader returns until it stops (at most 20 s).
    static func readFollowing(_ reader: RunFileReader) throws -> [Record] {
        var back: [Record] = []
        let start = Date()
        while let r = try reader.next() {
            back.append(r)
            if Date().timeIntervalSince(start) > 20 { break }
        }
        return back
    }

    @Test("follow mode reads past an end record that a resumed session follows, and stops at the last end")
    func followAcrossAResume() throws {
        let dir = Fixtures.tempDirectory()
        defer { Fixtures.cleanup(dir) }
        let first = Fixtures.records(steps: 5)
        guard case .end? = first.last else { Issue.record("the fixture ends with an end record"); return }
        let resumed = Record.event(EventRecord(step: 3, t: 9, kind: .resume_run, source: .trainer, message: "resumed from step 3"))
        let second = Array(Fixtures.records(steps: 6, seed: 4).dropFirst(3))
        let path = try Fixtures.writeRun(in: dir, records: first + [resumed] + second.prefix(1))
        let reader = try RunFileReader(path: path, follow: .init(pollInterval: 0.005))
        let writerThread = Thread {
            Thread.sleep(forTimeInterval: 0.05)
            guard let (writer, _) = try? RunFileWriter.openForAppend(path: path) else { return }
            for r in second.dropFirst() { try? writer.append(r) }
            try? writer.close()
        }
        writerThread.start()
        #expect(try Self.readFollowing(reader) == first + [resumed] + second)
    }

    @Test("follow past the end: a run that ended is followed into a session resumed later, until asked to stop")
    func followPastTheEnd() throws {
        let dir = Fixtures.tempDirectory()
        defer { Fixtures.cleanup(dir) }
        let first = Fixtures.records(steps: 5)
        let resumed = Record.event(EventRecord(step: 3, t: 9, kind: .resume_run, source: .trainer, message: "resumed from step 3"))
        let second = Array(Fixtures.records(steps: 6, seed: 4).dropFirst(3))
        let path = try Fixtures.writeRun(in: dir, records: first)
        let stop = StopFlag()
        var quiet = false
        let reader = try RunFileReader(path: path, follow: .init(pollInterval: 0.005, stop: stop, quietAfter: 0.05, pastEnd: true,
                                                                 onQuiet: { _ in quiet = true }))
        let writerThread = Thread {
            Thread.sleep(forTimeInterval: 0.3)   // the first session's end record stays the last line a while
            guard let (writer, _) = try? RunFileWriter.openForAppend(path: path) else { return }
            for r in [resumed] + second { try? writer.append(r) }
            try? writer.close()
            Thread.sleep(forTimeInterval: 0.1)
            stop.set()
        }
        writerThread.start()
        #expect(try Self.readFollowing(reader) == first + [resumed] + second)
        #expect(!quiet, "an ended run is not called silent")
    }

    @Test("a fragment that a resumed session follows is recovery: told as such, not counted as a bad line")
    func recoveredFragmentIsNotABadLine() throws {
        let dir = Fixtures.tempDirectory()
        defer { Fixtures.cleanup(dir) }
        let first = Array(Fixtures.records(steps: 5).dropLast())
        let path = try Fixtures.writeRun(in: dir, records: first)
        let resumed = Record.event(EventRecord(step: 3, t: 9, kind: .resume_run, source: .trainer, message: "resumed from step 3"))
        let tail = #"{"type":"step","st"# + "\n{not json}\n" + #"{"type":"step","st"# + "\n"
            + String(decoding: RecordEncoder().encodeLine(resumed), as: UTF8.self)
        let handle = try #require(FileHandle(forWritingAtPath: path))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(tail.utf8))
        try handle.close()
        let reader = try RunFileReader(path: path)
        var kinds: [ReadIssue.Kind] = []
        reader.onIssue = { kinds.append($0.kind) }
        var records: [Record] = []
        while let r = try reader.next() { records.append(r) }
        #expect(records == first + [resumed])
        #expect(kinds == [.badLine, .badLine, .recoveredFragment], "only the line just before the resume is its fragment")
        #expect(reader.issueCount == 2 && reader.issues.count == 2)
    }

    @Test("follow mode stops when asked, even with no end record")
    func followStop() throws {
        let dir = Fixtures.tempDirectory()
        defer { Fixtures.cleanup(dir) }
        let records = Array(Fixtures.records(steps: 3).dropLast())
        let path = try Fixtures.writeRun(in: dir, records: records)
        let stop = StopFlag()
        let reader = try RunFileReader(path: path, follow: .init(pollInterval: 0.005, stop: stop))
        var count = 0
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.2) { stop.set() }
        let start = Date()
        while try reader.next() != nil { count += 1 }
        #expect(count == records.count)
        #expect(Date().timeIntervalSince(start) < 5)
    }
}

extension RecordEncoder {
    /// Test helper: one encoded line from a fresh encoder.
    func encodeCopy(_ r: Record) -> [UInt8] {
        var e = RecordEncoder()
        return e.encode(r)
    }
}
