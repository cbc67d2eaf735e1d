import Telemetry
import Terminal
import Testing
import Themes
@testable import Dashboard

@Suite struct ViewTests {
    @Test(arguments: [(80, 24), (120, 40), (150, 44), (200, 60)])
    func everyPanelAppears(width: Int, height: Int) {
        let text = screen(makeState(), width, height).text
        for title in ["Loss", "Scales", "Oscillation", "Long-range attention", "Events"] {
            #expect(text.contains(title), "\(title) missing at \(width)×\(height)")
        }
        #expect(text.contains("step 1,241/5,000"), "step records 1…1240 are steps 0-based: 1,241 done")
        #expect(text.contains("RUNNING"))
        #expect(text.contains("▶"), "selected band marker")
        #expect(text.contains("local"))
        #expect(text.contains("flip"))
        #expect(text.contains("q quit"))
    }

    @Test func wideLayoutShowsTheTargetPicturesDetails() {
        let text = screen(makeState(), 150, 44).text
        #expect(text.contains("shakespeare 1.0 MB · preset S · 842k params"))
        #expect(text.contains("tok/s"))
        #expect(text.contains("ETA"))
        #expect(text.contains("val:plays ━"))
        #expect(text.contains("▼ long ×1.36 @610"), "weight-change marker on the loss chart")
        #expect(text.contains("best val 1.502 @1,200"))
        #expect(text.contains("context"))
        #expect(text.contains("65–127"))
        #expect(text.contains("1.36 A"))
        #expect(text.contains("62%"))
        #expect(text.contains("guard fallbacks: time 3"))
        #expect(text.contains("range 0.50–4.00"))
        #expect(text.contains("cos +0.22"))
        #expect(text.contains("spikes (>1.2× median50): 2 · last at step 999"))
        #expect(text.contains("ΔL(8) 0.61"))
        #expect(text.contains("loss by position:"))
        #expect(text.contains("(0 → 127)"))
        #expect(text.contains("▲ weight"))
        #expect(text.contains("context.long 1.00 → 1.36"))
        #expect(text.contains("unpaired before → after: long"), "the Events line labels before → after as unpaired (cut at the panel width)")
        #expect(text.contains("■ checkpoint"))
        #expect(text.contains("run file runs/synthetic/run.jsonl"))
        #expect(text.contains("256 colours"))
        // Focused panel has the heavy border.
        #expect(text.contains("┏━ ²Scales"))
        #expect(text.contains("┌─ ¹Loss"))
    }

    @Test func yTicksAndXTicksUseRoundSteps() {
        let s = screen(makeState(), 150, 44)
        let text = s.text
        #expect(text.contains("4┤") || text.contains("4.0┤"))
        #expect(text.contains(" 500 ") && text.contains("1,000"))
    }

    @Test func selectedRowIsHighlighted() {
        var state = makeState()
        _ = press(&state, .down, .down)
        let s = screen(state, 150, 44)
        let row = (0..<44).first { s.text(row: $0).contains("▶") && s.text(row: $0).contains("long") }
        #expect(row != nil)
        if let row {
            let x = s.text(row: row).unicodeScalars.firstIndex(of: "▶").map { s.text(row: row).unicodeScalars.distance(from: s.text(row: row).unicodeScalars.startIndex, to: $0) }!
            #expect(s.cell(x: x + 4, y: row).bg == Theme.default[.selected_bg])
        }
    }

    @Test func smoothingKeepsTheRawEnvelopeDim() {
        var state = makeState()
        func dimDots(_ s: BufferScreen) -> Int {
            var n = 0
            for y in 2..<17 { for x in 1..<90 {
                let c = s.cell(x: x, y: y)
                if (0x2801...0x28FF).contains(c.character.value) && c.attributes.contains(.dim) { n += 1 }
            } }
            return n
        }
        #expect(dimDots(screen(state, 150, 44)) == 0)
        _ = press(&state, .character("s"), .character("s"))
        let smoothed = screen(state, 150, 44)
        #expect(dimDots(smoothed) > 0, "raw min/max drawn dim under the smoothed line")
        #expect(smoothed.text.contains("smooth 0.9"))
    }

    @Test func helpOverlayListsKeys() {
        var state = makeState()
        _ = press(&state, .character("?"))
        let text = screen(state, 150, 44).text
        #expect(text.contains("Help · keys"))
        #expect(text.contains("undo your last change"))
        #expect(text.contains("selected weight ×2 / ÷2"))
        _ = press(&state, .character("x"))
        #expect(!screen(state, 150, 44).text.contains("Help · keys"))
    }

    @Test func replayHelpAndFooterShowReplayKeys() {
        var state = makeState(mode: .replay)
        _ = state.apply(.replayStatus(ReplayStatus(speed: 4, paused: false, position: 1240, finished: false, generation: 0)))
        let text = screen(state, 150, 44).text
        #expect(text.contains("REPLAY ×4"))
        #expect(text.contains("←→ seek"))
        #expect(text.contains("[ ] speed"))
        _ = press(&state, .character("h"))
        #expect(screen(state, 150, 44).text.contains("replay slower / faster"))
    }

    @Test(arguments: [(79, 24), (80, 23), (40, 10)])
    func tooSmallSaysWhatItNeeds(width: Int, height: Int) {
        let text = screen(makeState(), width, height).text
        #expect(text.contains("needs 80×24, have \(width)×\(height)"))
        #expect(!text.contains("Scales"))
    }

