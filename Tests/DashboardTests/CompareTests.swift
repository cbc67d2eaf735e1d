import Telemetry
import Terminal
import Testing
import Themes
@testable import Dashboard

@Suite struct CompareTests {
    /// The synthetic header with batch and context in its config.
    func header(name: String, batch: Int = 8, preset: String = "S") -> RunHeader {
        var h = SyntheticRun.header()
        h.runName = name
        h.preset = preset
        h.config = .object([("preset", .string(preset)), ("batch", .number(Double(batch))), ("context", .number(128))])
        return h
    }

    func state(references: [ReferenceRun], size: Size) -> DashboardState {
        var state = DashboardState(mode: .replay, canControl: false, themeNames: BuiltinThemes.names)
        state.references = references
        _ = state.apply(.header(header(name: "tuned")))
        _ = state.apply(.resize(size))
        _ = state.apply(.records(SyntheticRun.records(steps: 1240)))
        return state
    }

    /// The synthetic run with every train loss raised by `train` and every validation loss by `val`.
    func shifted(_ records: [Record], train: Double, val: Double) -> [Record] {
        records.map { r in
            switch r {
            case var .step(s): s.loss += train; return .step(s)
            case var .eval(e): e.domains = e.domains.map { DomainEval(name: $0.name, loss: $0.loss + val) }; return .eval(e)
            default: return r
            }
        }
    }

    @Test(arguments: [(80, 24), (120, 40), (150, 44), (200, 60)])
    func legendNamesEachReferenceWithItsDifferenceAtTheLatestStep(width: Int, height: Int) {
        let base = ReferenceRun(header: header(name: "plain"), records: shifted(SyntheticRun.records(steps: 1240), train: 0.25, val: 0.1))
        let other = ReferenceRun(header: header(name: "wide-M", preset: "M"), records: shifted(SyntheticRun.records(steps: 1240), train: -0.5, val: -0.2))
        let text = screen(state(references: [base, other], size: Size(width: width, height: height)), width, height).text
        #expect(text.contains(width >= 120 ? "┄ plain Δ train −0.250 val:plays −0.100" : "┄ plain Δ train −0.250"), "\(width)×\(height):\n\(text)")
        if width >= 150 {
            #expect(text.contains("val:sonnets −0.100 val:fortunes −0.100"), "every shared domain at \(width)×\(height)")
        }
        if width >= 120 {
            #expect(text.contains("┄ wide-M (preset M) Δ train +0.500 val:plays +0.200"), "\(width)×\(height):\n\(text)")
        }
        #expect(text.contains("best val"), "the panel's own line stays")
    }

    @Test func byTokensWhenBatchDiffersAndOtherDataIsLabelled() {
        // The reference trains on twice the tokens per step: its step k lines up with step 2k here.
        var h = header(name: "big-batch", batch: 16)
        h.data = [DataSourceInfo(name: "train", path: "other.txt", bytes: 10, hash: "ff")]
        let main = SyntheticRun.records(steps: 1240)
        var records: [Record] = []
        for case let .step(s) in main where s.step % 2 == 0 {
            var t = s
            t.step = s.step / 2
            records.append(.step(t))
        }
        let ref = ReferenceRun(header: h, records: records)
        let s = state(references: [ref], size: Size(width: 150, height: 44))
        let rows = ReferenceLegend.rows(s, rows: 3)
        #expect(rows.count == 1)
        #expect(rows[0].label == "by tokens, other data")
        #expect(rows[0].train.lastX == 2 * (records.last?.step ?? 0))
        #expect(rows[0].train.firstX == 2 * (records.first?.step ?? -1))
        let train = rows[0].differences.first { $0.name == "train" }?.delta
        #expect(train.map { abs($0) < 0.05 } == true, "aligned by tokens the curves coincide: \(String(describing: train))")
        #expect(rows[0].validation.isEmpty, "no validation domain in common")
        #expect(screen(s, 150, 44).text.contains("┄ big-batch (by tokens, other data) Δ train"))
    }

    @Test func aShorterReferenceIsNotComparedWithItsLastValue() {
        let ref = ReferenceRun(header: header(name: "short"), records: shifted(SyntheticRun.records(steps: 600), train: 0, val: 0))
        let rows = ReferenceLegend.rows(state(references: [ref], size: Size(width: 150, height: 44)), rows: 3)
        #expect(rows[0].differences.first?.delta == nil)
        #expect(screen(state(references: [ref], size: Size(width: 150, height: 44)), 150, 44).text.contains("┄ short Δ train –"))
    }

    @Test func valueNearInterpolatesBucketMeans() {
        var s = DecimatedSeries(capacity: 8)
        for x in [10, 20, 30] { s.append(x: x, Double(x)) }
        #expect(s.value(near: 15) == 15)
        #expect(s.value(near: 30) == 30)
        #expect(s.value(near: 5) == nil)
        #expect(s.value(near: 100) == nil)
    }

    @Test func everyThemeHasReferenceColours() throws {
        for name in BuiltinThemes.names {
            let text = try #require(BuiltinThemes.text[name])
            for key in ["ref_1", "ref_2", "ref_3"] { #expect(text.contains(key), "\(name) lacks \(key)") }
        }
    }
}
