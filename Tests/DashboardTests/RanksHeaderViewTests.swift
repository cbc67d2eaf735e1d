import Telemetry
import Terminal
import Testing
import Themes
@testable import Dashboard

/// A data-parallel run says how it is spread in the header line; a one-process run does not.
@Suite struct RanksHeaderViewTests {
    func headerLine(ranks: Int, threads: Int, width: Int) -> String {
        var header = SyntheticRun.header()
        header.ranks = ranks
        header.threads = threads
        var state = DashboardState(mode: .live, canControl: true, themeNames: BuiltinThemes.names,
                                   runFile: "runs/synthetic/run.jsonl", colorModeLabel: "256 colours")
        _ = state.apply(.header(header))
        _ = state.apply(.resize(Size(width: width, height: 44)))
        _ = state.apply(.records(SyntheticRun.records(steps: 100)))
        return screen(state, width, 44).text.split(separator: "\n").first.map(String.init) ?? ""
    }

    @Test func ranksAndThreadsShowForSeveralRanks() {
        let line = headerLine(ranks: 4, threads: 2, width: 200)
        #expect(line.contains("4 ranks × 2 threads"), "header: \(line)")
        #expect(line.contains("step 101/5,000"))
    }

    @Test func oneProcessKeepsTheHeaderAsBefore() {
        let line = headerLine(ranks: 1, threads: 2, width: 200)
        #expect(!line.contains("ranks"), "header: \(line)")
    }

    @Test func theRanksGiveWayOnANarrowScreen() {
        let line = headerLine(ranks: 4, threads: 2, width: 80)
        #expect(line.contains("step 101/5,000"), "the step count stays: \(line)")
    }
}
