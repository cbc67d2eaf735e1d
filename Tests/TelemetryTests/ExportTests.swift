import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing
@testable import RunFormat
@testable import Telemetry

/// The package root, found from this file's path (Tests/TelemetryTests/ExportTests.swift).
private let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

@Suite("Exports")
struct ExportTests {
    @Test("CSV: one row per step, named columns, eval values on eval rows, events described")
    func csv() throws {
        let dir = Fixtures.tempDirectory()
        defer { Fixtures.cleanup(dir) }
        let records = Fixtures.records(steps: 40)
        let run = try Fixtures.writeRun(in: dir, records: records)
        let out = dir + "/out.csv"
        #expect(try CSVExporter.export(run: run, to: out) == 40)
        let lines = try String(contentsOfFile: out, encoding: .utf8).split(separator: "\n").map(String.init)
        #expect(lines.count == 41)
        let columns = lines[0].split(separator: ",").map(String.init)
        for c in ["step", "t", "loss", "lr", "context.local.weight", "context.long.energy", "time.high.weight", "depth.upper.weight",
                  "oscillation.lower.flip_rate", "oscillation.upper.rel_update", "attention.long_range_mass", "attention_mass.L3.long",
                  "context_energy.L0.local", "attention_mass.L3.H3.long", "val.train-val.loss", "val.sonnets.bpb", "context_gain.8", "events"] {
            #expect(columns.contains(c), "missing column \(c)")
        }
        func row(_ step: Int) -> [String: String] {
            let cells = lines.first { $0.hasPrefix("\(step),") }!.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            return Dictionary(uniqueKeysWithValues: zip(columns, cells.prefix(columns.count)))
        }
        guard case let .step(s20) = records.first(where: { $0.step == 20 && { if case .step = $0 { return true }; return false }($0) })! else { return }
        let r20 = row(20)
        #expect(Double(r20["loss"]!) == s20.loss)
        #expect(Double(r20["context.local.weight"]!) == s20.axes[0].bands[0].weight)
        #expect(Double(r20["val.train-val.loss"]!) == 2.3)
        #expect(row(21)["val.train-val.loss"] == "")
        #expect(row(30)["events"]!.contains("weight context/long (all layers) 1.00 -> 1.50 [key]"))
        // The trainer's own numbering: an eval carries the steps completed (the index of the step
        // record it follows + 1), and lands on that row.
        let trainerStyle = records.map { r -> Record in
            guard case var .eval(e) = r else { return r }
            e.step += 1
            return .eval(e)
        }
        let dir2 = Fixtures.tempDirectory("csv-trainer-style")
        defer { Fixtures.cleanup(dir2) }
        try CSVExporter.export(run: try Fixtures.writeRun(in: dir2, records: trainerStyle), to: dir2 + "/out.csv")
        let row20 = try String(contentsOfFile: dir2 + "/out.csv", encoding: .utf8).split(separator: "\n").first { $0.hasPrefix("20,") }!
        #expect(row20.split(separator: ",", omittingEmptySubsequences: false)[columns.firstIndex(of: "val.train-val.loss")!] == "2.3")
        // No overwrite without force.
        #expect(throws: RunFileError.self) { try CSVExporter.export(run: run, to: out) }
        #expect(try CSVExporter.export(run: run, to: out, force: true) == 40)
        // Not even --force replaces the run file being exported, or a checkpoint.
        let before = try Data(contentsOf: URL(fileURLWithPath: run))
        #expect(throws: RunFileError.self) { try CSVExporter.export(run: run, to: run, force: true) }
        #expect(try Data(contentsOf: URL(fileURLWithPath: run)) == before)
        let checkpoint = (run as NSString).deletingLastPathComponent + "/ckpt-000010.gfck"
        try Data("not really".utf8).write(to: URL(fileURLWithPath: checkpoint))
        #expect(throws: RunFileError.self) { try SVGExporter.export(run: run, to: checkpoint, force: true) }
        #expect(try String(contentsOfFile: checkpoint, encoding: .utf8) == "not really")
    }

