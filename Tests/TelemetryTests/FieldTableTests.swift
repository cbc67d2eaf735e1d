import Refinement
import Foundation
import Testing
@testable import RunFormat
@testable import Telemetry

/// The codec's field tables (RunFileFields.swift) against docs/FORMAT.md: the same keys in the
/// same order, the same required members, and keys the scanner can pack.
@Suite struct FieldTableTests {
    static let format: String = {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("docs/FORMAT.md")
        return (try? String(contentsOf: url, encoding: .utf8)) ?? ""
    }()

    /// The lines of FORMAT.md from the heading that starts with `heading` to the next `## `.
    static func section(_ heading: String) -> [Substring] {
        let lines = format.split(separator: "\n", omittingEmptySubsequences: false)
        guard let start = lines.firstIndex(where: { $0.hasPrefix(heading) }) else { return [] }
        let end = lines[(start + 1)...].firstIndex { $0.hasPrefix("## ") } ?? lines.endIndex
        return Array(lines[(start + 1)..<end])
    }

    /// The backquoted names in `text`, in order.
    static func quoted(_ text: Substring) -> [String] {
        text.split(separator: "`", omittingEmptySubsequences: false).enumerated().filter { $0.offset % 2 == 1 }.map { String($0.element) }
    }

    /// The keys of the table's rows, in order (a row may list several: "`type`, `step`, `t`").
    static func tableKeys(_ lines: some Collection<Substring>) -> [String] {
        lines.filter { $0.hasPrefix("| `") }.flatMap { quoted($0.split(separator: "|")[0]) }
    }

    /// The required members a section's "Required: …" (or "All required.") line names.
    static func required(_ lines: [Substring], all: [String]) -> [String] {
        guard let line = lines.first(where: { $0.hasPrefix("Required:") || $0.hasPrefix("All required") }) else { return [] }
        if line.hasPrefix("All required") { return all }
        let listed = quoted(line.prefix { $0 != ";" && $0 != "." })
        if line.hasPrefix("Required: all members but") { return all.filter { !listed.contains($0) } }
        return listed
    }

    static func keys<F>(_ table: FieldTable<F>) -> [String] { table.fields.map(\.rawValue) }

    @Test("every record's table lists FORMAT.md's keys in FORMAT.md's order, with its required members", arguments: [
        ("## `step` record", StepField.table.object),
        ("## `eval` record", EvalField.table.object),
        ("## `event` record", EventField.table.object),
        ("## `checkpoint` record", CheckpointField.table.object),
        ("## `end` record", EndField.table.object),
        ("## `system` record", SystemField.table.object),
    ])
    func records(heading: String, object: String) throws {
        let lines = Self.section(heading)
        try #require(!lines.isEmpty, "FORMAT.md has no section \(heading)")
        let (keys, required): ([String], [String]) = switch object {
        case "step record": (Self.keys(StepField.table), StepField.table.required)
        case "eval record": (Self.keys(EvalField.table), EvalField.table.required)
        case "event record": (Self.keys(EventField.table), EventField.table.required)
        case "checkpoint record": (Self.keys(CheckpointField.table), CheckpointField.table.required)
        case "system record": (Self.keys(SystemField.table), SystemField.table.required)
        default: (Self.keys(EndField.table), EndField.table.required)
        }
        let documented = Self.tableKeys(lines)
        #expect(documented == keys, "\(heading): FORMAT.md \(documented), table \(keys)")
        #expect(Self.required(lines, all: documented) == required, "\(heading): required members")
    }

    @Test("the header's tables: its members, the data, axes and band entries, all required but start_iso and ranks")
    func header() throws {
        let lines = Self.section("## Header (line 1)")
        let split = try #require(lines.firstIndex { $0.hasPrefix("Each `axes` entry") })
        let top = Self.tableKeys(lines[..<split]), axis = Self.tableKeys(lines[split...])
        #expect(top == Self.keys(HeaderField.table))
        #expect(axis == Self.keys(AxisInfoField.table))
        #expect(Self.required(lines, all: top) == HeaderField.table.required)
        for table in [Self.keys(DataSourceField.table), Self.keys(BandInfoField.table)] {
            let object = "{" + table.map { "\"\($0)\"" }.joined(separator: ",") + "}"
            #expect(lines.contains { $0.contains(object) }, "FORMAT.md's header section lacks \(object)")
        }
        #expect(DataSourceField.table.required == Self.keys(DataSourceField.table))
        #expect(AxisInfoField.table.required == axis && BandInfoField.table.required == Self.keys(BandInfoField.table))
    }

