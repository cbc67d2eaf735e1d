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
            return handle(key: key)
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
        case .resetRecords:
            let header = data.header
            data = RunData()
            if let header { data.apply(header: header) }
            pendingWeights = [:]
            unconfirmedWeights = [:]
            return []
        case .interrupt:
            return requestQuit()
        }
    }

    private mutating func fold(_ record: Record) {
        data.apply(record)
        guard case let .event(e) = record else { return }
        // A refusal of the viewer's own key belongs in the status line; a recorded one (replay)
        // is history, shown in Events only.
        if e.kind == .refused && mode == .live {
            let what = e.axis.map { a in e.band.map { "\(a.rawValue) band \($0)" } ?? a.rawValue } ?? "command"
            setStatus("refused: \(e.message.isEmpty ? what : e.message)", error: true)
        }
        // Only this dashboard's own commands (source "key") answer its pending presses.
        guard e.kind == .weight || e.kind == .refused, e.source == Self.keySource,
              let axis = e.axis, let band = e.band else { return }
        let target = WeightTarget(axis: axis, band: band, layer: e.layer)
        let left = (unconfirmedWeights[target] ?? 1) - 1
        if left > 0 {
            unconfirmedWeights[target] = left
        } else {
            unconfirmedWeights[target] = nil
            pendingWeights[target] = nil
        }
    }

    /// The `source` of the commands this dashboard sends.
    static let keySource = "key"

    /// Records a weight command about to be sent: the next press builds on `value`.
    mutating func markPending(_ target: WeightTarget, _ value: Double) {
        pendingWeights[target] = value
        unconfirmedWeights[target, default: 0] += 1
    }

    mutating func setStatus(_ text: String, error: Bool = false) {
        status = StatusMessage(text: text, isError: error, since: now)
    }

    mutating func requestQuit() -> [DashboardEffect] {
        if mode == .live && canControl && data.end == nil && data.header != nil {
            if quitting { return [.quit] }
            quitting = true
            quitRequestedAt = now
            setStatus("stopping: waiting for the trainer to write its end record (q again to leave now)")
            return [.command(.stop)]
        }
        return [.quit]
    }
}
