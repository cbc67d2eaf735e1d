import Foundation
import Testing
@testable import RunFormat
@testable import Telemetry

private func line(_ r: Record) -> String {
    var e = RecordEncoder()
    return String(decoding: e.encode(r), as: UTF8.self)
}

private func decode(_ text: String) throws -> Record {
    try RecordDecoder.record(Array(text.utf8))
}

@Suite("Record coding")
struct RecordCodingTests {
    @Test("every record of a run round-trips exactly")
    func roundTrip() throws {
        var e = RecordEncoder()
        for r in Fixtures.records() {
            var bytes = e.encode(r)
            #expect(bytes.last == 0x0A)
            #expect(!bytes.dropLast().contains(0x0A), "a record must be one line")
            bytes.removeLast()
            #expect(try RecordDecoder.record(bytes) == r)
        }
    }

    @Test("the header round-trips, including a seed above 2^53")
    func header() throws {
        let h = Fixtures.header()
        var e = RecordEncoder()
        var bytes = e.encode(h)
        bytes.removeLast()
        let back = try HeaderDecoder.header(bytes)
        #expect(back == h)
        #expect(back.seed == 0xFFFF_FFFF_FFFF_FFF1)
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(text.hasPrefix(#"{"type":"header","schema":"gradflow.run/1.3""#))
        #expect(text.contains(#""start_iso":"2025-11-29T13:55:49Z""#))
    }

    @Test("step lines use the documented snake_case keys in a fixed order")
    func stepKeys() {
        var rng = TestRNG(seed: 3)
        let text = line(.step(Fixtures.step(7, rng: &rng)))
        let keys = ["\"type\":\"step\"", "\"step\":7", "\"t\":", "\"loss\":", "\"lr\":", "\"grad_norm\":", "\"clip_scale\":1",
                    "\"tokens_per_s\":", "\"step_ms\":", "\"axes\":{\"context\":{\"mode\":\"adaptive\",\"weight\":[",
                    "\"time\":", "\"depth\":{\"mode\":\"manual\"", "\"context_energy\":[[", "\"attention_mass\":[[",
                    "\"attention_mass_by_head\":[[[", "\"oscillation\":{\"flip_rate\":[", "\"grad_cos\":[", "\"rel_update\":[",
                    "\"spike\":false", "\"guard_fallbacks\":0"]
        var last = text.startIndex
        for k in keys {
            guard let r = text.range(of: k, range: last..<text.endIndex) else {
                Issue.record("missing or out of order: \(k) in \(text)")
                return
            }
            last = r.upperBound
        }
    }

    @Test("with less step detail, the arrays not built are checked but left empty; all else is the same",
          arguments: [RecordDecoder.StepDetail.noLayerArrays, .scalars])
    func withoutDetail(detail: RecordDecoder.StepDetail) throws {
        var e = RecordEncoder()
        for r in Fixtures.records(steps: 30) {
            let bytes = Array(e.encode(r).dropLast())
            let light = try bytes.withUnsafeBufferPointer { try RecordDecoder.record($0, stepDetail: detail) }
            if case var .step(full) = r {
                #expect(!full.attentionMassByHead.isEmpty && !full.axes.isEmpty && !full.oscillation.isEmpty)
                full.contextEnergyByLayer = []
                full.attentionMass = []
                full.attentionMassByHead = []
                if detail == .scalars {
                    full.axes = []
                    full.oscillation = []
                }
                #expect(light == .step(full))
            } else {
                #expect(light == r)
            }
        }
        let bads = [
            #"{"type":"step","step":1,"t":0,"loss":1,"lr":0,"grad_norm":0,"clip_scale":1,"tokens_per_s":0,"step_ms":0,"attention_mass":[[0.5,01]]}"#,
            #"{"type":"step","step":1,"t":0,"loss":1,"lr":0,"grad_norm":0,"clip_scale":1,"tokens_per_s":0,"step_ms":0,"axes":{"time":{"mode":"manual","weight":[1,],"energy":[2]}}}"#,
            #"{"type":"step","step":1,"t":0,"loss":1,"lr":0,"grad_norm":0,"clip_scale":1,"tokens_per_s":0,"step_ms":0,"oscillation":{"flip_rate":[0.5 0.2]}}"#,
            #"{"type":"step","step":1,"t":0,"loss":1,"lr":0,"grad_norm":0,"clip_scale":1,"tokens_per_s":0,"step_ms":0,"oscillation":{flip_rate:[]}}"#,
            #"{"type":"step","step":1,"t":0,"loss":1,"lr":0,"grad_norm":0,"clip_scale":1,"tokens_per_s":0,"step_ms":0,"attention_mass_by_head":[[[1e]]]}"#,
        ]
        for bad in bads {
            #expect(throws: JSONSyntaxError.self, "\(bad)") {
                try Array(bad.utf8).withUnsafeBufferPointer { try RecordDecoder.record($0, stepDetail: detail) }
            }
        }
    }

    @Test("statistics are written at single precision and read back exactly; scalars that need it keep Double")
    func singlePrecisionStatistics() throws {
        let r = StepRecord(step: 3, t: 1234.567890123, loss: 2.123456789012345, learningRate: 0.000123456789012,
                           gradNorm: 0.25334208748790843, clipScale: 1, tokensPerSecond: 15821.123456789,
                           stepMilliseconds: 64.71234567891,
                           attentionMass: [[0.25334208748790843, 1e-9, 3]], oscillation: [
                            OscillationSample(flipRate: 0.005791840178058586, gradientCosine: -0.5, relativeUpdate: 1e-40)])
        let text = line(.step(r))
        #expect(text.contains("\"t\":1234.567890123,\"loss\":2.123456789012345,\"lr\":0.000123456789012,"))
        #expect(text.contains("\"grad_norm\":0.2533421,") && text.contains("\"tokens_per_s\":15821.123,"))
        #expect(text.contains("\"attention_mass\":[[0.2533421,1e-09,3]]"))
        guard case let .step(back) = try decode(text) else { Issue.record("not a step"); return }
        #expect(back.t == r.t && back.loss == r.loss && back.learningRate == r.learningRate)
        #expect(back.gradNorm == Double(Float(r.gradNorm)))
        #expect(back.attentionMass == [[Double(Float(0.25334208748790843)), Double(Float(1e-9)), 3]])
        #expect(back.oscillation[0].relativeUpdate == Double(Float(1e-40)), "subnormal Floats survive")
        // A second round trip changes nothing.
        #expect(try decode(line(.step(back))) == .step(back))
    }

    @Test("update_cos is written when every group has it, read back exactly, and optional for older files")
    func updateCosine() throws {
        var r = StepRecord(step: 4, t: 1, loss: 2, learningRate: 1e-3, gradNorm: 1, clipScale: 1, tokensPerSecond: 10,
                           stepMilliseconds: 5)
        r.oscillation = [OscillationSample(flipRate: 0.25, gradientCosine: 0.5, relativeUpdate: 0.125, updateCosine: 0.75),
                         OscillationSample(flipRate: 0.5, gradientCosine: -0.5, relativeUpdate: 0.25, updateCosine: -0.25)]
        let text = line(.step(r))
        #expect(text.contains(#""grad_cos":[0.5,-0.5],"update_cos":[0.75,-0.25],"rel_update""#))
        #expect(try decode(text) == .step(r))
        var first = r
        first.oscillation[1].updateCosine = nil
        #expect(!line(.step(first)).contains("update_cos"), "omitted unless every group has it")
        let old = #"{"type":"step","step":1,"t":0,"loss":1,"lr":0,"grad_norm":0,"clip_scale":1,"tokens_per_s":0,"step_ms":0,"oscillation":{"flip_rate":[0.5],"grad_cos":[0.25],"rel_update":[0.125]}}"#
        guard case let .step(back) = try decode(old) else { Issue.record("not a step"); return }
        #expect(back.oscillation == [OscillationSample(flipRate: 0.5, gradientCosine: 0.25, relativeUpdate: 0.125)])
        let short = #"{"type":"step","step":1,"t":0,"loss":1,"lr":0,"grad_norm":0,"clip_scale":1,"tokens_per_s":0,"step_ms":0,"oscillation":{"flip_rate":[0.5,0.5],"grad_cos":[0.25,0.25],"update_cos":[1],"rel_update":[0.125,0.125]}}"#
        #expect(throws: JSONSyntaxError.self) { try decode(short) }
    }

    @Test("NaN losses are written as null and read back as NaN")
    func nanLoss() throws {
        let r = StepRecord(step: 1, t: 0, loss: .nan, learningRate: 1e-3, gradNorm: .infinity, clipScale: 1,
                           tokensPerSecond: 0, stepMilliseconds: 1)
        let text = line(.step(r))
        #expect(text.contains("\"loss\":null") && text.contains("\"grad_norm\":null"))
        guard case let .step(back) = try decode(text) else { Issue.record("not a step"); return }
        #expect(back.loss.isNaN && back.gradNorm.isNaN)
    }

    @Test("members may come in any order, and unknown members are ignored")
    func orderAndUnknown() throws {
        let text = #"{"future":{"x":[1,{"y":null}]},"t":1.5,"loss":2,"lr":0.1,"grad_norm":1,"clip_scale":1,"tokens_per_s":5,"step_ms":3,"type":"step","step":9,"new_scalar":7}"#
        guard case let .step(r) = try decode(text) else { Issue.record("not a step"); return }
        #expect(r.step == 9 && r.t == 1.5 && r.loss == 2 && r.axes.isEmpty)
    }

    @Test("bad records name what is wrong", arguments: [
        (#"{"type":"step","step":1}"#, "lacks member \"t\""),
        (#"{"type":"step","step":1,"step":2,"t":0}"#, "duplicate member \"step\""),
        (#"{"type":"bogus","step":1}"#, "unknown record type \"bogus\""),
        (#"{"step":1}"#, "missing member \"type\""),
        (#"{"type":"event","step":1,"t":0,"kind":"nope","source":"x"}"#, "unknown event kind \"nope\""),
        (#"{"type":"step","step":1.5,"t":0}"#, "expected an integer"),
        (#"{"type":"end","step":1,"t":0,"reason":"completed"} x"#, "after the end of the value"),
        (#"{"type":"header","schema":"gradflow.run/1"}"#, "a second header line"),
    ])
    func badRecords(_ text: String, _ expected: String) {
        do {
            _ = try decode(text)
            Issue.record("accepted: \(text)")
        } catch {
            #expect("\(error)".contains(expected), "\(error)")
        }
    }

    @Test("schema versions: same major with a higher minor is read, another major is refused")
    func schemaVersions() throws {
        #expect(HeaderDecoder.version(of: "gradflow.run/1")! == (1, 0))
        #expect(HeaderDecoder.version(of: "gradflow.run/1.7")! == (1, 7))
        #expect(HeaderDecoder.version(of: "gradflow.run/x") == nil)
        var h = Fixtures.header()
        h.schema = "gradflow.run/1.3"
        var e = RecordEncoder()
        var bytes = e.encode(h)
        bytes.removeLast()
        #expect(try HeaderDecoder.header(bytes).schema == "gradflow.run/1.3")
        h.schema = "gradflow.run/2.0"
        bytes = e.encode(h)
        bytes.removeLast()
        #expect(throws: HeaderDecoder.Problem.self) { try HeaderDecoder.header(bytes) }
        do { _ = try HeaderDecoder.header(bytes) } catch let p as HeaderDecoder.Problem {
            guard case .unsupportedSchema = p else { Issue.record("wrong problem \(p)"); return }
        }
    }
}