    @Test("nested objects of records: axes, an axis, oscillation, domains, context gains")
    func nested() throws {
        let step = Self.section("## `step` record"), eval = Self.section("## `eval` record")
        let axesRow = try #require(step.first { $0.hasPrefix("| `axes`") })
        #expect(axesRow.contains("in the order " + ScaleAxis.table.fields.map(\.rawValue).joined(separator: ", ")))
        let axis = Self.keys(AxisSampleField.table)
        #expect(axesRow.contains("{" + axis.map { "\"\($0)\"" }.joined(separator: ",") + "}"))
        // The oscillation row names each array as "`key` (meaning …)", in writing order.
        let oscillationRow = try #require(step.first { $0.hasPrefix("| `oscillation`") })
        let pieces = oscillationRow.split(separator: "`", omittingEmptySubsequences: false)
        let described = stride(from: 1, to: pieces.count - 1, by: 2).filter { pieces[$0 + 1].hasPrefix(" (") }.map { String(pieces[$0]) }
        #expect(described == Self.keys(OscillationField.table))
        for table in [Self.keys(DomainField.table), Self.keys(ContextGainField.table)] {
            let object = "{" + table.map { "\"\($0)\"" }.joined(separator: ",") + "}"
            #expect(eval.contains { $0.contains(object) }, "FORMAT.md's eval section lacks \(object)")
        }
        #expect(DomainField.table.required == ["name", "loss"], "bpb is derived by readers (FORMAT.md says so)")
        #expect(eval.contains { $0.contains("`bpb` = loss / ln 2, written for people, recomputed by readers") })
    }

    @Test("keys are unique per table and fit a packed key; the packed keys read back")
    func packedKeys() {
        func check<F>(_ table: FieldTable<F>) {
            #expect(Set(table.keys).count == table.keys.count, "\(table.object): duplicate keys")
            for (field, key) in zip(table.fields, table.keys) {
                #expect(key.description == field.rawValue)
                #expect(field.rawValue.utf8.allSatisfy { $0 == 0x5F || (0x61...0x7A).contains($0) }, "snake_case: \(field.rawValue)")
            }
        }
        check(HeaderField.table); check(DataSourceField.table); check(AxisInfoField.table); check(BandInfoField.table)
        check(StepField.table); check(ScaleAxis.table); check(AxisSampleField.table); check(OscillationField.table)
        check(EvalField.table); check(DomainField.table); check(ContextGainField.table)
        check(EventField.table); check(CheckpointField.table); check(EndField.table)
    }

    @Test("the encoder writes every member of a full record in table order, and the decoder requires what the table says")
    func encoderOrder() throws {
        var e = RecordEncoder()
        let line = String(decoding: e.encode(.end(EndRecord(step: 3, t: 1, reason: .failed, finalLoss: 2,
                                                              bestValidationLoss: 1.5, message: "m", failure: .diverged))), as: UTF8.self)
        let order = EndField.table.fields.map { line.range(of: "\"\($0.rawValue)\":")?.lowerBound }
        #expect(!order.contains(nil) && order.map { $0! } == order.map { $0! }.sorted(), "\(line)")
        for field in EndField.table.required {
            // Drop the member from the line: the decoder names it.
            let pattern = "\"\(field)\":[^,}]*,?"
            let without = line.replacingOccurrences(of: pattern, with: "", options: .regularExpression)
                .replacingOccurrences(of: ",}", with: "}")
            do {
                _ = try RecordDecoder.record(Array(without.trimmingCharacters(in: .newlines).utf8))
                Issue.record("accepted without \(field): \(without)")
            } catch {
                #expect("\(error)".contains("\"\(field)\""), "\(error)")
            }
        }
    }
}
