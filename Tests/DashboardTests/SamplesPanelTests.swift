import Telemetry
import Terminal
import Testing
@testable import Dashboard

@Suite struct SamplesPanelTests {
    func withSamples(_ texts: [(Int, String)], size: Size = Size(width: 150, height: 44)) -> DashboardState {
        var state = makeState(size: size)
        let evals = texts.map { step, text in
            Record.eval(EvalRecord(step: step, t: Double(step), domains: [DomainEval(name: "val:plays", loss: 1.5)],
                                   samplePrompt: "ROMEO:", sample: text))
        }
        _ = state.apply(.records(evals))
        return state
    }

    @Test(arguments: [(80, 24), (120, 40), (150, 44)])
    func newestSampleIsWrappedAndEarlierOnesListed(width: Int, height: Int) {
        let state = withSamples([(1250, "xq zzk\nlorem"), (1260, " Is she not down so late?\nThe light\tshines.")],
                                size: Size(width: width, height: height))
        let text = screen(state, width, height).text
        #expect(text.contains(width >= 150 ? "⁶Samples · step 1,260 · prompt \"ROMEO:\"" : "⁶Samples · step 1,260"),
                "at \(width)×\(height):\n\(text)")
        #expect(text.contains("ROMEO: Is she not down so late?"), "prompt and text on one line at \(width)×\(height)")
        #expect(text.contains("The light shines."), "a newline starts a line; a tab is a space")
        #expect(text.contains("1,250 │ xq zzk⏎lorem"), "an earlier sample on one line at \(width)×\(height):\n\(text)")
        #expect(text.contains("Events"), "Events keeps its place beside the samples")
    }

    @Test func longTextWrapsAtThePanelWidth() {
        let lines = SamplesPanel.wrap(prompt: "ab", text: "cdefgh\nij", width: 3)
        #expect(lines.map { $0.map(\.0).joined() } == ["abc", "def", "gh", "ij"])
        #expect(lines[0].map(\.1) == [true, false], "the prompt is its own run (drawn dimmed)")
        #expect(SamplesPanel.visible("a\u{7}b\nc") == "a·b⏎c")
    }

    @Test func beforeTheFirstEvaluationThePanelSaysWhatComes() {
        var state = DashboardState(mode: .live, canControl: true)
        _ = state.apply(.header(SyntheticRun.header()))
        let text = screen(state, 150, 44).text
        #expect(text.contains("no sample yet"))
    }

    @Test func sixTogglesTheSamplesPanel() {
        var state = withSamples([(1260, "hello")])
        _ = press(&state, .character("6"))
        #expect(!screen(state, 150, 44).text.contains("⁶Samples"))
        _ = press(&state, .character("6"))
        #expect(screen(state, 150, 44).text.contains("⁶Samples"))
    }
}
