import Foundation
import Testing
@testable import RunFormat
@testable import Telemetry

@Suite("Twin records")
struct TwinRecordTests {
    private func roundTrip(_ r: Record) throws -> (Record, String) {
        var e = RecordEncoder()
        var bytes = e.encode(r)
        bytes.removeLast()
        return (try RecordDecoder.record(bytes), String(decoding: bytes, as: UTF8.self))
    }

    @Test("twin samples, verdicts and rollbacks round-trip exactly")
    func roundTrip() throws {
        var step = StepRecord(step: 120, t: 3.5, loss: 2.25, learningRate: 1e-3, gradNorm: 0.5, clipScale: 1,
                              tokensPerSecond: 1000, stepMilliseconds: 10)
        step.twin = TwinSample(loss: 2.3, pairedSteps: 20, windowSteps: 200, changeStep: 100, delta: -0.0125,
                               low: -0.02, high: -0.005)
        let (s, text) = try roundTrip(.step(step))
        #expect(s == .step(step))
        #expect(text.contains(#""twin":{"loss":2.3,"steps":20,"of":200,"change_step":100,"delta":-0.0125,"ci":[-0.02,-0.005]}"#))
        step.twin = TwinSample(loss: 2.3, pairedSteps: 2, windowSteps: 200, changeStep: 100, delta: 0)
        #expect(try roundTrip(.step(step)).0 == .step(step))

        var verdict = EventRecord(step: 300, t: 9, kind: .verdict, axis: .context, band: 2, source: .twin,
                                  message: "context.long 1 → 4 at step 100: helped")
        verdict.verdict = VerdictInfo(changeStep: 100, word: .helped, delta: -0.012, low: -0.018, high: -0.006,
                                      steps: 200, partial: false,
                                      validation: [.init(name: "val:shakespeare", delta: -0.01), .init(name: "a-rather-long-domain-name-here", delta: 0.002)])
        let (v, vtext) = try roundTrip(.event(verdict))
        #expect(v == .event(verdict))
        #expect(vtext.contains(#""kind":"verdict""#) && vtext.contains(#""verdict":"helped""#) && vtext.contains(#""steps":200"#))
        verdict.verdict?.word = .noEffect
        verdict.verdict?.low = nil
        verdict.verdict?.high = nil
        verdict.verdict?.partial = true
        #expect(try roundTrip(.event(verdict)).0 == .event(verdict))

        var rollback = EventRecord(step: 350, t: 10, kind: .rollback, source: .divergenceGuard, message: "loss is nan")
        rollback.rollback = RollbackInfo(restoredStep: 300, stepsLost: 51, batchesSkipped: 51, reverted: ["context.long 1 → 4 (step 320)"])
        #expect(try roundTrip(.event(rollback)).0 == .event(rollback))
        for kind in [EventRecord.Kind.twin, .revert] {
            let e = EventRecord(step: 1, t: 0, kind: kind, source: .key, message: "m")
            #expect(try roundTrip(.event(e)).0 == .event(e))
        }
    }

    @Test("a 1.1 step line (no twin) still reads; an unknown verdict word is an error")
    func olderAndBadLines() throws {
        let old = #"{"type":"step","step":3,"t":0.5,"loss":2.5,"lr":0.001,"grad_norm":1,"clip_scale":1,"tokens_per_s":100,"step_ms":10}"#
        guard case let .step(s) = try RecordDecoder.record(Array(old.utf8)) else { Issue.record("not a step"); return }
        #expect(s.twin == nil && s.loss == 2.5)
        let bad = #"{"type":"event","step":3,"t":0.5,"kind":"verdict","source":"twin","message":"","verdict":"great"}"#
        #expect(throws: JSONSyntaxError.self) { try RecordDecoder.record(Array(bad.utf8)) }
        #expect(HeaderDecoder.version(of: RunHeader.currentSchema)! == (1, 3))
    }

    @Test("the verdict summary reads as the Events panel shows it")
    func summary() {
        let v = VerdictInfo(changeStep: 100, word: .helped, delta: -0.012, low: -0.018, high: -0.006, steps: 200,
                            partial: false, validation: [.init(name: "val:shakespeare", delta: -0.0101)])
        #expect(v.summary == "helped · train −0.012 nats [−0.018, −0.006] over 200 paired steps · val:shakespeare −0.010")
        #expect(Format.delta(0) == "0" && Format.delta(0.00021) == "+0.00021" && Format.delta(-0.0123) == "−0.012" && Format.delta(.nan) == "n/a")
        #expect(TwinSample(loss: 2, pairedSteps: 3, windowSteps: 200, changeStep: 5, delta: 0).summary == "paired Δ 0 3/200")
    }
}

