import Foundation
import Testing
@testable import Kernels

/// Attention forward against a float64 reference, and its backward (plain and band-weighted)
/// against central differences of the surrogate of docs/METHOD.md §1 (docs/ARCHITECTURE.md §7.1):
/// O_i = Σ_j [W_ij·P_ij·V_j + (1 − W_ij)·stopgrad(P_ij·V_j)].
@Suite struct AttentionTests {

    let B = 2, T = 12, C = 8, heads = 2
    var hs: Int { C / heads }
    let upperEdges = [2, 6]

    /// P for one (b, h) from a float64 qkv, with an optional window.
    func probabilities(_ qkv: [Double], b: Int, h: Int, window: Int? = nil) -> [[Double]] {
        let C3 = 3 * C
        var P = [[Double]](repeating: [Double](repeating: 0, count: T), count: T)
        for i in 0..<T {
            let lo = window.map { max(0, i - $0 + 1) } ?? 0
            var s = [Double](repeating: -Double.infinity, count: T)
            for j in lo...i {
                var d = 0.0
                for k in 0..<hs { d += qkv[(b * T + i) * C3 + h * hs + k] * qkv[(b * T + j) * C3 + C + h * hs + k] }
                s[j] = d / Double(hs).squareRoot()
            }
            let m = s[lo...i].max()!
            let z = s[lo...i].reduce(0) { $0 + Foundation.exp($1 - m) }
            for j in lo...i { P[i][j] = Foundation.exp(s[j] - m) / z }
        }
        return P
    }

    func weight(_ i: Int, _ j: Int, _ w: [Double]) -> Double {
        let d = i - j
        return d <= upperEdges[0] ? w[0] : (d <= upperEdges[1] ? w[1] : w[2])
    }

    /// Σ R ⊙ O for the surrogate at qkv, with the stop-gradient terms taken at qkv0.
    func surrogateLoss(_ qkv: [Double], _ qkv0: [Double], _ w: [Double], _ R: [Float]) -> Double {
        let C3 = 3 * C
        var s = 0.0
        for b in 0..<B { for h in 0..<heads {
            let P = probabilities(qkv, b: b, h: h), P0 = probabilities(qkv0, b: b, h: h)
            for i in 0..<T { for j in 0...i {
                let W = weight(i, j, w)
                for k in 0..<hs {
                    let v = qkv[(b * T + j) * C3 + 2 * C + h * hs + k]
                    let v0 = qkv0[(b * T + j) * C3 + 2 * C + h * hs + k]
                    s += Double(R[(b * T + i) * C + h * hs + k]) * (W * P[i][j] * v + (1 - W) * P0[i][j] * v0)
                }
            } }
        } }
        return s
    }

    func run(weights: [Float]?, energy: UnsafeMutablePointer<Double>? = nil) -> (dqkv: [Float], qkv: [Float], R: [Float]) {
        var rng = SplitMix(state: 11)
        let qkv = Buffer(B * T * 3 * C, &rng, scale: 1.5).data, R = Buffer(B * T * C, &rng).data
        let attn = Attention(B: B, T: T, C: C, heads: heads, block: 5)
        var out = [Float](repeating: 0, count: B * T * C), att = [Float](repeating: 0, count: B * heads * T * T)
        attn.forward(out: &out, att: &att, qkv: qkv, parallel: testParallel)
        var dqkv = [Float](repeating: 0, count: B * T * 3 * C), scratch = [Float](repeating: 0, count: attn.backwardScratchCount(workers: testParallel.workers))
        let bands = Attention.Bands(upperEdges: upperEdges, T: T)
        if let weights {
            attn.backward(dqkv: &dqkv, dout: R, qkv: qkv, att: &att, scratch: &scratch, bands: bands,
                          weights: weights, energyOut: energy, parallel: testParallel)
        } else {
            attn.backward(dqkv: &dqkv, dout: R, qkv: qkv, att: &att, scratch: &scratch,
                          bands: energy == nil ? nil : bands, energyOut: energy, parallel: testParallel)
        }
        return (dqkv, qkv, R)
    }

