import Foundation
import Testing
@testable import Kernels

/// Finite-difference tests of every backward kernel (tolerance: relative error < 1e-3 between the
/// Float32 analytic gradient and float64 central differences of an independent reference).
@Suite struct KernelGradientTests {

    static let tolerance = 1e-3

    /// (rows, inC, outC): one worker; two workers splitting dweight by output channels (outC ≥ inC)
    /// and by input channels (inC > outC).
    @Test(arguments: [(5, 6, 7), (64, 5, 9), (64, 9, 5)])
    func matmulBackwardMatchesFiniteDifferences(rows: Int, inC: Int, outC: Int) {
        var rng = SplitMix(state: 1)
        let twoWorkers = Parallel(threads: 2)
        let inp = Buffer(rows * inC, &rng).data, w = Buffer(outC * inC, &rng).data
        let bias = Buffer(outC, &rng).data, r = Buffer(rows * outC, &rng).data
        func ref(_ x: [Double], _ w: [Double], _ b: [Double]) -> Double {
            var s = 0.0
            for i in 0..<rows { for o in 0..<outC {
                var v = b[o]
                for c in 0..<inC { v += x[i * inC + c] * w[o * inC + c] }
                s += v * Double(r[i * outC + o])
            } }
            return s
        }
        var out = [Float](repeating: 0, count: rows * outC)
        Matmul.forward(out: &out, inp: inp, weight: w, bias: bias, rows: rows, inC: inC, outC: outC, parallel: twoWorkers)
        let refOut = ref(inp.map(Double.init), w.map(Double.init), bias.map(Double.init))
        #expect(abs(zip(out, r).reduce(0.0) { $0 + Double($1.0 * $1.1) } - refOut) < 1e-4)
        var dinp = [Float](repeating: 0, count: rows * inC), dw = [Float](repeating: 0, count: outC * inC)
        var db = [Float](repeating: 0, count: outC)
        let ones = [Float](repeating: 1, count: rows)
        Matmul.backward(dinp: &dinp, dweight: &dw, dbias: &db, dout: r, inp: inp, weight: w, ones: ones,
                        rows: rows, inC: inC, outC: outC, parallel: twoWorkers)
        let x = inp.map(Double.init), wd = w.map(Double.init), bd = bias.map(Double.init)
        #expect(relativeError(dinp, numericGradient(x) { ref($0, wd, bd) }) < Self.tolerance)
        #expect(relativeError(dw, numericGradient(wd) { ref(x, $0, bd) }) < Self.tolerance)
        #expect(relativeError(db, numericGradient(bd) { ref(x, wd, $0) }) < Self.tolerance)
    }

    /// C = 16 fills 8-lane vectors exactly; C = 21 leaves a scalar tail.
    @Test(arguments: [16, 21]) func layerNormBackwardMatchesFiniteDifferences(C: Int) {
        var rng = SplitMix(state: 2)
        let rows = 4
        let inp = Buffer(rows * C, &rng, scale: 2).data, w = Buffer(C, &rng).data, b = Buffer(C, &rng).data
        let r = Buffer(rows * C, &rng).data
        func ref(_ x: [Double], _ w: [Double], _ b: [Double]) -> Double {
            var s = 0.0
            for i in 0..<rows {
                let row = x[(i * C)..<((i + 1) * C)]
                let m = row.reduce(0, +) / Double(C)
                let v = row.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(C)
                let rs = 1 / (v + Double(LayerNorm.epsilon)).squareRoot()
                for c in 0..<C { s += ((x[i * C + c] - m) * rs * w[c] + b[c]) * Double(r[i * C + c]) }
            }
            return s
        }
        var out = [Float](repeating: 0, count: rows * C), mean = [Float](repeating: 0, count: rows)
        var rstd = [Float](repeating: 0, count: rows)
        LayerNorm.forward(out: &out, mean: &mean, rstd: &rstd, inp: inp, weight: w, bias: b, rows: rows, C: C, parallel: testParallel)
        // Accumulate into a non-zero buffer to check the `accumulate` path too.
        let base = Buffer(rows * C, &rng).data
        var dinp = base, dw = [Float](repeating: 9, count: C), db = [Float](repeating: 9, count: C)
        var lnScratch = [Float](repeating: 0, count: LayerNorm.scratchCount(C: C, workers: testParallel.workers))
        LayerNorm.backward(dinp: &dinp, dweight: &dw, dbias: &db, dout: r, inp: inp, weight: w,
                           mean: mean, rstd: rstd, rows: rows, C: C, accumulate: true,
                           scratch: &lnScratch, parallel: testParallel)
        let x = inp.map(Double.init), wd = w.map(Double.init), bd = b.map(Double.init)
        let dx = zip(dinp, base).map { $0 - $1 }
        #expect(relativeError(dx, numericGradient(x) { ref($0, wd, bd) }) < Self.tolerance)
        #expect(relativeError(dw, numericGradient(wd) { ref(x, $0, bd) }) < Self.tolerance)
        #expect(relativeError(db, numericGradient(bd) { ref(x, wd, $0) }) < Self.tolerance)
    }

