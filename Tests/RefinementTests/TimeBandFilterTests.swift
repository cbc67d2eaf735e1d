import Testing
@testable import Refinement

/// Tensor sizes that cover empty tensors, SIMD tails and more than one accumulation block.
private let sizes = [37, 8, 1, 0, 300, 5003]

private func randomGradients(_ rng: inout SeededGenerator, drift: [Float]? = nil) -> [Float] {
    let total = sizes.reduce(0, +)
    return (0..<total).map { i in (drift?[i] ?? 0) + rng.normal(0.01) }
}

@Suite("Time band filter")
struct TimeBandFilterTests {
    @Test("unit weights leave every gradient bit-identical over many steps")
    func unitWeightsAreExact() throws {
        let filter = try TimeBandFilter(tensorSizes: sizes)
        var rng = SeededGenerator(seed: 1)
        for step in 0..<60 {
            var gradients = randomGradients(&rng)
            // Signed zeros, extremes and subnormals must survive untouched as well.
            gradients[0] = -0.0
            gradients[1] = 0.0
            gradients[2] = .leastNonzeroMagnitude
            gradients[3] = Float(step % 2 == 0 ? 1e30 : -1e30)
            let (stats, after) = withBuffer(gradients) { filter.refineAll(gradientArena: $0, weights: .unit) }
            let changed = zip(after, gradients).filter { $0.bitPattern != $1.bitPattern }.count
            #expect(changed == 0, "step \(step): \(changed) gradients changed")
            #expect(stats.guardFallbacks == 0)
        }
        #expect(filter.guardFallbacks == 0)
    }

    @Test("the EMAs start at the first gradient; bands then measure zero high and mid energy")
    func emaStartsAtFirstGradient() throws {
        let filter = try TimeBandFilter(tensorSizes: sizes)
        var rng = SeededGenerator(seed: 2)
        let gradients = randomGradients(&rng)
        let (stats, _) = withBuffer(gradients) { filter.refineAll(gradientArena: $0, weights: .unit) }
        let state = filter.saveState()
        #expect(state.fast == gradients)
        #expect(state.slow == gradients)
        #expect(state.started == Array(repeating: true, count: sizes.count))
        let squared = gradients.reduce(0.0) { $0 + Double($1) * Double($1) }
        #expect(stats.highSquared == 0)
        #expect(stats.midSquared == 0)
        #expect(relativeError(stats.lowSquared, squared) < 1e-5)
        #expect(stats.gradientDotPreviousFast == 0 && stats.previousFastSquared == 0)
        #expect(stats.momentumCosine == nil)
    }

    @Test("EMAs follow β·m + (1−β)·g, the bands sum to g, and the stats match a reference")
    func bandsSumToGradient() throws {
        let (betaFast, betaSlow) = (0.8, 0.95)
        let filter = try TimeBandFilter(tensorSizes: sizes, betaFast: betaFast, betaSlow: betaSlow)
        var rng = SeededGenerator(seed: 3)
        let drift = (0..<sizes.reduce(0, +)).map { _ in rng.normal(0.01) }
        var fast: [Double] = [], slow: [Double] = []
        for step in 0..<40 {
            let gradients = randomGradients(&rng, drift: drift)
            let previousFast = fast
            let (stats, _) = withBuffer(gradients) { filter.refineAll(gradientArena: $0, weights: .unit) }
            let g = gradients.map(Double.init)
            if step == 0 {
                fast = g
                slow = g
            } else {
                fast = zip(fast, g).map { betaFast * $0 + (1 - betaFast) * $1 }
                slow = zip(slow, g).map { betaSlow * $0 + (1 - betaSlow) * $1 }
            }
            let state = filter.saveState()
            var maxEMAError = 0.0, maxSumError = 0.0
            var hh = 0.0, mm = 0.0, ll = 0.0
            for i in g.indices {
                let f = Double(state.fast[i]), s = Double(state.slow[i])
                maxEMAError = max(maxEMAError, abs(f - fast[i]), abs(s - slow[i]))
                let (high, mid, low) = (g[i] - f, f - s, s)
                maxSumError = max(maxSumError, abs(high + mid + low - g[i]))
                hh += high * high; mm += mid * mid; ll += low * low
            }
            #expect(maxEMAError < 1e-6, "step \(step)")
            #expect(maxSumError < 1e-7, "step \(step)")
            #expect(relativeError(stats.highSquared, hh) < 1e-3 || step == 0)
            #expect(relativeError(stats.midSquared, mm) < 1e-3 || step == 0)
            #expect(relativeError(stats.lowSquared, ll) < 1e-4)
            if step > 0 {
                let dot = zip(g, previousFast).reduce(0) { $0 + $1.0 * $1.1 }
                #expect(relativeError(stats.gradientDotPreviousFast, dot) < 1e-3)
                let cosine = try #require(stats.momentumCosine)
                #expect(cosine > 0.3, "drifting gradients point along their momentum")
            }
        }
    }

