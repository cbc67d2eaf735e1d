import Foundation
import Kernels
import Testing
@testable import Training

/// The statistics AdamW measures for the oscillation meters, against sums written out here from
/// the parameters before and after each step.
@Suite struct AdamWTests {
    @Test("update statistics: gradient and update dot products with the previous step, sign flips")
    func statistics() {
        Parallel.configure(threads: 2)  // as every test: the worker count is process-wide
        let n = 1003  // not a multiple of 8: the scalar tail is measured too
        let adam = AdamW(config: AdamWConfig(), count: n)
        var params = (0..<n).map { Float(sin(Double($0))) }
        var previousGrad = [Float](repeating: 0, count: n), previousUpdate = previousGrad
        for step in 0..<3 {
            let grads = (0..<n).map { Float(cos(Double($0 * (step + 2)))) * 0.1 }
            let before = params
            adam.beginStep()
            let stats = params.withUnsafeMutableBufferPointer { p in
                grads.withUnsafeBufferPointer { g in
                    adam.update(params: p.baseAddress!, grads: g.baseAddress!, offset: 0, count: n, lr: 1e-2,
                                decays: true, gradScale: 0.5)
                }
            }
            let updates = (0..<n).map { params[$0] - before[$0] }
            let scaled = grads.map { $0 * 0.5 }
            func dot(_ a: [Float], _ b: [Float]) -> Double { zip(a, b).reduce(0) { $0 + Double($1.0) * Double($1.1) } }
            func close(_ a: Double, _ b: Double) -> Bool { abs(a - b) <= 1e-5 * max(1, abs(b)) }
            #expect(close(stats.gradSquared, dot(scaled, scaled)))
            #expect(close(stats.gradDotPrevious, dot(scaled, previousGrad)))
            #expect(close(stats.previousGradSquared, dot(previousGrad, previousGrad)))
            #expect(close(stats.updateSquared, dot(updates, updates)))
            #expect(close(stats.updateDotPrevious, dot(updates, previousUpdate)), "step \(step)")
            #expect(close(stats.previousUpdateSquared, dot(previousUpdate, previousUpdate)))
            #expect(stats.signFlips == zip(updates, previousUpdate).filter { $0.0 * $0.1 < 0 }.count)
            if step > 0 { #expect(stats.updateDotPrevious != 0 && stats.signFlips > 0) }
            previousGrad = scaled
            previousUpdate = updates
        }
    }

    @Test("sign flips: counted over every length (vector body and scalar tail), zero updates never flip")
    func signFlips() {
        Parallel.configure(threads: 2)
        for n in [1, 7, 8, 9, 100, 4099, 70_001] {  // 70,001 is split over the workers
            let adam = AdamW(config: AdamWConfig(), count: n)
            var params = (0..<n).map { Float(sin(Double($0) + 1)) }
            var previousUpdate = [Float](repeating: 0, count: n)
            for step in 0..<4 {
                // Every fifth parameter never gets a gradient: without weight decay its update is 0.
                let grads = (0..<n).map { i -> Float in i % 5 == 0 ? 0 : Float(sin(Double(i * 7 + step * 13))) }
                let before = params
                adam.beginStep()
                let stats = params.withUnsafeMutableBufferPointer { p in
                    grads.withUnsafeBufferPointer { g in
                        adam.update(params: p.baseAddress!, grads: g.baseAddress!, offset: 0, count: n, lr: 1e-2,
                                    decays: false, gradScale: 1)
                    }
                }
                let updates = (0..<n).map { params[$0] - before[$0] }
                #expect(stride(from: 0, to: n, by: 5).allSatisfy { updates[$0] == 0 })
                func opposite(_ u: Float, _ p: Float) -> Bool { (u > 0 && p < 0) || (u < 0 && p > 0) }
                let expected = zip(updates, previousUpdate).filter { opposite($0.0, $0.1) }.count
                #expect(stats.signFlips == expected, "n \(n), step \(step)")
                if step > 0 && n > 1000 { #expect(stats.signFlips > 0, "n \(n): the test exercises flips") }
                previousUpdate = updates
            }
        }
    }

    @Test("the update rule against a Double reference: bias correction, decoupled weight decay, a learning rate per tensor")
    func updateRule() {
        Parallel.configure(threads: 2)
        var config = AdamWConfig()
        config.beta1 = 0.8; config.beta2 = 0.9; config.epsilon = 1e-6; config.weightDecay = 0.3
        // Two tensors in one arena: the first decays at rate 1e-2, the second does not, at 3e-2
        // (as a depth group with φ = 3 would); 70,001 values are split over the workers.
        let tensors = [(offset: 0, count: 1003, lr: 1e-2, decays: true), (offset: 1003, count: 70_001, lr: 3e-2, decays: false)]
        let n = 1003 + 70_001
        let adam = AdamW(config: config, count: n)
        var params = (0..<n).map { Float(sin(Double($0) * 0.37)) }
        var theta = params.map(Double.init), m = [Double](repeating: 0, count: n), v = m
        let b1 = Double(config.beta1), b2 = Double(config.beta2), eps = Double(config.epsilon), wd = Double(config.weightDecay)
        for step in 1...4 {
            let grads = (0..<n).map { Float(cos(Double($0 * step) * 0.11) * 0.1) }
            let scale: Float = step == 3 ? 0.25 : 1  // clipping scales the gradient on the way in
            adam.beginStep()
            for t in tensors {
                _ = params.withUnsafeMutableBufferPointer { p in
                    grads.withUnsafeBufferPointer { g in
                        adam.update(params: p.baseAddress!, grads: g.baseAddress!, offset: t.offset, count: t.count,
                                    lr: Float(t.lr), decays: t.decays, gradScale: scale)
                    }
                }
                // PyTorch's AdamW: θ ← θ·(1 − lr·wd), then θ ← θ − lr·m̂/(√v̂ + ε).
                for i in t.offset..<(t.offset + t.count) {
                    let g = Double(Float(grads[i] * scale))
                    m[i] = b1 * m[i] + (1 - b1) * g
                    v[i] = b2 * v[i] + (1 - b2) * g * g
                    let mHat = m[i] / (1 - pow(b1, Double(step))), vHat = v[i] / (1 - pow(b2, Double(step)))
                    if t.decays { theta[i] *= 1 - t.lr * wd }
                    theta[i] -= t.lr * mHat / (vHat.squareRoot() + eps)
                }
            }
            #expect(adam.stepCount == step)
            // Float32 rounding allows a few ulps; a wrong bias correction, decay or rate is off by
            // a sizeable part of an update (about 1e-2 here).
            let off = (0..<n).filter { abs(Double(params[$0]) - theta[$0]) > 2e-6 + 1e-5 * abs(theta[$0]) }
            #expect(off.isEmpty, "step \(step): \(off.count) values differ, first at \(off.first ?? -1)")
        }
        // Decoupled decay: with a zero gradient a decaying tensor shrinks by exactly (1 − lr·wd)
        // per step, whatever its moments say about the scale of the gradient.
        let zero = AdamW(config: config, count: 16)
        var w = [Float](repeating: 2, count: 16)
        let g = [Float](repeating: 0, count: 16)
        zero.beginStep()
        _ = w.withUnsafeMutableBufferPointer { p in
            g.withUnsafeBufferPointer {
                zero.update(params: p.baseAddress!, grads: $0.baseAddress!, offset: 0, count: 16, lr: 0.1, decays: true, gradScale: 1)
            }
        }
        #expect(w.allSatisfy { $0 == 2 * (1 - Float(0.1) * config.weightDecay) })
    }
}