    @Test func geluBackwardMatchesFiniteDifferences() {
        var rng = SplitMix(state: 3)
        let n = 37  // not a multiple of 8: covers the scalar tail
        let inp = Buffer(n, &rng, scale: 4).data, r = Buffer(n, &rng).data
        func ref(_ x: [Double]) -> Double { geluWeightedSum(x, r) }
        var out = [Float](repeating: 0, count: n)
        GELU.forward(out: &out, inp: inp, count: n, parallel: testParallel)
        #expect(abs(zip(out, r).reduce(0.0) { $0 + Double($1.0 * $1.1) } - ref(inp.map(Double.init))) < 1e-4)
        var saved = [Float](repeating: 0, count: n), out2 = saved
        GELU.forward(out: &out2, derivative: &saved, inp: inp, count: n, parallel: testParallel)
        var dinp = [Float](repeating: 0, count: n)
        GELU.backward(dinp: &dinp, derivative: saved, dout: r, count: n, parallel: testParallel)
        #expect(relativeError(dinp, numericGradient(inp.map(Double.init), ref)) < Self.tolerance)
    }

    @Test func crossEntropyBackwardMatchesFiniteDifferences() {
        var rng = SplitMix(state: 4)
        let rows = 3, V = 20
        let logits = Buffer(rows * V, &rng, scale: 3).data
        let targets: [Int32] = [2, 19, 7]
        let scale: [Float] = [0.5, 0.25, 0]  // includes a masked row
        func ref(_ x: [Double]) -> Double {
            var s = 0.0
            for i in 0..<rows {
                let row = x[(i * V)..<((i + 1) * V)]
                let m = row.max()!
                let lse = m + Foundation.log(row.reduce(0) { $0 + Foundation.exp($1 - m) })
                s += (lse - x[i * V + Int(targets[i])]) * Double(scale[i])
            }
            return s
        }
        var probs = [Float](repeating: 0, count: rows * V), losses = [Float](repeating: 0, count: rows)
        CrossEntropy.forward(probs: &probs, losses: &losses, logits: logits, targets: targets, rows: rows, V: V, parallel: testParallel)
        var refLoss = 0.0
        for i in 0..<rows { refLoss += Double(losses[i] * scale[i]) }
        #expect(abs(refLoss - ref(logits.map(Double.init))) < 1e-5)
        var d = [Float](repeating: 0, count: rows * V)
        CrossEntropy.backward(dlogits: &d, probs: probs, targets: targets, rowScale: scale, rows: rows, V: V, parallel: testParallel)
        #expect(relativeError(d, numericGradient(logits.map(Double.init), ref)) < Self.tolerance)
    }

