import Telemetry

extension RunData {
    /// A/A windows, verdicts, reverts and rollbacks (docs/DASHBOARD.md, "Twins").
    mutating func apply(twinEvent e: EventRecord) {
        switch e.kind {
        case .twin:
            addEvent(EventEntry(step: e.step, kind: .info, text: e.message, changeStep: e.step))
            lastChange = (e.step, nil, nil)
        case .verdict:
            twinWindow = nil
            let summary = e.verdict?.summary ?? e.message
            if let v = e.verdict, let i = events.lastIndex(where: { $0.changeStep == v.changeStep }) {
                events[i].verdict = summary
            }
            addEvent(EventEntry(step: e.step, kind: .verdict, text: e.message))
        case .revert:
            twinWindow = nil
            addEvent(EventEntry(step: e.step, kind: .revert, text: e.message + "  (\(e.source))"))
        case .rollback:
            twinWindow = nil
            addEvent(EventEntry(step: e.step, kind: .rollback, text: e.message))
        default:
            break
        }
    }

    /// The twin's side of a step: the ghost line restarts with each window.
    mutating func apply(twinSample s: StepRecord) {
        guard let t = s.twin else {
            twinWindow = nil
            return
        }
        if twinWindow?.changeStep != t.changeStep {
            twinLoss = DecimatedSeries(capacity: Self.historyCapacity)
            let change = lastChange.flatMap { $0.step == t.changeStep ? $0 : nil }
            twinWindow = TwinWindow(changeStep: t.changeStep, axis: change?.axis, band: change?.band, sample: t)
        }
        twinWindow?.sample = t
        twinLoss.append(x: s.step, t.loss)
    }
}
