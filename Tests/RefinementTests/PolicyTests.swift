import Testing
import Foundation
import Refinement

@Suite("Adaptive policies")
struct PolicyTests {
    // MARK: Context

    @Test("context weights stay within [0.5, 4] for any energies, targets and γ")
    func contextBounds() {
        var rng = SeededGenerator(seed: 11)
        for _ in 0..<500 {
            let bands = Int.random(in: 1...5, using: &rng)
            let shares = (0..<bands).map { _ in Double.random(in: 0...1, using: &rng) * (Bool.random(using: &rng) ? 1 : 1e-8) }
            let total = shares.reduce(0, +)
            let normalised = total > 0 ? shares.map { $0 / total } : shares
            let targets = (0..<bands).map { _ in Double.random(in: 0.01...1, using: &rng) }
            let targetSum = targets.reduce(0, +)
            let w = ContextPolicy.weights(
                shares: normalised, targets: targets.map { $0 / targetSum }, gamma: Double.random(in: 0...3, using: &rng))
            #expect(w.allSatisfy { AxisBounds.contextAdaptive.contains($0) }, "\(w)")
        }
        var policy = ContextPolicy(layers: 2, bands: 3)
        for step in 0..<600 {
            let energy = (0..<2).map { _ in (0..<3).map { _ in pow10(Double.random(in: -12...3, using: &rng)) } }
            let w = policy.update(energy: energy, step: step)
            #expect(w.joined().allSatisfy { AxisBounds.contextAdaptive.contains($0) })
        }
    }

