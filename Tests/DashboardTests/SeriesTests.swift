import Testing
@testable import Dashboard
import Telemetry

@Suite struct SeriesTests {
    @Test func millionAppendsStayBoundedAndKeepExtremes() {
        var s = DecimatedSeries(capacity: 1024)
        for i in 0..<1_000_000 {
            let v = i == 777_777 ? 100.0 : (i == 123_456 ? -50.0 : sin(Double(i) / 1000))
            s.append(x: i, v)
        }
        #expect(s.buckets.count <= 1024)
        #expect(s.count == 1_000_000)
        #expect(s.buckets.reduce(0) { $0 + $1.count } == 1_000_000)
        #expect(s.extent(in: 0...999_999)?.max == 100)
        #expect(s.extent(in: 0...999_999)?.min == -50)
        #expect(s.buckets.first?.firstX == 0 && s.buckets.last?.lastX == 999_999)
        #expect(s.last == sin(999_999.0 / 1000))
        // The spike survives resampling to a small width.
        let cols = s.columns(xRange: 0...999_999, count: 40)
        #expect(cols.compactMap { $0?.max }.max() == 100)
        #expect(cols.compactMap { $0?.min }.min() == -50)
        #expect(s.memoryBytes < 100_000)
    }

    @Test func bucketsAreContiguousAndOrdered() {
        var s = DecimatedSeries(capacity: 8)
        for i in 0..<100 { s.append(x: i, Double(i)) }
        for (a, b) in zip(s.buckets, s.buckets.dropFirst()) { #expect(a.lastX + 1 == b.firstX) }
        #expect(s.span == 16)
        #expect(s.indices(overlapping: 40...60).allSatisfy { s.buckets[$0].lastX >= 40 && s.buckets[$0].firstX <= 60 })
    }

    @Test func nonFiniteValuesAreSkipped() {
        var s = DecimatedSeries()
        s.append(x: 1, .nan)
        s.append(x: 2, .infinity)
        s.append(x: 3, 2)
        #expect(s.count == 1 && s.last == 2)
    }

    @Test func smoothingFollowsAnEMA() {
        var s = DecimatedSeries()
        for i in 0..<10 { s.append(x: i, i < 5 ? 0 : 1) }
        let cols = s.columns(xRange: 0...9, count: 10, smoothing: 0.5)
        #expect(cols[4]?.last == 0)
        #expect(cols[5]?.last == 0.5)
        #expect(cols[6]?.last == 0.75)
    }

    @Test func columnsCarryTheMean() {
        var s = DecimatedSeries(capacity: 16)
        for i in 0..<1000 { s.append(x: i, Double(i % 2)) }
        let cols = s.columns(xRange: 0...999, count: 10)
        #expect(cols.allSatisfy { $0 != nil && abs($0!.mean - 0.5) < 0.01 })
        #expect(cols.allSatisfy { $0!.min == 0 && $0!.max == 1 })
    }

    @Test func recentWindowCV() {
        var w = RecentWindow(capacity: 4)
        for v in [10.0, 10, 10, 10, 2, 4, 6, 8] { w.append(v) }
        #expect(w.count == 4)
        let cv = w.coefficientOfVariation!
        #expect(abs(cv - (20.0 / 3).squareRoot() / 5) < 1e-12)
    }

    @Test func formatHelpers() {
        #expect(Format.grouped(1240) == "1,240")
        #expect(Format.grouped(5_000_000) == "5,000,000")
        #expect(Format.compact(10_900) == "10.9k")
        #expect([0.8, 0.998968, 1.2, 9.996, 12.04, 0].map(Format.weight) == [".80", "1.00", "1.20", "10.0", "12.0", ".00"])
        #expect(Format.compact(842_496) == "842k")
        #expect(Format.duration(121) == "2m01s")
        #expect(Format.duration(3720) == "1h02m")
        #expect(Format.bytes(1_048_576) == "1.0 MB")
        #expect(Format.truncateMiddle("scale/context/phrase", 14) == "scale/c…phrase")
        #expect(Format.truncateMiddle("scale/context/local", 14) != Format.truncateMiddle("scale/context/phrase", 14))
    }

    @Test func niceTicksUse125() {
        #expect(Ticks.step(atLeast: 0.7) == 1)
        #expect(Ticks.step(atLeast: 130) == 200)
        #expect(Ticks.step(atLeast: 3) == 5)
        #expect(Ticks.step(atLeast: 5) == 5 && Ticks.step(atLeast: 0.2) == 0.2)
        #expect(Ticks.step(atMost: 130) == 100 && Ticks.step(atMost: 499) == 200 && Ticks.step(atMost: 0.3) == 1)
        let ticks = LineChart.ticks(lo: 1.1, hi: 4.6, count: 4, log: false).map(\.value)
        #expect(ticks == [2, 3, 4])
    }
}

import Foundation

@Suite struct ResumedHistoryTests {
    @Test("a session resumed from an earlier checkpoint replaces the steps after it in every history")
    func resumeForgetsTheLostSteps() {
        var state = makeState(steps: 1240)
        #expect(state.data.trainLoss.lastX! > 1200)
        #expect(state.data.samples.contains { $0.step > 1000 } && state.data.bestValidation!.step > 1000)
        let again = SyntheticRun.records(steps: 1240).filter {
            if case let .step(s) = $0 { return s.step >= 1000 && s.step < 1010 }
            return false
        }
        let resumed = Record.event(EventRecord(step: 1000, t: 500, kind: .resume_run, source: .trainer,
                                               message: "resumed from step 1000 with 1 threads"))
        _ = state.apply(.records([resumed] + again))
        let d = state.data
        #expect(d.trainLoss.lastX == 1009 && d.trainLoss.buckets.allSatisfy { $0.firstX <= $0.lastX })
        #expect(d.tokensPerSecond.lastX == 1009)
        #expect(d.shares.allSatisfy { ($0.lastX ?? 0) <= 1009 })
        #expect(d.validation.allSatisfy { ($0.lastX ?? 0) <= 1000 })
        #expect(d.samples.allSatisfy { $0.step <= 1000 } && !d.samples.isEmpty)
        #expect(d.bestValidation.map { $0.step <= 1000 } == true)
        #expect(d.markers.allSatisfy { $0.step <= 1000 })
        #expect(d.events.contains { $0.text.hasPrefix("resumed from checkpoint") })
    }

