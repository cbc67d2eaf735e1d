import Testing
import Telemetry

/// The one definition of the grad-norm CV(100) that the dashboard and the evaluation share.
@Suite struct GradNormCVTests {
    @Test("σ/μ with the sample σ (n − 1), skipping non-finite norms")
    func coefficient() throws {
        #expect(GradNormCV.coefficient([Double]()) == nil)
        #expect(GradNormCV.coefficient([2.0]) == nil, "one value has no spread")
        #expect(GradNormCV.coefficient([0.0, 0.0]) == nil, "no mean to divide by")
        // 1 and 3: mean 2, sample variance ((1−2)² + (3−2)²) / 1 = 2, σ = √2; population σ would be 1.
        let cv = try #require(GradNormCV.coefficient([1.0, 3.0]))
        #expect(abs(cv - 2.0.squareRoot() / 2) < 1e-15)
        #expect(GradNormCV.coefficient([1.0, .nan, 3.0, .infinity]) == cv, "non-finite norms are left out")
        #expect(GradNormCV.coefficient([4.0, 4.0, 4.0]) == 0)
    }

    @Test("a run's figure is the mean over consecutive windows of 100 steps")
    func runMean() {
        // Window 1: 1, 3, 1, 3 … (CV √(100/99)/2); window 2: constant (CV 0); 30 steps left over.
        let first = (0..<100).map { $0 % 2 == 0 ? 1.0 : 3.0 }
        let norms = first + [Double](repeating: 5, count: 100) + [Double](repeating: 100, count: 30)
        let expected = ((100.0 / 99).squareRoot() / 2 + 0) / 2
        #expect(abs(GradNormCV.runMean(norms) - expected) < 1e-12)
        #expect(GradNormCV.runMean(Array(first.prefix(10))) == GradNormCV.coefficient(first.prefix(10)), "fewer than 100: one window")
        #expect(GradNormCV.runMean([]).isNaN)
    }
}