    @Test("A resumed session replaces the steps after its checkpoint: CSV rows, TensorBoard events and the summary count each step once")
    func resumedRunIsExportedAsItCameToBe() throws {
        let dir = Fixtures.tempDirectory()
        defer { Fixtures.cleanup(dir) }
        // Steps 1…40 (eval at 20 and 40), killed; resumed from step 20 (steps 20… again, other
        // losses), killed; resumed from step 30 (a third session) to the end.
        func session(seed: UInt64, from s: Int) -> [Record] {
            Fixtures.records(steps: 40, seed: seed).filter { r in
                switch r {
                case let .step(x): return x.step >= s
                case let .eval(e): return e.step > s
                case .end: return true
                default: return false
                }
            }
        }
        func resume(_ s: Int) -> Record {
            .event(EventRecord(step: s, t: Double(s), kind: .resume_run, source: .trainer, message: "resumed from step \(s)"))
        }
        var first = Fixtures.records(steps: 40)
        first.removeLast()   // killed: no end record
        var second = session(seed: 7, from: 20)
        second.removeLast()
        let third = session(seed: 9, from: 30)
        let all = first + [resume(20)] + second + [resume(30)] + third
        let run = try Fixtures.writeRun(in: dir, records: all)
        func loss(_ records: [Record], _ step: Int) -> Double {
            for r in records { if case let .step(x) = r, x.step == step { return x.loss } }
            return .nan
        }

        let out = dir + "/out.csv"
        #expect(try CSVExporter.export(run: run, to: out) == 40, "steps 1…40 once each")
        let rows = try String(contentsOfFile: out, encoding: .utf8).split(separator: "\n").dropFirst()
        #expect(rows.map { Int($0.prefix { $0 != "," })! } == Array(1...40))
        // Each row is the last session's that did its step (index S included: the resume redoes it).
        for (step, from) in [(19, first), (20, second), (29, second), (30, third), (40, third)] {
            #expect(rows.first { $0.hasPrefix("\(step),") }!.contains(",\(loss(from, step)),"), "step \(step)")
        }
        // TensorBoard: the file's version event, 40 steps and the evaluations kept (20 from the
        // first session, 40 from the third).
        let tb = try TensorBoardExporter.export(run: run, to: dir + "/tb")
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: tb)))
        var frames = 0, at = 0
        while at + 12 <= bytes.count {
            let length = (0..<8).reduce(0) { $0 | Int(bytes[at + $1]) << (8 * $1) }
            at += 12 + length + 4
            frames += 1
        }
        #expect(at == bytes.count && frames == 1 + 40 + 2, "\(frames) events")
        let summary = try RunSummary.read(path: run)
        #expect(summary.stepRecords == 40 && summary.finalLoss == loss(third, 40) && summary.end?.reason == .completed)
        #expect(summary.lastEval?.step == 40 && summary.checkpoints == 1, "the checkpoint at 20 counts once, none after 30")
        let svg = try SVGExporter.export(run: run, to: dir + "/out.svg")
        #expect(svg.contains("<svg") && svg.contains("</svg>"))
        var replaced = ReplacedRecords()
        for r in all { replaced.note(r) }
        let kept = all.filter { replaced.keep($0) }
        #expect(kept.filter { if case .end = $0 { return true }; return false }.count == 1)
        #expect(kept.contains { if case let .event(e) = $0 { return e.kind == .weight }; return false }, "events stay")
    }

    @Test("Validation columns drop the held-out prefix unless another domain has the bare name")
    func validationColumnNames() {
        var layout = ColumnLayout()
        layout.domains = ["val:shakespeare", "sonnets"]
        #expect(layout.evalNames == ["val.shakespeare.loss", "val.shakespeare.bpb", "val.sonnets.loss", "val.sonnets.bpb"])
        layout.domains = ["val:sonnets", "sonnets"]
        #expect(layout.evalNames.prefix(3) == ["val.val:sonnets.loss", "val.val:sonnets.bpb", "val.sonnets.loss"])
        // A verdict's validation deltas are named the same way.
        var event = EventRecord(step: 250, t: 1, kind: .verdict, source: .trainer)
        event.verdict = VerdictInfo(changeStep: 50, word: .noEffect, delta: 0, low: nil, high: nil, steps: 200, partial: false,
                                    validation: [.init(name: "val:shakespeare", delta: -0.01), .init(name: "sonnets", delta: 0.02)])
        #expect(ColumnLayout.verdictValues(event).map(\.0).suffix(2) == ["verdict.shakespeare.val_delta", "verdict.sonnets.val_delta"])
    }

    @Test("ResumeRule: a resume at S replaces step records from index S, evaluations and checkpoints after S, an end record")
    func resumeRuleBoundaries() {
        var rng = TestRNG(seed: 3)
        let s = 20
        #expect(ResumeRule.replaces(.step(Fixtures.step(s, rng: &rng)), resumedAt: s))
        #expect(!ResumeRule.replaces(.step(Fixtures.step(s - 1, rng: &rng)), resumedAt: s))
        func eval(_ step: Int) -> Record { .eval(EvalRecord(step: step, t: 0, domains: [])) }
        func checkpoint(_ step: Int) -> Record { .checkpoint(CheckpointRecord(step: step, t: 0, path: "c", bytes: 1, milliseconds: 1)) }
        #expect(!ResumeRule.replaces(eval(s), resumedAt: s) && ResumeRule.replaces(eval(s + 1), resumedAt: s))
        #expect(!ResumeRule.replaces(checkpoint(s), resumedAt: s) && ResumeRule.replaces(checkpoint(s + 1), resumedAt: s))
        #expect(ResumeRule.replaces(.end(EndRecord(step: 5, t: 0, reason: .completed, finalLoss: nil, bestValidationLoss: nil)), resumedAt: s))
        #expect(!ResumeRule.replaces(.event(EventRecord(step: s + 5, t: 0, kind: .weight, source: .key)), resumedAt: s))
    }

    @Test("TFRecord framing: CRC32C and masking as TensorFlow defines them")
    func crc() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
        let framed = TensorBoardExporter.frame([1, 2, 3])
        #expect(framed.count == 8 + 4 + 3 + 4)
        #expect(Array(framed[0..<8]) == [3, 0, 0, 0, 0, 0, 0, 0])
        var p = ProtoWriter()
        p.varint(field: 2, 300)
        #expect(p.bytes == [0x10, 0xAC, 0x02])
    }

    @Test("TensorBoard: the real tensorboard reader finds the tags, steps and values")
    func tensorboard() throws {
        let env = ProcessInfo.processInfo.environment
        if env["GRADFLOW_SKIP_PYTHON_TESTS"] == "1" { return }
        let python = env["GRADFLOW_PYTHON"] ?? packageRoot + "/.venv-tools/bin/python"
        guard FileManager.default.isExecutableFile(atPath: python) else {
            Issue.record("""
                No Python with tensorboard at \(python). Create it with
                  python3 -m venv .venv-tools && .venv-tools/bin/pip install tensorboard
                in the package root, or set GRADFLOW_PYTHON to an interpreter that has tensorboard,
                or set GRADFLOW_SKIP_PYTHON_TESTS=1 to skip this test.
                """)
            return
        }
        let dir = Fixtures.tempDirectory()
        defer { Fixtures.cleanup(dir) }
        let records = Fixtures.records(steps: 40)
        let run = try Fixtures.writeRun(in: dir, records: records)
        let file = try TensorBoardExporter.export(run: run, to: dir + "/tb")
        #expect(file.hasSuffix("events.out.tfevents.1764424549.gradflow"))
        #expect(throws: RunFileError.self) { try TensorBoardExporter.export(run: run, to: dir + "/tb") }

        let p = Process()
        p.executableURL = URL(fileURLWithPath: python)
        p.arguments = [packageRoot + "/tools/read_tensorboard.py", dir + "/tb"]
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        let errors = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(p.terminationStatus == 0, "read_tensorboard.py failed: \(errors)")
        let scalars = try JSONSerialization.jsonObject(with: data) as? [String: [[Any]]] ?? [:]
        for tag in ["train/loss", "train/lr", "context/local/weight", "time/high/weight", "depth/upper/energy",
                    "oscillation/lower/flip_rate", "attention/long_range_mass", "val/train-val/loss", "val/sonnets/bpb", "context_gain/32"] {
            #expect(scalars[tag] != nil, "tag \(tag) missing; have \(scalars.keys.sorted())")
        }
        let steps = records.compactMap { if case let .step(s) = $0 { return s }; return nil }
        let loss = scalars["train/loss"] ?? []
        #expect(loss.count == steps.count)
        for (point, s) in zip(loss, steps) {
            #expect(point[0] as? Int == s.step)
            #expect(abs((point[1] as? Double ?? 0) - (1_764_424_549.25 + s.t)) < 1e-3)
            #expect(Float(point[2] as? Double ?? .nan) == Float(s.loss))
        }
        let weights = scalars["context/long/weight"] ?? []
        #expect(weights.count == steps.count && Float(weights[5][2] as? Double ?? .nan) == Float(steps[5].axes[0].bands[2].weight))
        let val = scalars["val/train-val/loss"] ?? []
        #expect(val.map { $0[0] as? Int } == [20, 40])
        #expect(Float(val[0][2] as? Double ?? .nan) == Float(2.3))
    }

    @Test("SVG: well-formed, with the curves, 1-2-5 ticks, legend and event marks")
    func svg() throws {
        let dir = Fixtures.tempDirectory()
        defer { Fixtures.cleanup(dir) }
        let run = try Fixtures.writeRun(in: dir, records: Fixtures.records(steps: 100))
        let text = try SVGExporter.export(run: run, to: dir + "/loss.svg")
        let parser = XMLParser(data: Data(text.utf8))
        #expect(parser.parse(), "not well-formed XML: \(parser.parserError as Any)")
        #expect(text.components(separatedBy: "<polyline").count - 1 == 3)   // train + 2 domains
        #expect(text.contains(">val sonnets</text>") && text.contains(">train</text>") && text.contains(">weight change</text>"))
        #expect(text.contains("stroke-dasharray=\"4 3\"><title>step 30: context/long 1.50</title>"), "the band is named")
        let mode = EventRecord(step: 5, t: 1, kind: .mode, axis: .depth, oldValue: 0, newValue: 1, source: .key, message: "")
        #expect(SVGExporter.Curves.markLabel(mode, header: Fixtures.header()) == "depth adaptive")
        #expect(SVGLineChart.label(-1e-17) == "0" && SVGLineChart.label(0.25) == "0.25", "no '-0' tick")
        #expect(Ticks.values(0, 100) == [0, 20, 40, 60, 80, 100])
        #expect(Ticks.values(1.3, 2.9) == [1.4, 1.6, 1.8, 2.0, 2.2, 2.4, 2.6, 2.8])
        #expect(Ticks.values(1.3, 2.9, count: 3) == [1.5, 2.0, 2.5])
        #expect(Ticks.values(0.1, 0.7) == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7])
        #expect(Ticks.values(0, 1_000_000) == [0, 200_000, 400_000, 600_000, 800_000, 1_000_000])
        #expect(throws: RunFileError.self) { try SVGExporter.export(run: run, to: dir + "/loss.svg") }
    }

    @Test("the SVG's training curve stays bounded however many steps there are")
    func svgDecimation() {
        var c = SVGExporter.Curves()
        for i in 0..<100_000 {
            c.add(.step(StepRecord(step: i, t: Double(i), loss: 3 - Double(i) / 100_000, learningRate: 0, gradNorm: 0, clipScale: 1, tokensPerSecond: 0, stepMilliseconds: 0)))
        }
        let points = c.trainPoints
        #expect(points.count <= SVGExporter.maxPoints + 1 && points.count >= SVGExporter.maxPoints / 4)
        #expect(points.map(\.x) == points.map(\.x).sorted())
        #expect(abs(points.first!.y - 3) < 0.01 && abs(points.last!.y - 2) < 0.01)
    }
}