    @Test func dropKeepsEarlierPointsAndCounts() {
        var s = DecimatedSeries(capacity: 8)
        for x in 0..<20 { s.append(x: x, Double(x)) }
        s.drop(from: 10)
        #expect(s.lastX == 9 && s.buckets.allSatisfy { $0.firstX < 10 })
        #expect(s.count == s.buckets.reduce(0) { $0 + $1.count } && s.count >= 10 && s.count < 20, "the count is the kept buckets'")
        s.append(x: 10, 100)
        #expect(s.last == 100 && s.lastX == 10)
    }
}

@Suite struct EventKindTests {
    @Test("lr, rollback, target and revert events have kinds of their own, so the filter finds them by kind")
    func ownKinds() {
        var d = RunData()
        d.apply(header: SyntheticRun.header())
        d.apply(.event(EventRecord(step: 5, t: 1, kind: .lr, oldValue: 1, newValue: 0.5, source: .divergenceGuard)))
        d.apply(.event(EventRecord(step: 6, t: 1, kind: .rollback, source: .divergenceGuard, message: "restored step 0")))
        d.apply(.event(EventRecord(step: 7, t: 1, kind: .target, axis: .context, band: 1, oldValue: 0.3, newValue: 0.4, source: .key)))
        d.apply(.event(EventRecord(step: 8, t: 1, kind: .revert, source: .key, message: "reverted")))
        #expect(d.events.suffix(4).map(\.kind) == [.lr, .rollback, .target, .revert])
        #expect(d.events.suffix(4).map { EventsPanel.look($0.kind).1 } == ["lr", "rollback", "target", "revert"])
    }
}