    @Test func embeddingBackwardMatchesFiniteDifferences() {
        var rng = SplitMix(state: 5)
        let B = 2, T = 3, C = 4, V = 5, maxT = 4
        let wte = Buffer(V * C, &rng).data, wpe = Buffer(maxT * C, &rng).data
        let tokens: [Int32] = [1, 4, 1, 0, 3, 1], r = Buffer(B * T * C, &rng).data
        func ref(_ e: [Double], _ p: [Double]) -> Double {
            var s = 0.0
            for b in 0..<B { for t in 0..<T { for c in 0..<C {
                s += (e[Int(tokens[b * T + t]) * C + c] + p[t * C + c]) * Double(r[(b * T + t) * C + c])
            } } }
            return s
        }
        var dwte = [Float](repeating: 0, count: V * C), dwpe = [Float](repeating: 7, count: maxT * C)
        Embedding.backward(dwte: &dwte, dwpe: &dwpe, dout: r, tokens: tokens, B: B, T: T, C: C, maxT: maxT)
        let e = wte.map(Double.init), p = wpe.map(Double.init)
        #expect(relativeError(dwte, numericGradient(e) { ref($0, p) }) < Self.tolerance)
        #expect(relativeError(dwpe, numericGradient(p) { ref(e, $0) }) < Self.tolerance)
    }

    /// The fused residual + LayerNorm forward equals the residual add followed by LayerNorm, bit
    /// for bit, for widths with and without a scalar tail and for 1 to 3 workers.
    @Test(arguments: [8, 37, 384]) func residualLayerNormForwardIsBitIdenticalToTheTwoPasses(C: Int) {
        var rng = SplitMix(state: 6)
        let rows = 70
        let a = Buffer(rows * C, &rng, scale: 3).data, b = Buffer(rows * C, &rng).data
        let w = Buffer(C, &rng).data, bias = Buffer(C, &rng).data
        for workers in 1...3 {
            let parallel = Parallel(threads: workers)
            var sum1 = [Float](repeating: 0, count: rows * C), out1 = sum1
            var mean1 = [Float](repeating: 0, count: rows), rstd1 = mean1
            Residual.forward(out: &sum1, a: a, b: b, count: rows * C, parallel: parallel)
            LayerNorm.forward(out: &out1, mean: &mean1, rstd: &rstd1, inp: sum1, weight: w, bias: bias,
                              rows: rows, C: C, parallel: parallel)
            // In place, as the model calls it: sum aliases a.
            var sum2 = a, out2 = [Float](repeating: 0, count: rows * C)
            var mean2 = [Float](repeating: 0, count: rows), rstd2 = mean2
            sum2.withUnsafeMutableBufferPointer { s in
                LayerNorm.residualForward(sum: s.baseAddress!, a: s.baseAddress!, b: b, out: &out2, mean: &mean2,
                                          rstd: &rstd2, weight: w, bias: bias, rows: rows, C: C, parallel: parallel)
            }
            #expect(sum1.map(\.bitPattern) == sum2.map(\.bitPattern))
            #expect(out1.map(\.bitPattern) == out2.map(\.bitPattern))
            #expect(mean1.map(\.bitPattern) == mean2.map(\.bitPattern))
            #expect(rstd1.map(\.bitPattern) == rstd2.map(\.bitPattern))
        }
    }