    @Test("context: weights stay 1 during warm-up, then γ ramps in")
    func contextWarmupAndRamp() throws {
        var parameters = ContextPolicy.Parameters()
        parameters.schedule = WarmupRamp(warmupSteps: 10, rampSteps: 10)
        var policy = ContextPolicy(layers: 1, bands: 3, parameters: parameters, targets: [0.4, 0.3, 0.3])
        let energy = [[0.7, 0.25, 0.05]]
        var longWeights: [Double] = []
        for step in 0..<30 {
            let w = policy.update(energy: energy, step: step)
            if step < 9 { #expect(w == [[1, 1, 1]], "step \(step) is warm-up") }
            longWeights.append(w[0][2])
        }
        #expect(longWeights[9] == 1, "strength 0 at the end of warm-up")
        #expect(longWeights[10] > 1)
        for step in 10..<19 { #expect(longWeights[step + 1] > longWeights[step], "ramping at step \(step)") }
        #expect(longWeights[19] == longWeights[29], "full strength after the ramp")
        // Full strength, γ = 0.5, s = [0.7, 0.25, 0.05], π = [0.4, 0.3, 0.3]: Σ s r² = Σ π = 1.
        #expect(abs(longWeights[29] - (0.3 / 0.05).squareRoot()) < 1e-9)
    }

    @Test("context: a band whose share is below its target is raised, one above is lowered")
    func contextRaisesShortBand() {
        let w = ContextPolicy.weights(shares: [0.7, 0.25, 0.05], targets: [0.5, 0.3, 0.2], gamma: 0.5)
        #expect(w[2] > 1 && w[1] > 1 && w[0] < 1)
        #expect(w[2] > w[1])
        let weighted = zip([0.7, 0.25, 0.05], w).reduce(0) { $0 + $1.0 * $1.1 * $1.1 }
        #expect(abs(weighted - 1) < 1e-12, "Σ s_b w_b² = 1 when nothing clips")
        #expect(ContextPolicy.weights(shares: [0.5, 0.3, 0.2], targets: [0.5, 0.3, 0.2], gamma: 0.5)
            .allSatisfy { abs($0 - 1) < 1e-12 }, "at target: all 1")
    }

    @Test("context: targets are measured at the end of warm-up and tilted toward long; setTarget rescales the rest")
    func contextTargets() throws {
        var parameters = ContextPolicy.Parameters()
        parameters.schedule = WarmupRamp(warmupSteps: 5, rampSteps: 0)
        var policy = ContextPolicy(layers: 2, bands: 3, parameters: parameters)
        for step in 0..<4 { _ = policy.update(energy: [[6, 3, 1], [6, 3, 1]], step: step) }
        #expect(policy.targets == nil)
        let atEnd = policy.update(energy: [[6, 3, 1], [6, 3, 1]], step: 4)
        #expect(atEnd == Array(repeating: [1, 1, 1], count: 2), "measured at the end of warm-up, applied from the next step")
        let targets = try #require(policy.targets)
        let w = policy.update(energy: [[6, 3, 1], [6, 3, 1]], step: 5)
        let tilted = [0.6, 0.3 * 1.25, 0.1 * 1.5]
        let sum = tilted.reduce(0, +)
        for band in 0..<3 { #expect(abs(targets[band] - tilted[band] / sum) < 1e-9) }
        #expect(w[0][2] > 1 && w[0][0] < 1, "the tilt raises long and lowers local")
        do { let old = try policy.setTarget(band: 2, share: 0.5).get(); #expect(old == targets[2]) }
        let next = try #require(policy.targets)
        #expect(abs(next[2] - 0.5) < 1e-12)
        #expect(abs(next.reduce(0, +) - 1) < 1e-12)
        #expect(abs(next[0] / next[1] - targets[0] / targets[1]) < 1e-9, "the others keep their proportions")
        if case .success = policy.setTarget(band: 0, share: 1) { Issue.record("share 1 accepted") }
        if case .success = policy.setTarget(band: 3, share: 0.2) { Issue.record("band 3 accepted") }
    }

    // MARK: Time

    @Test("time: w_H follows 1 + κ·min(c̄, 0) within [0.25, 1]; w_M = 1; outputs always in bounds")
    func timeHighBand() {
        var policy = TimePolicy(totalSteps: 1000)
        do { let high = policy.update(cosine: 0.8, step: 0).high; #expect(high == 1) }
        var fresh = TimePolicy(totalSteps: 1000)
        do { let high = fresh.update(cosine: -0.2, step: 0).high; #expect(abs(high - 0.6) < 1e-12) }
        var floor = TimePolicy(totalSteps: 1000)
        do { let high = floor.update(cosine: -0.9, step: 0).high; #expect(high == 0.25) }
        // The EMA: c̄ = 0.9·0.8 + 0.1·(−1) = 0.62 > 0, so still 1.
        do { let high = policy.update(cosine: -1, step: 1).high; #expect(high == 1) }
        #expect(abs((policy.meanCosine ?? 0) - 0.62) < 1e-12)
        var rng = SeededGenerator(seed: 12)
        var random = TimePolicy(totalSteps: 50)
        for step in 0..<200 {
            let cosine: Double? = Bool.random(using: &rng) ? Double.random(in: -1...1, using: &rng) : nil
            let w = random.update(cosine: cosine, step: step)
            #expect(AxisBounds.timeHighAdaptive.contains(w.high) && w.mid == 1 && AxisBounds.timeLowAdaptive.contains(w.low))
        }
    }

    @Test("time: w_L ramps from 1 to 1 + λ over the first 10 % of steps")
    func timeLowRamp() {
        var parameters = TimePolicy.Parameters()
        parameters.lambda = 2
        var policy = TimePolicy(totalSteps: 1000, parameters: parameters)
        var lows: [Double] = []
        for step in 0..<200 { lows.append(policy.update(cosine: 0.5, step: step).low) }
        #expect(abs(lows[0] - 1.02) < 1e-12)
        #expect(abs(lows[49] - 2) < 1e-12)
        #expect(lows[99] == 3 && lows[199] == 3)
        #expect(zip(lows, lows.dropFirst()).allSatisfy { $0 <= $1 })
    }

    // MARK: Depth

    @Test("depth: with γ = 1 the relative update speeds become equal; γ = 0.5 halves the spread in log")
    func depthEqualises() {
        var parameters = DepthPolicy.Parameters()
        parameters.gamma = 1
        parameters.schedule = WarmupRamp(warmupSteps: 0, rampSteps: 0)
        var policy = DepthPolicy(groups: 3, parameters: parameters)
        let raw = [1e-3, 2e-3, 4e-3]
        let phi = policy.update(updateNorms: raw, parameterNorms: [1, 1, 1], appliedWeights: [1, 1, 1], step: 0)
        let speeds = zip(raw, phi).map { $0 * $1 }
        #expect(speeds.allSatisfy { abs($0 - 2e-3) < 1e-12 }, "\(speeds)")
        // The measured update already carries φ; the policy divides it out and lands on the same φ.
        let again = policy.update(
            updateNorms: speeds.map { $0 * 10 }, parameterNorms: [10, 10, 10], appliedWeights: phi, step: 1)
        #expect(zip(again, phi).allSatisfy { abs($0 - $1) < 1e-12 })

        var half = DepthPolicy(groups: 3, parameters: { var p = parameters; p.gamma = 0.5; return p }())
        let phiHalf = half.update(updateNorms: raw, parameterNorms: [1, 1, 1], appliedWeights: [1, 1, 1], step: 0)
        let spread = zip(raw, phiHalf).map { $0 * $1 }
        #expect(abs(spread[2] / spread[0] - 2) < 1e-9, "a 4× spread becomes 2×")
    }

    @Test("depth: φ stays within [0.5, 2] for any ratios, and 1 during warm-up")
    func depthBoundsAndWarmup() {
        var rng = SeededGenerator(seed: 13)
        var policy = DepthPolicy(groups: 4)
        for step in 0..<500 {
            let norms = (0..<4).map { _ in pow10(Double.random(in: -9...1, using: &rng)) }
            let phi = policy.update(updateNorms: norms, parameterNorms: [1, 2, 3, 0], appliedWeights: [1, 1, 1, 1], step: step)
            #expect(phi.allSatisfy { AxisBounds.depthAdaptive.contains($0) })
            if step < 199 { #expect(phi == [1, 1, 1, 1], "warm-up at step \(step)") }
            #expect(phi[3] == 1, "a group with ‖θ‖ = 0 is never measured")
        }
    }
}

/// 10^x.
func pow10(_ x: Double) -> Double { Foundation.pow(10, x) }