@Suite("Twin exports")
struct TwinExportTests {
    /// The fixture run with a twin window on steps 10–19 and its verdict at step 20.
    func twinRun(in dir: String) throws -> (String, [Record]) {
        var records: [Record] = []
        for r in Fixtures.records(steps: 30) {
            if case var .step(s) = r, (10..<20).contains(s.step) {
                s.twin = TwinSample(loss: s.loss + 0.25, pairedSteps: s.step - 9, windowSteps: 10, changeStep: 10,
                                    delta: -0.25, low: s.step >= 13 ? -0.3 : nil, high: s.step >= 13 ? -0.2 : nil)
                records.append(.step(s))
            } else {
                records.append(r)
            }
        }
        var v = EventRecord(step: 20, t: 20, kind: .verdict, axis: .context, band: 2, source: .twin,
                            message: "context.long 1 → 1.5 at step 10: helped · train −0.250 nats")
        v.verdict = VerdictInfo(changeStep: 10, word: .helped, delta: -0.25, low: -0.3, high: -0.2, steps: 10, partial: false,
                                validation: [.init(name: "val:train-val", delta: -0.1)])
        records.append(.event(v))
        return (try Fixtures.writeRun(in: dir, records: records), records)
    }

    @Test("CSV carries the twin's loss, d_t and the running interval, and the verdict in events")
    func csv() throws {
        let dir = Fixtures.tempDirectory()
        defer { Fixtures.cleanup(dir) }
        let (run, _) = try twinRun(in: dir)
        let out = dir + "/out.csv"
        try CSVExporter.export(run: run, to: out)
        let lines = try String(contentsOfFile: out, encoding: .utf8).split(separator: "\n").map(String.init)
        let columns = lines[0].split(separator: ",").map(String.init)
        for c in ColumnLayout.twinNames { #expect(columns.contains(c), "missing \(c)") }
        func row(_ step: Int) -> [String: String] {
            let cells = lines.first { $0.hasPrefix("\(step),") }!.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            return Dictionary(uniqueKeysWithValues: zip(columns, cells.prefix(columns.count)))
        }
        #expect(Double(row(15)["twin.d"]!).map { abs($0 + 0.25) < 1e-9 } == true)
        #expect(Double(row(15)["twin.ci_low"]!) == -0.3)
        #expect(Double(row(25)["twin.loss"]!)?.isNaN ?? true)
        #expect(lines.contains { $0.contains("verdict context/long [twin]") && $0.contains("helped") })
        // A run without twins has no twin columns.
        try FileManager.default.createDirectory(atPath: dir + "/plain", withIntermediateDirectories: true)
        let plain = try Fixtures.writeRun(in: dir + "/plain", records: Fixtures.records(steps: 5))
        #expect(!(try ColumnLayout.scan(path: plain)).layout.names.contains("twin.loss"))
    }

    @Test("TensorBoard gets twin and verdict scalars")
    func tensorboardValues() throws {
        let e = EventRecord(step: 1, t: 0, kind: .verdict, source: .twin)
        #expect(ColumnLayout.verdictValues(e).isEmpty)
        var v = e
        v.verdict = VerdictInfo(changeStep: 0, word: .hurt, delta: 0.1, low: 0.05, high: 0.15, steps: 20, partial: true,
                                validation: [.init(name: "val:x", delta: 0.2)])
        let values = Dictionary(uniqueKeysWithValues: ColumnLayout.verdictValues(v))
        #expect(values["verdict.delta"] == 0.1 && values["verdict.ci_high"] == 0.15 && values["verdict.x.val_delta"] == 0.2)
        #expect(TensorBoardExporter.tag("twin.delta") == "twin/delta")
        let dir = Fixtures.tempDirectory()
        defer { Fixtures.cleanup(dir) }
        let (run, _) = try twinRun(in: dir)
        let file = try TensorBoardExporter.export(run: run, to: dir + "/tb")
        let bytes = try Data(contentsOf: URL(fileURLWithPath: file))
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(text.contains("twin/loss") && text.contains("verdict/delta"))
    }
}
