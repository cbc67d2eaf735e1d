import Foundation
import Telemetry

// The trainer's side of the command channel (docs/FORMAT.md, "The command channel"): lines of
// `commands.jsonl` become commands applied at the step boundary through the same path as the
// dashboard's keys, each answered by one event that names its id.

/// What the run file already says about the channel's commands, read before a resumed run starts.
public struct ChannelHistory: Sendable, Equatable {
    /// Every command id the run file answers, with the step of its answer and whether it was
    /// carried out (not refused).
    public var answered: [String: (step: Int, applied: Bool)]

    public init(answered: [String: (step: Int, applied: Bool)] = [:]) { self.answered = answered }

    public static func == (a: ChannelHistory, b: ChannelHistory) -> Bool {
        a.answered.count == b.answered.count && a.answered.allSatisfy { k, v in b.answered[k].map { $0 == v } ?? false }
    }

    /// Folds one record of the run file.
    public mutating func add(_ record: Record) {
        guard case let .event(e) = record, let id = e.commandId else { return }
        // A command applied again after a resume answers twice; the first answer decides.
        if answered[id] == nil { answered[id] = (e.step, e.kind != .refused) }
    }
}

/// The channel state a trainer keeps: the reader, the ids it has answered, and the ids whose
/// effect the current state holds (what a checkpoint records).
struct ChannelState {
    var reader: CommandChannelReader?
    /// The header's run id; a line naming another run is refused.
    var runId = ""
    /// Ids answered in this run (the run file's, and this session's): never applied again.
    var answered: Set<String> = []
    /// Ids applied (or refused) up to the current state, in order: saved with each checkpoint.
    var applied: [String] = []
    /// Lines held back until their step: commands whose first application was lost with the steps
    /// after the checkpoint a run resumed from (applied again where they were first applied).
    var replays: [(step: Int, command: Command)] = []
    /// Ids of replayed commands not answered yet: their events say they were applied again.
    var replayed: Set<String> = []
    /// What the event of a command applied again after a resume says (the Python package's words).
    static let appliedAgain = "applied again after a resume: its effect came after the checkpoint"

    /// The warning of a resume that cannot apply such a command again: its line is no longer in
    /// the commands file (the Python package's words, `LOST_COMMAND_MISSING`).
    static func lostCommandMissing(id: String, step: Int) -> String {
        // One literal, so that the Python test finds its words here.
        "command \"\(id)\" (applied at step \(step), after the checkpoint) is no longer in commands.jsonl, so it is not applied again: from step \(step) this run's settings may differ from the uninterrupted run's"
    }
}

extension Trainer {
    /// Checkpoint `extra` key of the ids whose effect the checkpoint holds.
    static let appliedCommandsKey = "channel.applied"
    /// Checkpoint `extra` key of the id of the run that wrote it (its header's `run_id`): `--resume`
    /// continues only that run (`Checkpoint.runId`).
    public static let runIdKey = "run.id"

    /// Starts reading the run's command channel (rank 0; call before `run()`). `history` is what the
    /// run file already answers (a resumed run), `runId` the header's.
    public func attachChannel(runDirectory: String, runId: String, history: ChannelHistory = ChannelHistory()) throws {
        channel.reader = try CommandChannelReader(runDirectory: runDirectory)
        channel.runId = runId
        channel.answered = Set(history.answered.keys)
        let inState = Set(channel.applied)
        func lost(_ id: String, _ past: (step: Int, applied: Bool)) -> Bool {
            past.applied && !inState.contains(id) && past.step >= step
        }
        // Read what the file holds now: commands the run file answered but whose effect the
        // checkpoint lacks are applied again at their step; the others are passed.
        var found: Set<String> = []
        for reading in channel.reader!.poll() {
            guard case let .success(line) = reading.result, let past = history.answered[line.id] else {
                pendingChannelReadings.append(reading)
                continue
            }
            if lost(line.id, past) {
                channel.replays.append((past.step, line.command))
                found.insert(line.id)
            }
        }
        // Those whose lines are gone (the file cut or replaced since) cannot be: the resume says so.
        let missing = history.answered.filter { lost($0.key, $0.value) && !found.contains($0.key) }
        for (id, past) in missing.sorted(by: { ($0.value.step, $0.key) < ($1.value.step, $1.key) }) {
            bus.publish(.event(EventRecord(step: step, t: elapsed, kind: .warning, source: .attach,
                                           message: ChannelState.lostCommandMissing(id: id, step: past.step))))
        }
    }

    /// The commands of the channel due at this step boundary; malformed lines, lines for another
    /// run and a file others may write are answered at once with refusals or a warning.
    func channelCommands() -> [Command] {
        var out: [Command] = []
        while let i = channel.replays.firstIndex(where: { $0.step <= step }) {
            let command = channel.replays.remove(at: i).command
            if let id = command.id { channel.replayed.insert(id) }
            out.append(command)
        }
        guard let reader = channel.reader else { return out }
        let readings = pendingChannelReadings + reader.poll()
        pendingChannelReadings = []
        if let refusal = reader.takeRefusal() {
            bus.publish(.event(EventRecord(step: step, t: elapsed, kind: .warning, source: .attach, message: refusal)))
        }
        for notice in reader.takeNotices() {
            bus.publish(.event(EventRecord(step: step, t: elapsed, kind: .warning, source: .attach, message: notice)))
        }
        for reading in readings {
            let place = "\(CommandChannel.fileName):\(reading.line)"
            switch reading.result {
            case let .success(line):
                guard !channel.answered.contains(line.id) else {
                    // Not answered under its id: that answer was given to the first line with it.
                    refuse(id: nil, "\(place): id \"\(line.id)\" was answered already (an id is used once); not applied again")
                    continue
                }
                channel.answered.insert(line.id)
                guard line.run == channel.runId else {
                    refuse(id: line.id, "\(place): the command is for run \"\(line.run)\", this is run \"\(channel.runId)\"")
                    continue
                }
                out.append(line.command)
            case let .failure(problem):
                // A bad line is answered under its id only when that id is still free.
                let id = problem.id.flatMap { channel.answered.contains($0) ? nil : $0 }
                if let id { channel.answered.insert(id) }
                refuse(id: id, "\(place): \(problem.message)")
            }
        }
        return out
    }

    private func refuse(id: String?, _ message: String) {
        var e = EventRecord(step: step, t: elapsed, kind: .refused, source: .attach, message: message)
        e.commandId = id
        if let id { channel.applied.append(id) }
        bus.publish(.event(e))
    }

    /// Publishes the event that answers `command` (naming its id, when it has one).
    func publish(answering command: Command, _ event: EventRecord) {
        var e = event
        e.commandId = command.id
        if let id = command.id, channel.replayed.remove(id) != nil {
            e.message = e.message.isEmpty ? ChannelState.appliedAgain : "\(e.message) (\(ChannelState.appliedAgain))"
        }
        if let id = command.id {
            channel.answered.insert(id)
            channel.applied.append(id)
        }
        bus.publish(.event(e))
    }

    /// `lr_scale`: the schedule times `factor` from this step on.
    func scaleLearningRate(_ factor: Double, answering command: Command) {
        guard Command.isValidLearningRateScale(factor) else {
            publish(answering: command, EventRecord(step: step, t: elapsed, kind: .refused, source: command.source,
                                                    message: Command.learningRateScaleProblem(factor)))
            return
        }
        publish(answering: command, changeLearningRateScale(to: factor, step: step, source: command.source, why: "lr_scale command"))
    }
}
