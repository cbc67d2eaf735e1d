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
                let expected = zip(updates, previousUpdate).filter { ($0.0 > 0 && $0.1 < 0) || ($0.0 < 0 && $0.1 > 0) }.count
                #expect(stats.signFlips == expected, "n \(n), step \(step)")
                if step > 0 && n > 8 { #expect(stats.signFlips > 0) }
                previousUpdate = updates
            }
        }
    }
}
