import Foundation
import Testing
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

        var verdict = EventRecord(step: 300, t: 9, kind: .verdict, axis: .context, band: 2, source: "twin",
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

        var rollback = EventRecord(step: 350, t: 10, kind: .rollback, source: "guard", message: "loss is nan")
        rollback.rollback = RollbackInfo(restoredStep: 300, stepsLost: 51, batchesSkipped: 51, reverted: ["context.long 1 → 4 (step 320)"])
        #expect(try roundTrip(.event(rollback)).0 == .event(rollback))
        for kind in [EventRecord.Kind.twin, .revert] {
            let e = EventRecord(step: 1, t: 0, kind: kind, source: "key", message: "m")
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
        #expect(HeaderDecoder.version(of: RunHeader.currentSchema)! == (1, 2))
    }

    @Test("the verdict summary reads as the Events panel shows it")
    func summary() {
        let v = VerdictInfo(changeStep: 100, word: .helped, delta: -0.012, low: -0.018, high: -0.006, steps: 200,
                            partial: false, validation: [.init(name: "val:shakespeare", delta: -0.0101)])
        #expect(v.summary == "helped · train −0.012 nats [−0.018, −0.006] over 200 paired steps · val:shakespeare −0.010")
    }
}
