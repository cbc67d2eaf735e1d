import Refinement
import Telemetry
import Terminal

extension DashboardState {
    /// How long q waits for the trainer's end record before giving up.
    public static let quitTimeout = 5.0

    /// The pure update: a new state and the effects to carry out.
    public static func update(_ state: DashboardState, _ action: DashboardAction) -> (DashboardState, [DashboardEffect]) {
        var s = state
        let effects = s.apply(action)
        return (s, effects)
    }

    /// Applies an action in place and returns the effects (what `update` does, without the copy).
    public mutating func apply(_ action: DashboardAction) -> [DashboardEffect] {
        switch action {
        case let .key(key):
            return stamp(handle(key: key))
        case let .tick(now):
            self.now = now
            if let st = status, now - st.since > StatusMessage.lifetime { status = nil }
            if quitting, let t = quitRequestedAt, now - t > Self.quitTimeout { return [.quit] }
            return []
        case let .resize(size):
            self.size = size
            return []
        case let .header(header):
            if data.header != header {
                data = RunData()
                data.apply(header: header)
                selectedRow = Swift.min(selectedRow, Swift.max(0, data.rows.count - 1))
            }
            return []
        case let .records(records):
            for r in records { fold(r) }
            if quitting && data.end != nil { return [.quit] }
            return []
        case let .replayStatus(rs):
            replayStatus = rs
            return []
        case let .notSent(command, problem):
            if let id = command.id { awaitingAnswer[id] = nil }
            forget(unsent: command.action)
            setStatus("\(describe(command.action)): not sent (\(problem))", error: true)
            return []
        case let .runFileAge(age):
            runFileAge = age
            return []
        case .resetRecords:
            let header = data.header
            data = RunData()
            if let header { data.apply(header: header) }
            pendingWeights = [:]
            unconfirmedWeights = [:]
            pendingModes = [:]
            return []
        case .interrupt:
            return requestQuit()
        }
    }

    /// Attached: gives each command this dashboard's next id and the source `attach`, and
    /// remembers it until the trainer's answer comes back through the run file.
    private mutating func stamp(_ effects: [DashboardEffect]) -> [DashboardEffect] {
        guard mode == .attached else { return effects }
        return effects.map { effect in
            guard case var .command(c) = effect else { return effect }
            commandsSent += 1
            c.id = "\(commandIdPrefix)-\(commandsSent)"
            c.source = .attach
            let what = describe(c.action)
            awaitingAnswer[c.id!] = SentCommand(what: what, action: c.action)
            if silentSeconds != nil && data.latestCheckpointStep == nil {
                setStatus("\(what): queued, but the run is silent (writer gone?) and recorded no checkpoint: it applies only if the run is resumed from one saved some other way",
                          error: true)
            } else if silentSeconds != nil {
                setStatus("\(what): queued; the run is silent (writer gone?), so it applies when the run is resumed", error: true)
            } else {
                setStatus("\(what): sent")
            }
            return .command(c)
        }
    }

    /// A command in a few words, for the status line.
    func describe(_ action: Command.Action) -> String {
        switch action {
        case let .setWeight(t, v):
            let label = data.rows.first { $0.target == t }?.label ?? "\(t.axis.rawValue) band \(t.band)"
            return "\(label) → \(Format.fixed(v, 2))"
        case let .setAdaptive(axis, on): return "\(axis.rawValue) \(on ? "adaptive" : "manual")"
        case let .setTarget(band, share): return "context target share of band \(band) → \(Format.percent(share))"
        case let .scaleLearningRate(v): return "learning-rate scale \(Format.value(v))"
        case .pause: return "pause"
        case .resume: return "resume"
        case .checkpointNow: return "checkpoint"
        case .stop: return "stop"
        case .openTwin: return "A/A check"
        case .revert: return "revert"
        }
    }

