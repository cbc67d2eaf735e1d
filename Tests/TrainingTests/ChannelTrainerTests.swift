import Foundation
import Refinement
import Telemetry
import Testing
@testable import Training

/// The trainer's side of the command channel: every line answered once, exactly-once across a
/// crash and `--resume`, and no line, however bad, stops a run.
@Suite struct ChannelTrainerTests {
    static let runId = "run-under-test"

    static func line(_ id: String, _ action: Command.Action, run: String = runId) -> String {
        String(decoding: ChannelLine(id: id, run: run, issuer: CommandIssuer(user: "u", host: "h", pid: 1), t: 1,
                                     action: action).encoded(), as: UTF8.self)
    }

    /// Trains `config` in `dir` reading its channel; `write` is called before each step (to append
    /// lines); returns the trainer's records.
    static func train(_ config: TrainingConfig, dir: String, resume: Checkpoint? = nil, history: ChannelHistory = ChannelHistory(),
                      write: ((Int) -> Void)? = nil) throws -> [Record] {
        let bus = RecordBus()
        let sub = bus.subscribe(name: "test", capacity: 1 << 20)
        let trainer = try Trainer(config: config, refinement: RefinementConfig(), train: try ByteDataset.embedded(),
                                  evalDomains: [], bus: bus, runDirectory: dir, resume: resume)
        try trainer.attachChannel(runDirectory: dir, runId: runId, history: history)
        if let write { trainer.beforeStep = { write($0.step) } }
        trainer.run()
        return sub.drain()
    }

    static func append(_ text: String, dir: String) {
        let fd = open(CommandChannel.path(runDirectory: dir), O_WRONLY | O_APPEND | O_CREAT, 0o600)
        _ = text.utf8CString.withUnsafeBufferPointer { write(fd, $0.baseAddress, $0.count - 1) }
        close(fd)
    }

    static func losses(_ records: [Record]) -> [Int: Double] {
        Dictionary(uniqueKeysWithValues: records.compactMap { r in if case let .step(s) = r { return (s.step, s.loss) }; return nil })
    }

    static func answers(_ records: [Record]) -> [(id: String?, step: Int, kind: EventRecord.Kind)] {
        records.compactMap { r in
            guard case let .event(e) = r, e.source == .attach else { return nil }
            return (e.commandId, e.step, e.kind)
        }
    }

    /// Three commands, and the step before which each line arrives.
    static let threeLines = [(15, line("w1", .setWeight(WeightTarget(axis: .depth, band: 0), 2))),
                             (22, line("w2", .setWeight(WeightTarget(axis: .depth, band: 1), 1.5))),
                             (25, line("lr1", .scaleLearningRate(0.5)))]

    /// The uninterrupted run in `dir`: the lines arrive before steps 15, 22 and 25 (applied at 16,
    /// 23 and 26), a checkpoint every 10 steps.
    static func uninterrupted(steps: Int, dir: String) throws -> [Record] {
        try train(tinyConfig(steps: steps, checkpointEvery: 10), dir: dir) { step in
            for (at, text) in threeLines where at == step { append(text, dir: dir) }
        }
    }