    @Test("Grokfast-EMA is the case β_f = β_s = α, w_H = w_M = 1, w_L = 1 + λ")
    func grokfastEquivalence() throws {
        let (alpha, lambda): (Float, Float) = (0.98, 2)
        let filter = try TimeBandFilter(tensorSizes: sizes, betaFast: Double(alpha), betaSlow: Double(alpha))
        let weights = TimeWeights(high: 1, mid: 1, low: 1 + Double(lambda))
        var rng = SeededGenerator(seed: 4)
        // A drift of a fixed sign per element, larger than the noise, keeps ⟨ĝ, g⟩ > 0 everywhere
        // (Grokfast has no guard, so the guard must not fire here).
        let drift = (0..<sizes.reduce(0, +)).map { _ -> Float in
            (Bool.random(using: &rng) ? 1 : -1) * (0.03 + abs(rng.normal(0.01)))
        }
        var ema: [Float]? = nil  // the reference Grokfast-EMA, written independently
        for step in 0..<100 {
            let gradients = randomGradients(&rng, drift: drift)
            if let previous = ema {
                ema = zip(previous, gradients).map { alpha * $0 + (1 - alpha) * $1 }
            } else {
                ema = gradients
            }
            let expected = zip(gradients, ema!).map { $0 + lambda * $1 }
            let (stats, refined) = withBuffer(gradients) { filter.refineAll(gradientArena: $0, weights: weights) }
            let worst = zip(refined, expected).map { abs($0 - $1) / max(abs($1), 1e-3) }.max() ?? 0
            #expect(worst < 1e-4, "step \(step): worst relative difference \(worst)")
            #expect(stats.midSquared == 0, "equal betas leave the mid band empty")
            #expect(stats.guardFallbacks == 0)
        }
    }

    @Test("the guard keeps g exactly where ⟨ĝ, g⟩ ≤ 0, and counts each fallback")
    func guardOnReversal() throws {
        let filter = try TimeBandFilter(tensorSizes: [64, 64])
        var rng = SeededGenerator(seed: 5)
        let x = (0..<128).map { _ in rng.normal() }
        let weights = TimeWeights(high: 1, mid: 1, low: 4)
        // Step 1: both tensors see x; ĝ = 4x, aligned with g.
        let (first, _) = withBuffer(x) { filter.refineAll(gradientArena: $0, weights: weights) }
        #expect(first.guardFallbacks == 0)
        // Step 2: tensor 0 reverses (ĝ ≈ −x + 3·0.98x points against g), tensor 1 repeats.
        let second = Array(x[0..<64].map { -$0 }) + Array(x[64...])
        let (stats, refined) = withBuffer(second) { filter.refineAll(gradientArena: $0, weights: weights) }
        #expect(stats.guardFallbacks == 1)
        #expect(filter.guardFallbacks == 1)
        #expect(zip(refined[0..<64], second[0..<64]).allSatisfy { $0.bitPattern == $1.bitPattern })
        var worst: Float = 0
        for i in 64..<128 { worst = max(worst, abs(refined[i] - 4 * second[i]) / max(abs(second[i]), 1e-3)) }
        #expect(worst < 1e-5)
        // A weight of 0 on the low band cancels the first gradient completely: ⟨ĝ, g⟩ = 0 fires too.
        let zeroLow = try TimeBandFilter(tensorSizes: [64])
        let (zeroStats, kept) = withBuffer(Array(x[0..<64])) {
            zeroLow.refineAll(gradientArena: $0, weights: TimeWeights(high: 1, mid: 1, low: 0))
        }
        #expect(zeroStats.guardFallbacks == 1)
        #expect(kept == Array(x[0..<64]))
    }

