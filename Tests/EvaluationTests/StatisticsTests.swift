import Testing
@testable import Evaluation

@Suite struct StatisticsTests {
    @Test func bootstrapOfConstantDifferencesIsThatConstant() throws {
        let ci = try #require(PairedStatistics.meanInterval([0.5, 0.5, 0.5, 0.5]))
        #expect(ci.low == 0.5 && ci.high == 0.5)
    }

    @Test func bootstrapIntervalBracketsTheMeanAndIsReproducible() throws {
        let x = [1.0, 2, 3, 4, 5, 6, 7, 8, 9, 10]
        let a = try #require(PairedStatistics.meanInterval(x, resamples: 4000, seed: 7))
        let b = try #require(PairedStatistics.meanInterval(x, resamples: 4000, seed: 7))
        #expect(a.low == b.low && a.high == b.high)
        #expect(a.low < 5.5 && 5.5 < a.high)
        // The percentile interval of a mean of 10 values with sd 3.03: about ±1.8 around 5.5.
        #expect(a.low > 3.5 && a.low < 4.5)
        #expect(a.high > 6.5 && a.high < 7.5)
        // Resample means can never leave [min, max].
        #expect(a.low >= 1 && a.high <= 10)
    }

    @Test func quantileInterpolates() {
        #expect(PairedStatistics.quantile([0, 10], 0.25) == 2.5)
        #expect(PairedStatistics.quantile([1, 2, 3], 0.5) == 2)
        #expect(PairedStatistics.standardDeviation([2, 4, 4, 4, 5, 5, 7, 9]) == (32.0 / 7).squareRoot())
    }

    @Test func signAgreementAndVerdicts() {
        // Arm lower than baseline on every seed: supported when lower is better.
        let good = PairedStatistics.compare(arm: [1.0, 1.1, 0.9], baseline: [1.2, 1.3, 1.15], better: .lower)
        #expect(good.agreement == 1)
        #expect(good.verdict == .supported)
        #expect(abs(good.mean - (-0.65 / 3)) < 1e-12)
        // The same numbers when higher is better: the arm is worse.
        let bad = PairedStatistics.compare(arm: [1.0, 1.1, 0.9], baseline: [1.2, 1.3, 1.15], better: .higher)
        #expect(bad.agreement == 0)
        #expect(bad.verdict == .worse)
        // Two of three pairs better, one much worse: the interval includes zero → mixed.
        let mixed = PairedStatistics.compare(arm: [1.0, 1.0, 2.0], baseline: [1.1, 1.1, 1.0], better: .lower)
        #expect(abs(mixed.agreement - 2.0 / 3) < 1e-12)
        #expect(mixed.verdict == .mixed)
        // One pair better, two worse but the interval straddles zero → not supported.
        let none = PairedStatistics.compare(arm: [0.0, 1.05, 1.05], baseline: [1.0, 1.0, 1.0], better: .lower)
        #expect(none.verdict == .notSupported)
        // Two pairs are not enough for a verdict, however consistent.
        #expect(PairedStatistics.compare(arm: [1, 1], baseline: [2, 2], better: .lower).verdict == .insufficient)
        // Non-finite pairs are dropped; one pair is not enough.
        let short = PairedStatistics.compare(arm: [1.0, .nan], baseline: [2.0, 1.0], better: .lower)
        #expect(short.differences == [-1.0])
        #expect(short.verdict == .insufficient)
    }
}