    @Test func commandsAreAppliedOnceAlsoAcrossACrashAndAResume() throws {
        let config = tinyConfig(steps: 40, checkpointEvery: 10)
        let lines = Self.threeLines
        let whole = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: whole) }
        let uninterrupted = try Self.uninterrupted(steps: 40, dir: whole)
        let answered = Self.answers(uninterrupted)
        #expect(answered.map(\.id) == ["w1", "w2", "lr1"] && answered.map(\.step) == [16, 23, 26])
        #expect(answered.map(\.kind) == [.weight, .weight, .lr])

        // "kill -9" at step 30: the run file holds the records up to there, the checkpoint at 20
        // holds w1's effect but not w2's or lr1's. The resumed run must apply w2 and lr1 again at
        // steps 23 and 26, w1 never.
        let crashed = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: crashed) }
        var history = ChannelHistory()
        for r in uninterrupted where r.step <= 30 { history.add(r) }
        try FileManager.default.copyItem(atPath: Trainer.checkpointPath(runDirectory: whole, step: 20),
                                         toPath: Trainer.checkpointPath(runDirectory: crashed, step: 20))
        Self.append(lines.map(\.1).joined(), dir: crashed)
        let checkpoint = try Checkpoint.read(path: Trainer.checkpointPath(runDirectory: crashed, step: 20))
        let resumed = try Self.train(config, dir: crashed, resume: checkpoint, history: history)
        #expect(Self.answers(resumed).map(\.id) == ["w2", "lr1"] && Self.answers(resumed).map(\.step) == [23, 26])
        let replayed = resumed.compactMap { r -> EventRecord? in if case let .event(e) = r, e.commandId != nil { return e }; return nil }
        #expect(replayed.count == 2 && replayed[0].message == ChannelState.appliedAgain
                && replayed[1].message.hasSuffix("(\(ChannelState.appliedAgain))"), "each event says it was applied again")
        // The same states: steps 20… lose nothing to the crash, bit for bit.
        let a = Self.losses(uninterrupted), b = Self.losses(resumed)
        #expect(b.count == 20 && b.allSatisfy { a[$0.key] == $0.value })

        // Resumed again from the final checkpoint: the file's commands are all answered, none runs.
        var full = ChannelHistory()
        for r in uninterrupted + resumed { full.add(r) }
        let again = try Self.train(tinyConfig(steps: 45, checkpointEvery: 10), dir: crashed,
                                   resume: try Checkpoint.read(path: Trainer.checkpointPath(runDirectory: crashed, step: 40)),
                                   history: full)
        #expect(Self.answers(again).isEmpty)
    }

    @Test func aResumeSaysWhichLostCommandsItCannotApplyAgain() throws {
        // As above, but the commands file was cut to its first line before the resume: w2 and lr1
        // were applied after the checkpoint and are no longer there, so the resume warns of each.
        let config = tinyConfig(steps: 30, checkpointEvery: 10)
        let lines = Self.threeLines
        let whole = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: whole) }
        let uninterrupted = try Self.uninterrupted(steps: 30, dir: whole)
        var history = ChannelHistory()
        for r in uninterrupted { history.add(r) }
        let cut = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: cut) }
        try FileManager.default.copyItem(atPath: Trainer.checkpointPath(runDirectory: whole, step: 20),
                                         toPath: Trainer.checkpointPath(runDirectory: cut, step: 20))
        Self.append(lines[0].1, dir: cut)
        let resumed = try Self.train(config, dir: cut, resume: try Checkpoint.read(path: Trainer.checkpointPath(runDirectory: cut, step: 20)),
                                     history: history)
        #expect(Self.answers(resumed).filter { $0.kind != .warning }.isEmpty, "nothing applied again")
        let warnings = resumed.compactMap { r -> String? in
            if case let .event(e) = r, e.kind == .warning, e.source == .attach { return e.message }
            return nil
        }
        #expect(warnings == [ChannelState.lostCommandMissing(id: "w2", step: 23), ChannelState.lostCommandMissing(id: "lr1", step: 26)],
                "\(warnings)")
    }

    @Test func badLinesAreRefusedNamingTheirLineAndTheRunGoesOn() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var rng = SystemRandomNumberGenerator()
        var junk = (0..<4000).map { _ in UInt8.random(in: 0...255, using: &rng) }
        junk += Array("\n".utf8)
        let newlines = junk.filter { $0 == 0x0A }.count
        let records = try Self.train(tinyConfig(steps: 6), dir: dir) { step in
            guard step == 2 else { return }
            Self.append(Self.line("other", .stop, run: "another-run") + Self.line("dup", .pause) + Self.line("dup", .stop)
                        + Self.line("ok", .resume), dir: dir)
            let fd = open(CommandChannel.path(runDirectory: dir), O_WRONLY | O_APPEND)
            _ = junk.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            close(fd)
        }
        guard case let .end(end)? = records.last else { Issue.record("no end record"); return }
        #expect(end.reason == .completed && end.step == 6)
        let answers = Self.answers(records)
        let refused = answers.filter { $0.kind == .refused }
        // The foreign run's line, the second "dup" and every line of junk.
        #expect(refused.count == 2 + newlines)
        #expect(answers.contains { $0.id == "other" && $0.kind == .refused })
        #expect(answers.filter { $0.id == "dup" }.map(\.kind) == [.pause])
        #expect(answers.contains { $0.id == "ok" && $0.kind == .resume })
        let messages = records.compactMap { r -> String? in if case let .event(e) = r, e.kind == .refused { return e.message }; return nil }
        #expect(messages.contains { $0.hasPrefix("commands.jsonl:1: the command is for run \"another-run\"") })
        #expect(messages.contains { $0.hasPrefix("commands.jsonl:3: id \"dup\" was answered already") })
        #expect(messages.filter { $0.hasPrefix("commands.jsonl:") }.count == refused.count)
    }

    @Test func aChannelOthersMayWriteIsNotRead() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let records = try Self.train(tinyConfig(steps: 4), dir: dir) { step in
            guard step == 1 else { return }
            chmod(CommandChannel.path(runDirectory: dir), 0o620)
            Self.append(Self.line("s", .stop), dir: dir)
        }
        guard case let .end(end)? = records.last else { Issue.record("no end record"); return }
        #expect(end.reason == .completed)
        let warnings = records.compactMap { r -> String? in if case let .event(e) = r, e.kind == .warning, e.source == .attach { return e.message }; return nil }
        #expect(warnings.count == 1 && warnings[0].contains("writable by its group"))
    }
}
