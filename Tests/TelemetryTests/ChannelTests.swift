import Foundation
import Refinement
import Testing
@testable import RunFormat
@testable import Telemetry

/// The command channel's lines (docs/FORMAT.md, "The command channel") and its reader.
@Suite struct ChannelTests {
    static let actions: [Command.Action] = [
        .setWeight(WeightTarget(axis: .context, band: 2), 1.5),
        .setWeight(WeightTarget(axis: .context, band: 0, layer: 3), 0.25),
        .setAdaptive(.depth, true), .setAdaptive(.time, false),
        .setTarget(band: 1, share: 0.3), .scaleLearningRate(0.5),
        .pause, .resume, .checkpointNow, .stop, .openTwin, .revert,
    ]

    @Test func everyCommandRoundTrips() throws {
        for (i, action) in Self.actions.enumerated() {
            let line = ChannelLine(id: "id-\(i)", run: "abc", issuer: CommandIssuer(user: "ana", host: "h", pid: 42),
                                   t: 1_796_600_000.25, action: action)
            let bytes = line.encoded()
            #expect(bytes.last == 0x0A && bytes.dropLast().allSatisfy { $0 != 0x0A })
            #expect(try ChannelLine.decode(Array(bytes.dropLast())) == line)
        }
    }

    @Test func problemsNameWhatIsWrongAndKeepTheId() {
        func problem(_ text: String) -> ChannelLine.Problem? {
            do { _ = try ChannelLine.decode(Array(text.utf8)); return nil } catch { return error as? ChannelLine.Problem }
        }
        #expect(problem("garbage")?.message.hasPrefix("not a command") == true)
        #expect(problem(#"{"id":"a","run":"r","issuer":{"user":"u","host":"h","pid":1},"t":1,"command":"warp"}"#)?.message.contains("unknown command \"warp\"") == true)
        #expect(problem(#"{"id":"a","run":"r","issuer":{"user":"u","host":"h","pid":1},"t":1,"command":"warp"}"#)?.id == "a")
        #expect(problem(#"{"id":"a","run":"r","issuer":{"user":"u","host":"h","pid":1},"t":1,"command":"set_weight","axis":"context","band":1}"#)?.message == "set_weight needs \"value\"")
        #expect(problem(#"{"id":"a","run":"r","issuer":{"user":"u","host":"h","pid":1},"t":1,"command":"lr_scale","value":-1}"#)?.message.contains("above 0") == true)
        #expect(problem(#"{"id":"a","run":"r","issuer":{"user":"u","host":"h","pid":1},"t":1,"command":"lr_scale","value":1e300}"#)?.message.contains("at most 1000") == true)
        #expect(problem(#"{"id":"a","run":"r","issuer":{"user":"u","host":"h","pid":1},"t":1,"command":"lr_scale","value":1000}"#) == nil)
        #expect(problem(#"{"id":"","run":"r","issuer":{"user":"u","host":"h","pid":1},"t":1,"command":"stop"}"#)?.id == nil)
        #expect(problem(#"{"run":"r","command":"stop"}"#)?.message.contains("lacks member \"id\"") == true)
        #expect(problem(#"{"id":"a","run":"r","issuer":{"user":"u","host":"h","pid":1},"t":1,"command":"lr_scale","value":"abc"}"#)?
            .message.hasPrefix("not a command: \"value\": ") == true, "the member whose value is wrong is named")
        // Who sent it and when are part of every command (docs/FORMAT.md), as the Python reader requires.
        #expect(problem(#"{"id":"a","run":"r","t":1,"command":"stop"}"#)?.message.contains("lacks member \"issuer\"") == true)
        #expect(problem(#"{"id":"a","run":"r","issuer":{"user":"u","host":"h","pid":1},"command":"stop"}"#)?.message.contains("lacks member \"t\"") == true)
        #expect(problem(#"{"id":"a","run":"r","issuer":{"user":"u","pid":1},"t":1,"command":"stop"}"#)?.message.contains("lacks member \"host\"") == true)
        #expect(problem(#"{"id":"a","run":"r","issuer":{"user":"u","host":"h","pid":1},"t":1,"command":"stop"} x"#)?.message.hasPrefix("not a command") == true)
    }

    /// Random bytes never trap the decoder: every line is a command or a problem.
    @Test func randomBytesAreProblemsNotCrashes() {
        var rng = SystemRandomNumberGenerator()
        let pieces = Array(#"{"id":"run":"command":"set_weight""stop"[]{},:0.5e9-truenull\"#.utf8)
        for _ in 0..<3000 {
            let n = Int.random(in: 0..<80, using: &rng)
            let bytes: [UInt8] = (0..<n).map { _ in
                Bool.random(using: &rng) ? pieces.randomElement(using: &rng)! : UInt8.random(in: 0...255, using: &rng)
            }
            _ = try? ChannelLine.decode(bytes)
        }
    }

    @Test("a send the disk refuses says why, naming the channel file")
    func sendReportsAFailedWrite() throws {
        let dir = NSTemporaryDirectory() + "gradflow-channel-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = CommandChannel.path(runDirectory: dir)
        try FileManager.default.createSymbolicLink(atPath: path, withDestinationPath: "/dev/full")
        let writer = try CommandChannelWriter(runDirectory: dir, runId: "r1")
        let problem = writer.send(Command(.pause, source: .attach, id: "c1"))
        #expect(problem == "\(path): write failed: \(String(cString: strerror(ENOSPC)))")
    }

    @Test func readerTakesWholeLinesOnlyAndIsPrivate() throws {
        let dir = NSTemporaryDirectory() + "gradflow-channel-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let reader = try CommandChannelReader(runDirectory: dir)
        let mode = (try FileManager.default.attributesOfItem(atPath: reader.path)[.posixPermissions] as? Int) ?? 0
        #expect(mode == 0o600)
        #expect(reader.poll().isEmpty)
        let writer = try CommandChannelWriter(runDirectory: dir, runId: "r1")
        writer.send(Command(.pause, source: .attach, id: "c1"))
        let handle = try #require(FileHandle(forWritingAtPath: reader.path))
        handle.seekToEndOfFile()
        handle.write(Data(#"{"id":"c2","run":"r1","issuer":{"user":"u","host":"h","pid":1},"t":1,"comm"#.utf8))  // torn: waits
        let first = reader.poll()
        #expect(first.count == 1 && first[0].line == 1)
        #expect(try first[0].result.get().action == .pause && first[0].result.get().run == "r1")
        #expect(reader.poll().isEmpty)
        handle.write(Data("and\":\"stop\"}\nnot json\n".utf8))
        let second = reader.poll()
        #expect(second.map(\.line) == [2, 3])
        #expect(try second[0].result.get() == ChannelLine(id: "c2", run: "r1", issuer: CommandIssuer(user: "u", host: "h", pid: 1),
                                                          t: 1, action: .stop))
        if case .success = second[1].result { Issue.record("a bad line decoded") }
        try handle.close()
        // A file others may write is not read, and the refusal is reported once.
        chmod(reader.path, 0o666)
        writer.send(Command(.stop, source: .attach, id: "c3"))
        #expect(reader.poll().isEmpty)
        #expect(reader.takeRefusal()?.contains("writable by others") == true)
        #expect(reader.takeRefusal() == nil)
    }

    @Test("a sender does not glue its line onto a dead sender's fragment, and follows the path to a new file")
    func senderAfterAFragmentAndAReplacement() throws {
        let dir = NSTemporaryDirectory() + "gradflow-channel-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let reader = try CommandChannelReader(runDirectory: dir)
        let writer = try CommandChannelWriter(runDirectory: dir, runId: "r1")
        let handle = try #require(FileHandle(forWritingAtPath: reader.path))
        handle.seekToEndOfFile()
        handle.write(Data(#"{"id":"frag"#.utf8))  // a sender that died mid-line
        try handle.close()
        #expect(writer.send(Command(.pause, source: .attach, id: "c1")) == nil)
        let got = reader.poll()
        #expect(got.map(\.line) == [1, 2])
        if case .success = got[0].result { Issue.record("the fragment decoded") }
        #expect((try? got[1].result.get().id) == "c1")
        // The file is replaced: the open writer sends to the new one, which the reader follows.
        try FileManager.default.removeItem(atPath: reader.path)
        #expect(writer.send(Command(.stop, source: .attach, id: "c2")) == nil)
        #expect(reader.poll().compactMap { try? $0.result.get().id } == ["c2"])
    }

    @Test("a commands file removed, replaced or cut short is followed: the file the path names is read from its first line, with a notice")
    func readerFollowsThePath() throws {
        let dir = NSTemporaryDirectory() + "gradflow-channel-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let reader = try CommandChannelReader(runDirectory: dir)
        func send(_ id: String) throws {
            try CommandChannelWriter(runDirectory: dir, runId: "r1").send(Command(.pause, source: .attach, id: id))
        }
        func ids() -> [String] { reader.poll().compactMap { try? $0.result.get().id } }
        try send("a1"); try send("a2")
        #expect(ids() == ["a1", "a2"] && reader.takeNotices().isEmpty)
        // Removed, then a sender makes a new file (attach opens with O_CREAT).
        try FileManager.default.removeItem(atPath: reader.path)
        try send("b1")
        #expect(ids() == ["b1"])
        #expect(reader.takeNotices() == ["commands.jsonl was replaced (or removed and made again): commands are read from the new file's first line"])
        // Removed, and nothing there yet: a private one is made, as at the start.
        try FileManager.default.removeItem(atPath: reader.path)
        #expect(ids().isEmpty)
        #expect(reader.takeNotices() == ["commands.jsonl was removed (a new one was made): commands are read from the new file's first line"])
        #expect(((try FileManager.default.attributesOfItem(atPath: reader.path)[.posixPermissions] as? Int) ?? 0) == 0o600)
        // Replaced by another file (an editor's save).
        try Data(#"{"id":"c1","run":"r1","issuer":{"user":"u","host":"h","pid":1},"t":1,"command":"stop"}"#.utf8 + [0x0A])
            .write(to: URL(fileURLWithPath: reader.path), options: .atomic)
        chmod(reader.path, 0o600)
        let replaced = reader.poll()
        #expect(replaced.map(\.line) == [1] && (try? replaced[0].result.get().id) == "c1")
        #expect(reader.takeNotices().first?.hasPrefix("commands.jsonl was replaced") == true)
        // Cut short: read again from the start.
        truncate(reader.path, 0)
        #expect(ids().isEmpty)
        #expect(reader.takeNotices().first?.hasPrefix("commands.jsonl was cut short") == true)
        try send("d1")
        #expect(ids() == ["d1"])
        #expect(reader.poll().isEmpty && reader.takeNotices().isEmpty)
        // Rewritten in place (`echo … > commands.jsonl`: same file, cut and written at once) to
        // more than was read: read again from the first line.
        let longer = #"{"id":"e1-with-a-longer-id-than-before","run":"r1","issuer":{"user":"u","host":"h","pid":1},"t":1,"command":"stop"}"#
        let h = try #require(FileHandle(forWritingAtPath: reader.path))
        try h.truncate(atOffset: 0)
        h.write(Data((longer + "\n" + longer.replacingOccurrences(of: "e1-", with: "e2-") + "\n").utf8))
        try h.close()
        #expect(ids() == ["e1-with-a-longer-id-than-before", "e2-with-a-longer-id-than-before"])
        #expect(reader.takeNotices() == ["commands.jsonl was rewritten: commands are read again from its first line"])
        // Cut and refilled with lines as long as before, past what was read: the first bytes differ.
        let h2 = try #require(FileHandle(forWritingAtPath: reader.path))
        try h2.truncate(atOffset: 0)
        let same = [longer.replacingOccurrences(of: "e1-", with: "g1-"), longer.replacingOccurrences(of: "e1-", with: "g2-"),
                    longer.replacingOccurrences(of: "e1-", with: "g3-")]
        h2.write(Data(same.map { $0 + "\n" }.joined().utf8))
        try h2.close()
        #expect(ids() == ["g1-with-a-longer-id-than-before", "g2-with-a-longer-id-than-before", "g3-with-a-longer-id-than-before"])
        #expect(reader.takeNotices() == ["commands.jsonl was rewritten: commands are read again from its first line"])
    }
}
