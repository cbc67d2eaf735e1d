import Testing
import Refinement

@Suite("Oscillation statistics")
struct OscillationTests {
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
}