    /// Bug: in a finished 2,000-step run the validation lines stopped at the step-1,500 eval (the
    /// final eval, recorded at step 2,000, fell outside the chart's steps) and the header said
    /// `step 1,999/2,000`.
    @Test func finishedRunDrawsItsFinalEvalAndCountsEveryStep() {
        var state = DashboardState(mode: .replay, canControl: false, themeNames: BuiltinThemes.names)
        _ = state.apply(.header(SyntheticRun.header(totalSteps: 2000)))
        _ = state.apply(.resize(Size(width: 150, height: 44)))
        var records: [Record] = []
        for i in 0..<2000 {
            records.append(.step(SyntheticRun.step(i)))
            if (i + 1) % 500 == 0 {
                // Evals land at the step count: 500, 1000, 1500, 2000; the last one is distinct.
                var e = SyntheticRun.eval(i + 1)
                if i + 1 == 2000 { e.domains[0].loss = 0.5 }
                records.append(.eval(e))
            }
        }
        records.append(.end(EndRecord(step: 2000, t: 200, reason: .completed, finalLoss: 1.3, bestValidationLoss: 0.5, message: "")))
        _ = state.apply(.records(records))
        #expect(state.xRange.upperBound == 2000, "the chart's steps reach the final eval")
        let text = screen(state, 150, 44).text
        #expect(text.contains("2,000/2,000"), "a finished run has done every step")
        #expect(!text.contains("1,999/2,000"))
        // The final eval's value is the latest point of its line (the right-edge label).
        #expect(state.data.validation[0].last == 0.5)
        let cols = state.data.validation[0].columns(xRange: state.xRange, count: 40)
        #expect(cols.last??.last == 0.5, "the last column of the validation line holds the final eval")
    }

    @Test func expandedPanelTakesTheBody() {
        var state = makeState()
        _ = press(&state, .character("e"))
        let text = screen(state, 120, 40).text
        #expect(text.contains("²Scales"))
        #expect(!text.contains("³Oscillation"))
        #expect(!text.contains("⁵Events"))
        #expect(screen(state, 120, 40).text.contains("weight trend"), "expanded scales show more columns")
        #expect(screen(state, 120, 40).text.contains("0.25–1.00"), "time.high shows its adaptive bounds from the one table")
        _ = press(&state, .escape)
        #expect(screen(state, 120, 40).text.contains("Events"))
    }

    @Test func hiddenPanelsReflow() {
        var state = makeState()
        _ = press(&state, .character("3"), .character("4"))
        let text = screen(state, 150, 44).text
        #expect(!text.contains("³Oscillation"))
        #expect(!text.contains("⁴Long-range attention"))
        #expect(text.contains("⁵Events"))
        _ = press(&state, .character("3"))
        #expect(screen(state, 150, 44).text.contains("³Oscillation"))
    }

    @Test func graphStylesDrawDifferentGlyphs() {
        var state = makeState()
        let braille = screen(state, 150, 44).text
        #expect(braille.unicodeScalars.contains { (0x2801...0x28FF).contains($0.value) })
        _ = press(&state, .character("g"))
        let block = screen(state, 150, 44).text
        #expect(block.contains("▀") || block.contains("▄"))
        #expect(!block.unicodeScalars.contains { (0x2801...0x28FF).contains($0.value) })
        _ = press(&state, .character("g"))
        #expect(state.graphStyle == .ascii)
    }

    @Test func refusalShowsInStatusLine() {
        var state = makeState()
        _ = state.apply(.records([.event(EventRecord(step: 1241, t: 1, kind: .refused, axis: .context, band: 2,
                                                      source: .trainer, message: "context.long above ceiling 4.00"))]))
        let text = screen(state, 150, 44).text
        #expect(text.contains("refused: context.long above ceiling 4.00"))
        #expect(text.contains("✗ refused"))
    }

    @Test func emptyStateWaitsForHeader() {
        let state = DashboardState(mode: .live, canControl: true)
        let text = screen(state, 120, 40).text
        #expect(text.contains("waiting for the run header"))
        #expect(text.contains("WAITING"))
    }

    @Test func finishedRunSaysSo() {
        var state = makeState()
        _ = state.apply(.records([.end(EndRecord(step: 1240, t: 122, reason: .completed, finalLoss: 1.37, bestValidationLoss: 1.50))]))
        let text = screen(state, 150, 44).text
        #expect(text.contains("FINISHED"))
        #expect(text.contains("run completed · final loss 1.370"))
    }

    @Test("a paused run shows no speed and no ETA: the last step's would stay on screen as if it went on")
    func pausedRunShowsNoSpeed() {
        var state = makeState()
        #expect(screen(state, 150, 44).text.contains("ETA"))
        _ = state.apply(.records([.event(EventRecord(step: 1240, t: 122, kind: .pause, source: .key))]))
        let text = screen(state, 150, 44).text
        #expect(text.contains("PAUSED") && text.contains("– tok/s") && !text.contains("ETA"))
    }

    @Test func everyBuiltInThemeRenders() throws {
        let loader = ThemeLoader(userDirectory: nil, bundledDirectory: nil)
        for name in BuiltinThemes.names {
            let theme = try loader.load(name)
            #expect(screen(makeState(steps: 300), 120, 40, theme: theme).text.contains("Scales"))
        }
    }
}
