import Testing
import Refinement

@Suite("Oscillation statistics")
struct OscillationTests {
    @Test("sign flips match a scalar count; zeros never flip; store copies the update")
    func signFlips() {
        var rng = SeededGenerator(seed: 21)
        for count in [0, 1, 7, 8, 9, 100, 4099] {
            let update = (0..<count).map { _ in Int.random(in: 0..<5, using: &rng) == 0 ? 0 : rng.normal() }
            let previous = (0..<count).map { _ in Int.random(in: 0..<5, using: &rng) == 0 ? -0.0 : rng.normal() }
            var expected = 0
            for (u, p) in zip(update, previous) where (u > 0 && p < 0) || (u < 0 && p > 0) { expected += 1 }
            let (flips, _) = withBuffer(update) { u in
                withBuffer(previous) { p in VectorStatistics.signFlips(update: u, previousUpdate: p, count: count) }.0
            }
            #expect(flips == expected, "count \(count)")
            let (stored, after) = withBuffer(previous) { p in
                withBuffer(update) { u in VectorStatistics.signFlipsAndStore(update: u, previousUpdate: p, count: count) }.0
            }
            #expect(stored == expected)
            #expect(after == update)
        }
    }

    @Test("dot and norms match a Double reference")
    func dotAndNorms() {
        var rng = SeededGenerator(seed: 22)
        let a = (0..<5000).map { _ in rng.normal() }, b = (0..<5000).map { _ in rng.normal() }
        let ((dot, aa, bb), _) = withBuffer(a) { pa in
            withBuffer(b) { pb in VectorStatistics.dotAndNorms(pa, pb, count: 5000) }.0
        }
        let reference = zip(a, b).reduce((0.0, 0.0, 0.0)) {
            ($0.0 + Double($1.0) * Double($1.1), $0.1 + Double($1.0) * Double($1.0), $0.2 + Double($1.1) * Double($1.1))
        }
        #expect(abs(dot - reference.0) < 1e-3)
        #expect(relativeError(aa, reference.1) < 1e-5 && relativeError(bb, reference.2) < 1e-5)
        let (squares, _) = withBuffer(a) { VectorStatistics.sumOfSquares($0, count: 5000) }
        #expect(relativeError(squares, reference.1) < 1e-5)
    }

    @Test("the meter's EMAs start at the first observation and skip empty input")
    func meter() {
        var meter = OscillationMeter(rho: 0.9)
        meter.observeFlips(5, parameters: 0)
        #expect(meter.flipRate == nil)
        meter.observeFlips(50, parameters: 100)
        #expect(meter.flipRate == 0.5)
        meter.observeFlips(100, parameters: 100)
        #expect(abs(meter.flipRate! - 0.55) < 1e-12)
        meter.observeGradients(dot: 1, aa: 0, bb: 1)
        #expect(meter.gradientCosine == nil)
        meter.observeGradients(dot: -2, aa: 4, bb: 1)
        #expect(meter.gradientCosine == -1)
        meter.observeGradients(dot: 1, aa: 1, bb: 1)
        #expect(abs(meter.gradientCosine! - (-0.8)) < 1e-12)
        #expect(meter.updateCosine == nil)
        meter.observeUpdates(dot: 3, aa: 4, bb: .infinity)
        #expect(meter.updateCosine == nil, "a non-finite norm is skipped")
        meter.observeUpdates(dot: 1, aa: 1, bb: 4)
        #expect(meter.updateCosine == 0.5)
        meter.observeUpdates(dot: -1, aa: 1, bb: 1)
        #expect(abs(meter.updateCosine! - 0.35) < 1e-12)
    }

    @Test("a spike is a loss above 1.2 × the median of the previous window")
    func spikes() {
        var early = SpikeDetector(window: 5, factor: 1.2, minimumHistory: 3)
        _ = early.observe(loss: 2, step: 0)
        do { let spike = early.observe(loss: 10, step: 1); #expect(!spike, "too little history yet") }

        var detector = SpikeDetector(window: 5, factor: 1.2, minimumHistory: 3)
        for step in 0..<4 { _ = detector.observe(loss: 2, step: step) }
        do { let spike = detector.observe(loss: 10, step: 4); #expect(spike) }
        // Window 2, 2, 2, 2, 10: median 2, threshold 2.4.
        #expect(detector.median == 2)
        do { let spike = detector.observe(loss: 2.39, step: 5); #expect(!spike, "2.39 ≤ 1.2 × 2") }
        // Window 2, 2, 2, 10, 2.39 (the oldest 2 left): median still 2.
        do { let spike = detector.observe(loss: 2.41, step: 6); #expect(spike, "2.41 > 1.2 × 2") }
        #expect(detector.count == 2 && detector.lastSpikeStep == 6)
        // Window 2, 2, 10, 2.39, 2.41: median 2.39.
        #expect(detector.median == 2.39)
        do { let spike = detector.observe(loss: .nan, step: 7); #expect(spike, "a non-finite loss is a spike") }
        #expect(detector.count == 3 && detector.lastSpikeStep == 7)
        #expect(detector.median == 2.39, "and it does not enter the window")
    }

    @Test("gradient-norm variation is σ/μ over the window")
    func variation() {
        var cv = GradNormVariation(window: 4)
        #expect(cv.coefficient == nil)
        cv.observe(1)
        cv.observe(3)
        #expect(abs(cv.coefficient! - 0.5) < 1e-12)
        for _ in 0..<4 { cv.observe(2) }
        #expect(cv.coefficient == 0, "old values leave the window")
        cv.observe(.infinity)
        #expect(cv.coefficient == 0)
    }
}