    @Test func forwardMatchesReference() {
        var rng = SplitMix(state: 12)
        let qkv = Buffer(B * T * 3 * C, &rng).data
        for window in [nil, 3] as [Int?] {
            let attn = Attention(B: B, T: T, C: C, heads: heads, block: 5)
            var out = [Float](repeating: 0, count: B * T * C), att = [Float](repeating: 0, count: B * heads * T * T)
            attn.forward(out: &out, att: &att, qkv: qkv, window: window, parallel: testParallel)
            let q = qkv.map(Double.init)
            var maxErr = 0.0
            for b in 0..<B { for h in 0..<heads {
                let P = probabilities(q, b: b, h: h, window: window)
                for i in 0..<T { for k in 0..<hs {
                    var o = 0.0
                    for j in 0...i { o += P[i][j] * q[(b * T + j) * 3 * C + 2 * C + h * hs + k] }
                    maxErr = max(maxErr, abs(o - Double(out[(b * T + i) * C + h * hs + k])))
                } }
            } }
            #expect(maxErr < 1e-5, "window \(String(describing: window))")
        }
    }

    @Test func plainBackwardMatchesFiniteDifferences() {
        let (dqkv, qkv, R) = run(weights: nil)
        let q0 = qkv.map(Double.init)
        let numeric = numericGradient(q0) { surrogateLoss($0, q0, [1, 1, 1], R) }
        #expect(relativeError(dqkv, numeric) < 1e-3)
    }

    @Test func bandWeightedBackwardIsTheSurrogateGradient() {
        let w: [Float] = [0.3, 1, 2.5]
        let (dqkv, qkv, R) = run(weights: w)
        let q0 = qkv.map(Double.init)
        let numeric = numericGradient(q0) { surrogateLoss($0, q0, w.map(Double.init), R) }
        #expect(relativeError(dqkv, numeric) < 1e-3)
        // And it really differs from the plain gradient.
        let plain = run(weights: nil).dqkv
        #expect(relativeError(dqkv, plain.map(Double.init)) > 1e-2)
    }

    @Test func unitWeightsReproducePlainBackwardBitForBit() {
        let plain = run(weights: nil).dqkv
        let unit = run(weights: [1, 1, 1]).dqkv
        #expect(plain == unit)
    }

    @Test func bandEnergyMatchesDefinition() {
        let energy = UnsafeMutablePointer<Double>.allocate(capacity: 3)
        energy.initialize(repeating: 0, count: 3)
        defer { energy.deallocate() }
        let (_, qkv, R) = run(weights: nil, energy: energy)
        // e_b = Σ_heads Σ_(i,j)∈b (P_ij · dP_ij)², dP = dO · Vᵀ.
        let q = qkv.map(Double.init)
        var expected = [0.0, 0.0, 0.0]
        for b in 0..<B { for h in 0..<heads {
            let P = probabilities(q, b: b, h: h)
            for i in 0..<T { for j in 0...i {
                var dP = 0.0
                for k in 0..<hs { dP += Double(R[(b * T + i) * C + h * hs + k]) * q[(b * T + j) * 3 * C + 2 * C + h * hs + k] }
                let d = i - j
                let band = d <= upperEdges[0] ? 0 : (d <= upperEdges[1] ? 1 : 2)
                expected[band] += (P[i][j] * dP) * (P[i][j] * dP)
            } }
        } }
        for k in 0..<3 { #expect(abs(energy[k] - expected[k]) <= 1e-4 * expected[k] + 1e-9) }
    }

    @Test func attentionMassSumsToQueriesAndMatchesBands() {
        var rng = SplitMix(state: 13)
        let qkv = Buffer(B * T * 3 * C, &rng).data
        let attn = Attention(B: B, T: T, C: C, heads: heads)
        var out = [Float](repeating: 0, count: B * T * C), att = [Float](repeating: 0, count: B * heads * T * T)
        var mass = [Double](repeating: 0, count: heads * 3)
        attn.forward(out: &out, att: &att, qkv: qkv, bands: Attention.Bands(upperEdges: upperEdges, T: T), massOut: &mass, parallel: testParallel)
        let q = qkv.map(Double.init)
        for h in 0..<heads {
            var expected = [0.0, 0.0, 0.0]
            for b in 0..<B {
                let P = probabilities(q, b: b, h: h)
                for i in 0..<T { for j in 0...i {
                    let d = i - j
                    expected[d <= 2 ? 0 : (d <= 6 ? 1 : 2)] += P[i][j]
                } }
            }
            #expect(abs(mass[h * 3..<h * 3 + 3].reduce(0, +) - Double(B * T)) < 1e-4)
            for k in 0..<3 { #expect(abs(mass[h * 3 + k] - expected[k]) < 1e-4) }
        }
    }
}