    /// Softmax rows of every length from 1 to 41 (vector body and every tail length) against a
    /// float64 reference.
    @Test func softmaxRowsOfEveryLengthMatchTheReference() {
        var rng = SplitMix(state: 7)
        for n in 1...41 {
            let x = Buffer(n, &rng, scale: 6).data
            var out = [Float](repeating: 0, count: n)
            Softmax.row(out: &out, inp: x, count: n, scale: 0.7)
            let mx = x.map(Double.init).max()!
            let e = x.map { Foundation.exp(0.7 * (Double($0) - mx)) }
            let total = e.reduce(0, +)
            for i in 0..<n { #expect(abs(Double(out[i]) - e[i] / total) < 1e-6, "n \(n) i \(i)") }
        }
    }

    /// The vector square root (AdamW) and maximum (softmax) give the lane-wise scalar results bit
    /// for bit, including 0, denormals, huge values and +inf.
    @Test func vectorSquareRootAndMaximumMatchTheScalarOnes() {
        var rng = SplitMix(state: 8)
        var xs: [Float] = [0, .leastNonzeroMagnitude, .leastNormalMagnitude, 1, 2, .greatestFiniteMagnitude, .infinity, 1e-30]
        for _ in 0..<4096 { xs.append(Float(rng.unit()) * Float(pow(10, rng.unit() * 40 - 20))) }
        while xs.count % 8 != 0 { xs.append(3) }
        for i in stride(from: 0, to: xs.count, by: 8) {
            let v = SIMD8<Float>(xs[i..<(i + 8)])
            let w = SIMD8<Float>(xs[((i + 8) % xs.count)..<((i + 8) % xs.count + 8)]) - 1e-3
            let r = VectorMath.sqrt(v), m = VectorMath.max(v, w)
            for k in 0..<8 {
                #expect(r[k].bitPattern == v[k].squareRoot().bitPattern)
                #expect(m[k].bitPattern == Swift.max(v[k], w[k]).bitPattern)
            }
        }
    }

    /// The model's GELU path, in place: the forward pass saves GELU′ over its input and the
    /// backward pass multiplies into dout. The same output bits as `forward(out:inp:)`, and the
    /// same gradient bits as the out-of-place call and as one worker; lengths with and without a
    /// scalar tail, 1–3 workers (the split of a long buffer is covered by n = 20,011).
    @Test(arguments: [37, 64, 20_011]) func geluInPlaceSavedDerivativeMatchesOutOfPlace(n: Int) {
        var rng = SplitMix(state: 9)
        let inp = Buffer(n, &rng, scale: 4).data, r = Buffer(n, &rng).data
        var out1 = [Float](repeating: 0, count: n), derivative = out1, d1 = out1
        GELU.forward(out: &out1, inp: inp, count: n, parallel: testParallel)
        GELU.forward(out: &d1, derivative: &derivative, inp: inp, count: n, parallel: testParallel)
        #expect(out1.map(\.bitPattern) == d1.map(\.bitPattern))
        GELU.backward(dinp: &d1, derivative: derivative, dout: r, count: n, parallel: testParallel)
        #expect(d1.contains { $0 != 0 })
        for workers in 1...3 {
            let parallel = Parallel(threads: workers)
            var out2 = [Float](repeating: 0, count: n), saved = inp
            saved.withUnsafeMutableBufferPointer { s in
                GELU.forward(out: &out2, derivative: s.baseAddress!, inp: s.baseAddress!, count: n, parallel: parallel)
            }
            var d2 = r
            d2.withUnsafeMutableBufferPointer { d in
                GELU.backward(dinp: d.baseAddress!, derivative: saved, dout: d.baseAddress!, count: n, parallel: parallel)
            }
            #expect(out1.map(\.bitPattern) == out2.map(\.bitPattern))
            #expect(d1.map(\.bitPattern) == d2.map(\.bitPattern))
        }
        if n < 100 {
            func ref(_ x: [Double]) -> Double { geluWeightedSum(x, r) }
            var out = [Float](repeating: 0, count: n), saved = [Float](repeating: 0, count: n)
            GELU.forward(out: &out, derivative: &saved, inp: inp, count: n, parallel: testParallel)
            var dinp = [Float](repeating: 0, count: n)
            GELU.backward(dinp: &dinp, derivative: saved, dout: r, count: n, parallel: testParallel)
            #expect(relativeError(dinp, numericGradient(inp.map(Double.init), ref)) < Self.tolerance)
        }
    }
}

/// Σ GELU(x_i)·r_i in Double with the tanh approximation: the reference of the GELU tests.
private func geluWeightedSum(_ x: [Double], _ r: [Float]) -> Double {
    var s = 0.0
    for i in x.indices {
        let v = x[i]
        s += 0.5 * v * (1 + Foundation.tanh(0.7978845608028654 * (v + 0.044715 * v * v * v))) * Double(r[i])
    }
    return s
}
