import ArgumentParser
import Foundation
import Telemetry

/// `gradflow runs [DIR]`: one line per run folder.
struct RunsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "runs",
        abstract: "List the runs in a folder (default runs/): preset, steps, validation, state, start, parent.",
        discussion: """
        One line per subfolder, sorted by name. STATE is finished, interrupted (q, Ctrl-C, or killed \
        without an end record), failed, live (no end record, and the run file written in the last \
        \(Int(RunCatalog.liveWindow)) s or its writer still holding the file's lock), damaged (a header that cannot be read, or bad lines; the reason \
        follows) or "not a run" (no run.jsonl). FINAL is the latest validation loss of the first \
        domain in nats, BEST the lowest; PARENT names the run and step a fork continued from.

        Examples:
          gradflow runs
          gradflow runs /data/experiments --json
        """
    )

    @Argument(help: ArgumentHelp("Folder holding run folders.", valueName: "dir"))
    var directory: String = "runs"

    @Flag(help: "One JSON array of objects instead of the table (for scripts).")
    var json = false

    func run() throws {
        let entries: [RunCatalog.Entry]
        do { entries = try RunCatalog.scan(directory) } catch let e as RunFileError { throw CLIError(e.description) }
        if json {
            print(Self.json(entries))
        } else {
            for line in Self.table(entries) { print(line) }
        }
    }

    /// The widest note the table's STATE column shows.
    static let noteWidth = 48

    static func table(_ entries: [RunCatalog.Entry]) -> [String] {
        guard !entries.isEmpty else { return ["no run folders"] }
        let head = ["NAME", "PRESET", "STEPS", "FINAL", "BEST", "STATE", "STARTED", "PARENT"]
        var rows: [[String]] = [head]
        for e in entries {
            let steps = e.stepsDone.map { done in "\(done)/\(e.totalSteps.map(String.init) ?? "?")" } ?? "-"
            var state = e.state.rawValue
            // The table keeps a note short (`--json` has it whole); a name stays on its line.
            if let note = e.note, !note.isEmpty { state += " (\(Format.truncateEnd(note, noteWidth)))" }
            rows.append([
                e.name.replacingOccurrences(of: "\n", with: "\\n"), e.preset ?? "-", steps,
                e.finalValidation.map { String(format: "%.4f", $0) } ?? "-",
                e.bestValidation.map { String(format: "%.4f", $0) } ?? "-",
                state, e.startTime.map(localTime) ?? "-",
                e.parent.map { "\($0.run)@\($0.step)" } ?? "",
            ])
        }
        let widths = (0..<head.count).map { c in rows.map { $0[c].count }.max() ?? 0 }
        return rows.map { row in
            row.enumerated().map { c, cell in cell.padding(toLength: widths[c], withPad: " ", startingAt: 0) }
                .joined(separator: "  ")
                .replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression)
        }
    }

    static func localTime(_ seconds: Double) -> String {
        let f = DateFormatter()
        f.dateFormat = "yyyy-MM-dd HH:mm"
        f.locale = Locale(identifier: "en_US_POSIX")
        return f.string(from: Date(timeIntervalSince1970: seconds))
    }

    static func json(_ entries: [RunCatalog.Entry]) -> String {
        var w = JSONWriter()
        w.beginArray()
        for e in entries {
            w.beginObject()
            w.key("name"); w.string(e.name)
            w.key("path"); w.string(e.path)
            w.key("state"); w.string(e.state.rawValue)
            w.key("preset"); if let p = e.preset { w.string(p) } else { w.null() }
            w.key("steps_done"); if let s = e.stepsDone { w.int(s) } else { w.null() }
            w.key("total_steps"); if let s = e.totalSteps { w.int(s) } else { w.null() }
            w.key("final_val_loss"); w.optionalDouble(e.finalValidation)
            w.key("best_val_loss"); w.optionalDouble(e.bestValidation)
            w.key("start_time"); w.optionalDouble(e.startTime)
            w.key("parent")
            if let p = e.parent {
                w.beginObject()
                w.key("run"); w.string(p.run)
                w.key("step"); w.int(p.step)
                w.key("checkpoint"); w.string(p.checkpoint)
                w.endObject()
            } else {
                w.null()
            }
            w.key("note"); if let n = e.note { w.string(n) } else { w.null() }
            w.endObject()
        }
        w.endArray()
        return String(decoding: w.bytes, as: UTF8.self)
    }
}
