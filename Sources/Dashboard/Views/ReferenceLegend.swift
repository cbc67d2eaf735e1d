import Telemetry
import Terminal
import Themes

/// The Loss panel's reference runs (`--compare`): their ghost series on the current run's step
/// axis, and one legend line each with the difference at the latest step.
enum ReferenceLegend {
    struct Row {
        var index: Int
        var name: String
        /// "by tokens", "preset M", "other data", joined; empty when the runs match.
        var label: String
        var train: DecimatedSeries
        /// Validation domains the current run also has, on its step axis.
        var validation: [DecimatedSeries]
        /// Current − reference at the latest step: train first, then each shared domain.
        var differences: [(name: String, delta: Double?)]
    }

    static func rows(_ state: DashboardState, rows count: Int) -> [Row] {
        let d = state.data
        return state.references.prefix(count).enumerated().map { i, ref in
            let a = ref.alignment(to: d.header)
            let train = ReferenceRun.rescaled(ref.train, by: a.scale)
            var diffs: [(String, Double?)] = []
            if let x = d.trainLoss.lastX, let current = d.trainLoss.value(near: x) {
                diffs.append(("train", train.value(near: x).map { current - $0 }))
            }
            var validation: [DecimatedSeries] = []
            for (k, name) in d.validationNames.enumerated() {
                guard let j = ref.validationNames.firstIndex(of: name) else { continue }
                let v = ReferenceRun.rescaled(ref.validation[j], by: a.scale)
                validation.append(v)
                if let x = d.validation[k].lastX, let current = d.validation[k].last {
                    diffs.append((RunData.validationLabel(name), v.value(near: x).map { current - $0 }))
                }
            }
            return Row(index: i, name: ref.name, label: a.label, train: train, validation: validation, differences: diffs)
        }
    }

    /// "┄ base (by tokens) Δ train −0.012 val:plays +0.004": current − reference (negative: the
    /// current run is lower).
    static func spans(_ row: Row, color: TerminalColor, theme: Theme) -> [Span] {
        var spans = [Span(" ┄ \(row.name)", CellStyle(fg: color, attributes: .bold))]
        if !row.label.isEmpty { spans.append(Span(" (\(row.label))", theme.style(.dim))) }
        spans.append(Span(" Δ", theme.style(.dim)))
        for (name, delta) in row.differences {
            spans.append(Span(" \(name) ", theme.style(.dim)))
            spans.append(Span(delta.map(Format.delta) ?? "–", theme.style(.fg)))
        }
        return spans
    }
}