    private mutating func fold(_ record: Record) {
        data.apply(record)
        guard case let .event(e) = record else { return }
        // A revert or rollback put the run back to an earlier state: the changes the undo stack
        // would take back are gone with it.
        if e.kind == .revert || e.kind == .rollback { undo.removeAll() }
        // A refusal of the viewer's own key belongs in the status line; a recorded one (replay)
        // is history, shown in Events only.
        if e.kind == .refused && mode == .live {
            let what = e.axis.map { a in e.band.map { "\(a.rawValue) band \($0)" } ?? a.rawValue } ?? "command"
            setStatus("refused: \(e.message.isEmpty ? what : e.message)", error: true)
        }
        // Attached: the answer to one of this dashboard's commands (another dashboard's are history).
        if mode == .attached, let id = e.commandId, let sent = awaitingAnswer.removeValue(forKey: id) {
            if e.kind == .refused {
                setStatus("\(sent.what): refused at step \(Format.grouped(e.step)): \(e.message)", error: true)
            } else {
                setStatus("\(sent.what): applied at step \(Format.grouped(e.step))")
            }
            // Settled by its id, whatever the answer says (a refusal may name no axis).
            settle(answered: sent.action)
            return
        }
        // Live: the trainer answers the viewer's keys (source `key`) in order, each with one event
        // naming the axis (and the band, for a weight); other dashboards' events are history.
        guard mode == .live, e.source == Self.keySource, let axis = e.axis else { return }
        switch e.kind {
        case .mode: settle(answered: .setAdaptive(axis, true))
        case .weight, .refused:
            if let band = e.band {
                settle(answered: .setWeight(WeightTarget(axis: axis, band: band, layer: e.layer), 0))
            } else if e.kind == .refused {
                settle(answered: .setAdaptive(axis, true))
            }
        default: break
        }
    }

    /// One of this dashboard's commands was answered, or never left: the pending state it set goes
    /// (for a weight, its value and the mode it implies; for a mode, the mode).
    private mutating func settle(answered action: Command.Action) {
        switch action {
        case let .setWeight(target, _):
            settle(target)
            settleMode(target.axis)
        case let .setAdaptive(axis, _):
            settleMode(axis)
        default:
            break
        }
    }

    /// Records a mode command (or a weight command, which makes its axis manual) about to be
    /// sent: the next `a` builds on it.
    mutating func markPendingMode(_ axis: ScaleAxis, adaptive: Bool) {
        pendingModes[axis] = PendingMode(adaptive: adaptive, unconfirmed: (pendingModes[axis]?.unconfirmed ?? 0) + 1)
    }

    /// One mode command for `axis` was answered or never left.
    private mutating func settleMode(_ axis: ScaleAxis) {
        guard let pending = pendingModes[axis] else { return }
        pendingModes[axis] = pending.unconfirmed > 1 ? PendingMode(adaptive: pending.adaptive, unconfirmed: pending.unconfirmed - 1) : nil
    }

    /// One weight command for `target` was answered or never left: when none is outstanding any
    /// more, the Scales panel shows the run's own value again.
    private mutating func settle(_ target: WeightTarget) {
        let left = (unconfirmedWeights[target] ?? 1) - 1
        if left > 0 {
            unconfirmedWeights[target] = left
        } else {
            unconfirmedWeights[target] = nil
            pendingWeights[target] = nil
        }
    }

    /// A command the channel could not take changed nothing: its pending weight goes, and so does
    /// the undo entry the key pushed for it (the last one, when it is that change).
    private mutating func forget(unsent action: Command.Action) {
        switch action {
        case let .setWeight(target, value):
            settle(answered: action)
            if case let .weight(t, _, new)? = undo.last, t == target, new == value { undo.removeLast() }
        case let .setAdaptive(axis, on):
            settle(answered: action)
            if case let .adaptive(a, was, _)? = undo.last, a == axis, was != on { undo.removeLast() }
        default:
            break
        }
    }

    /// The `source` of the commands this dashboard sends.
    static let keySource = EventSource.key

    /// Records a weight command about to be sent: the next press builds on `value`.
    mutating func markPending(_ target: WeightTarget, _ value: Double) {
        pendingWeights[target] = value
        unconfirmedWeights[target, default: 0] += 1
        markPendingMode(target.axis, adaptive: false)
    }

    mutating func setStatus(_ text: String, error: Bool = false) {
        status = StatusMessage(text: text, isError: error, since: now)
    }

    mutating func requestQuit() -> [DashboardEffect] {
        // Attached: q leaves the run going (x stops it).
        if mode == .live && canControl && data.end == nil && data.header != nil {
            if quitting { return [.quit] }
            quitting = true
            quitRequestedAt = now
            setStatus("stopping: waiting for the trainer to write its end record (q again to leave now)")
            return [.command(.stop(source: Self.keySource))]
        }
        return [.quit]
    }
}