    @Test("the guard decision matches an independent reference over random weights and reversals")
    func guardMatchesReference() throws {
        let tensorSizes = [16, 40, 9, 128]
        let filter = try TimeBandFilter(tensorSizes: tensorSizes)
        var rng = SeededGenerator(seed: 6)
        let total = tensorSizes.reduce(0, +)
        var fast = [Float](repeating: 0, count: total), slow = fast
        var fallbacks = 0, checked = 0
        let base = (0..<total).map { _ in rng.normal() }
        for step in 0..<80 {
            let weights = TimeWeights(
                high: Double.random(in: 0...6, using: &rng), mid: Double.random(in: 0...6, using: &rng),
                low: Double.random(in: 0...6, using: &rng))
            var gradients = [Float]()
            for size in tensorSizes {
                let sign: Float = Bool.random(using: &rng) ? 1 : -1
                for _ in 0..<size { gradients.append(sign * base[gradients.count] + rng.normal(0.3)) }
            }
            let (stats, refined) = withBuffer(gradients) { filter.refineAll(gradientArena: $0, weights: weights) }
            var offset = 0
            var expectedFallbacks = 0
            for size in tensorSizes {
                var dotRefined = 0.0, norm = 0.0, refinedNorm = 0.0
                var candidate = [Float]()
                for i in offset..<offset + size {
                    let g = gradients[i]
                    if step == 0 { fast[i] = g; slow[i] = g } else {
                        fast[i] = 0.9 * fast[i] + 0.1 * g
                        slow[i] = 0.99 * slow[i] + 0.01 * g
                    }
                    let r = Double(g) * weights.high + Double(fast[i] - slow[i]) * weights.mid
                        + Double(slow[i]) * weights.low - Double(fast[i]) * weights.high
                    candidate.append(Float(r))
                    dotRefined += r * Double(g)
                    norm += Double(g) * Double(g)
                    refinedNorm += r * r
                }
                let margin = dotRefined / max((norm * refinedNorm).squareRoot(), 1e-30)
                let fires = norm > 0 && dotRefined <= 0
                if fires { expectedFallbacks += 1 }
                if abs(margin) > 1e-3 {
                    checked += 1
                    let slice = Array(refined[offset..<offset + size])
                    if fires {
                        #expect(slice == Array(gradients[offset..<offset + size]), "step \(step): kept g")
                    } else {
                        let worst = zip(slice, candidate).map { abs($0 - $1) }.max() ?? 0
                        #expect(worst < 1e-4, "step \(step): refined")
                    }
                }
                offset += size
            }
            #expect(stats.guardFallbacks == expectedFallbacks, "step \(step)")
            fallbacks += stats.guardFallbacks
        }
        #expect(fallbacks > 10, "the random reversals must exercise the guard")
        #expect(checked > 250)
        #expect(filter.guardFallbacks == fallbacks)
    }

