import Foundation
import Testing
@testable import RunFormat
@testable import Telemetry

/// The run header's `ranks`: written only for a data-parallel run, read as 1 when absent (files of
/// one process, and files written before the field existed).
@Suite struct RanksHeaderTests {
    func encoded(_ h: RunHeader) -> String {
        var e = RecordEncoder()
        return String(decoding: e.encode(h).dropLast(), as: UTF8.self)
    }

    @Test func severalRanksRoundTrip() throws {
        var h = Fixtures.header()
        h.ranks = 3
        let text = encoded(h)
        #expect(text.contains(#""threads":2,"ranks":3"#), "ranks beside threads: \(text)")
        let back = try HeaderDecoder.header(Array(text.utf8))
        #expect(back == h)
        #expect(back.processSummary == "3 ranks × 2 threads")
    }

    @Test func oneProcessWritesNoRanksAndReadsAsOne() throws {
        let h = Fixtures.header()
        #expect(h.ranks == 1)
        let text = encoded(h)
        #expect(!text.contains("ranks"))
        #expect(try HeaderDecoder.header(Array(text.utf8)).ranks == 1)
        #expect(h.processSummary == "2 threads")
    }

    @Test func aBadRanksValueIsNamed() {
        var h = Fixtures.header()
        h.ranks = 2
        let text = encoded(h).replacingOccurrences(of: #""ranks":2"#, with: #""ranks":"two""#)
        #expect(throws: HeaderDecoder.Problem.self) { try HeaderDecoder.header(Array(text.utf8)) }
    }
}
