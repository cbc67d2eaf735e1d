import RunFormat
import Foundation

/// Writes one CSV row per step record: `step`, `t`, every scalar of `ColumnLayout` (axes, bands,
/// oscillation, attention flattened into named columns such as `context.local.weight`), the
/// validation columns filled on rows where an eval happened, and `events` (the step's events,
/// described, separated by "; "). Empty cells mean "not measured"; NaN is written as `nan`.
public enum CSVExporter {
    /// Exports `run` (a run file or directory) to `output`. Returns the number of rows written.
    @discardableResult
    public static func export(run: String, to output: String, force: Bool = false) throws -> Int {
        var (header, layout, _, replaced) = try ColumnLayout.scanNotingReplaced(path: run)
        let handle = try OutputFile.create(output, force: force)
        defer { try? handle.close() }
        var out = ChunkedWriter(handle)
        out.write((["step", "t"] + layout.names + ["events"]).map(escape).joined(separator: ",") + "\n")
        let reader = try RunFileReader(path: run)
        var pending: (step: StepRecord, eval: EvalRecord?, events: [String])?
        var rows = 0
        func flush() {
            guard let p = pending else { return }
            var cells = [String(p.step.step), number(p.step.t)]
            cells += layout.values(p.step).map(number)
            if let e = p.eval { cells += layout.values(e).map(number) } else { cells += Array(repeating: "", count: layout.evalNames.count) }
            cells.append(escape(p.events.joined(separator: "; ")))
            out.write(cells.joined(separator: ",") + "\n")
            rows += 1
            pending = nil
        }
        try reader.forEachRecord { r in
            guard replaced.keep(r) else { return }
            switch r {
            case let .step(s):
                flush()
                pending = (s, nil, [])
            case let .eval(e):
                // An eval carries the steps completed (a file that wrote the step's index reads too).
                if let p = pending?.step, e.step == p.stepsCompleted || e.step == p.step { pending?.eval = e }
            case let .event(e):
                if pending != nil { pending?.events.append(describeEvent(e, header: header)) }
            case let .checkpoint(c):
                if pending != nil { pending?.events.append("checkpoint \(c.path)") }
            case .system:
                break  // process figures are not per-step columns
            case let .end(e):
                if pending != nil { pending?.events.append("end \(e.reason.rawValue)") }
            }
        }
        flush()
        out.flush()
        return rows
    }

    static func number(_ v: Double) -> String {
        if v.isNaN { return "nan" }
        if v.isInfinite { return v < 0 ? "-inf" : "inf" }
        return v == v.rounded() && abs(v) < 1e15 ? String(Int64(v)) : "\(v)"
    }

    static func escape(_ s: String) -> String {
        guard s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return s }
        return "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
