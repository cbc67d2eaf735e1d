import Telemetry

extension RunData {
    /// A/A windows, verdicts, reverts and rollbacks (docs/DASHBOARD.md, "Twins").
    mutating func apply(twinEvent e: EventRecord) {
        switch e.kind {
        case .twin:
            addEvent(EventEntry(step: e.step, kind: .info, text: e.message))
        case .verdict:
            addEvent(EventEntry(step: e.step, kind: .info, text: "verdict: " + e.message))
        case .revert:
            addEvent(EventEntry(step: e.step, kind: .weight, text: e.message + "  (\(e.source))"))
        case .rollback:
            addEvent(EventEntry(step: e.step, kind: .warning, text: "rollback: " + e.message))
        default:
            break
        }
    }
}