    @Test("split over workers, the refined gradients are bit-identical and the sums agree", arguments: [2, 3, 5])
    func workersAgree(workers: Int) throws {
        let sizes = [37, 8, 1, 0, 300, 5003, 4096, 2500]
        let one = try TimeBandFilter(tensorSizes: sizes)
        let many = try TimeBandFilter(tensorSizes: sizes)
        var rng = SeededGenerator(seed: 11)
        let weights = TimeWeights(high: 0.5, mid: 1.2, low: 2)
        for step in 0..<6 {
            let g = (0..<sizes.reduce(0, +)).map { _ in rng.normal(0.01) + 0.002 }
            let (a, fromOne) = withBuffer(g) { one.refineAll(gradientArena: $0, weights: weights) }
            let (b, fromMany) = withBuffer(g) { many.refineAll(gradientArena: $0, weights: weights, workers: workers) }
            #expect(fromOne == fromMany, "step \(step)")
            #expect(relativeError(a.highSquared, b.highSquared) < 1e-12)
            #expect(relativeError(a.lowSquared, b.lowSquared) < 1e-12)
            #expect(relativeError(a.gradientDotPreviousFast, b.gradientDotPreviousFast) < 1e-12)
            #expect(a.guardFallbacks == b.guardFallbacks)
        }
        #expect(one.saveState() == many.saveState())
    }

    @Test("the piece plan covers every tensor once, in order, cut on block boundaries")
    func piecePlanCoversTensors() {
        let sizes = [37, 0, 5003, 4096, 1, 2500]
        for workers in 1...6 {
            let plan = PiecePlan(tensorCounts: sizes, workers: workers, alignment: 1024)
            #expect(plan.workers == workers)
            var next = [Int](repeating: 0, count: sizes.count)
            var lastTensor = 0
            for p in plan.pieces {
                #expect(p.tensor >= lastTensor)
                lastTensor = p.tensor
                #expect(p.start == next[p.tensor])
                #expect(p.start % 1024 == 0)
                #expect(p.isWholeTensor == (p.count == sizes[p.tensor]))
                next[p.tensor] += p.count
            }
            #expect(next == sizes)
            if workers == 1 { #expect(plan.pieces.count == sizes.count) }
            let loads = (0..<workers).map { w in
                plan.pieces[plan.firstPiece[w]..<plan.firstPiece[w + 1]].reduce(0) { $0 + $1.count }
            }
            let share = (sizes.reduce(0, +) + workers - 1) / workers
            #expect(loads.allSatisfy { $0 <= share + 1024 }, "workers \(workers): \(loads)")
        }
    }

    @Test("a restored state continues exactly like the original filter")
    func checkpointRoundTrip() throws {
        let a = try TimeBandFilter(tensorOffsets: [0, 100], tensorCounts: [50, 30])
        let b = try TimeBandFilter(tensorOffsets: [0, 100], tensorCounts: [50, 30])
        #expect(a.stateCount == 130)
        var rng = SeededGenerator(seed: 7)
        let weights = TimeWeights(high: 0.5, mid: 1, low: 2)
        for _ in 0..<5 {
            let g = (0..<130).map { _ in rng.normal() }
            _ = withBuffer(g) { a.refineAll(gradientArena: $0, weights: weights) }
        }
        try b.restore(a.saveState())
        for _ in 0..<5 {
            let g = (0..<130).map { _ in rng.normal() }
            let (_, fromA) = withBuffer(g) { a.refineAll(gradientArena: $0, weights: weights) }
            let (_, fromB) = withBuffer(g) { b.refineAll(gradientArena: $0, weights: weights) }
            #expect(fromA == fromB)
            #expect(fromA[50..<100] == g[50..<100], "the gap between tensors is never written")
        }
        let other = try TimeBandFilter(tensorSizes: [10])
        #expect(throws: RefinementError.self) { try other.restore(a.saveState()) }
    }

    @Test("bad betas and layouts are refused with a reason")
    func invalidSetups() {
        #expect(throws: RefinementError.self) { try TimeBandFilter(tensorSizes: [4], betaFast: 0.99, betaSlow: 0.9) }
        #expect(throws: RefinementError.self) { try TimeBandFilter(tensorSizes: [4], betaFast: 0.9, betaSlow: 1) }
        #expect(throws: RefinementError.self) { try TimeBandFilter(tensorOffsets: [0], tensorCounts: [1, 2]) }
    }
}
