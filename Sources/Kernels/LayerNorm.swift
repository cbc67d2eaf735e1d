/// Layer normalisation over the last dimension, with a gain and a bias (ε = 1e-5).
public enum LayerNorm {
    public static let epsilon: Float = 1e-5

    /// inp [rows, C] → out [rows, C]; saves mean [rows] and rstd [rows] for the backward pass.
    @inlinable
    public static func forward(
        out: UnsafeMutablePointer<Float>, mean: UnsafeMutablePointer<Float>,
        rstd: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>,
        weight: UnsafePointer<Float>, bias: UnsafePointer<Float>, rows: Int, C: Int, parallel: Parallel
    ) {
        parallel.chunks(rows, minimumChunk: 32) { _, range in
            for r in range {
                (mean[r], rstd[r]) = row(out: out + r * C, x: inp + r * C, weight: weight, bias: bias, C: C)
            }
        }
    }

    /// The residual connection fused with the LayerNorm that always follows it: sum = a + b
    /// [rows, C] (may alias a or b), then `forward` on sum, row by row while the row is in cache.
    /// Bit-identical to `Residual.forward` followed by `forward`, with one pass over memory fewer.
    @inlinable
    public static func residualForward(
        sum: UnsafeMutablePointer<Float>, a: UnsafePointer<Float>, b: UnsafePointer<Float>,
        out: UnsafeMutablePointer<Float>, mean: UnsafeMutablePointer<Float>,
        rstd: UnsafeMutablePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>,
        rows: Int, C: Int, parallel: Parallel
    ) {
        parallel.chunks(rows, minimumChunk: 32) { _, range in
            for r in range {
                let s = sum + r * C, x = a + r * C, y = b + r * C
                var i = 0
                while i + 8 <= C {
                    VectorMath.store(VectorMath.load(x + i) + VectorMath.load(y + i), s + i)
                    i += 8
                }
                while i < C { s[i] = x[i] + y[i]; i += 1 }
                (mean[r], rstd[r]) = row(out: out + r * C, x: UnsafePointer(s), weight: weight, bias: bias, C: C)
            }
        }
    }

    /// One row: out = (x − mean)·rstd·weight + bias; returns (mean, rstd).
    @inlinable @inline(__always)
    static func row(out o: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                    bias: UnsafePointer<Float>, C: Int) -> (Float, Float) {
        let invC = 1 / Float(C)
        let m = sum(x, C) * invC
        var v: Float = 0
        var acc = SIMD8<Float>(repeating: 0)
        var i = 0
        while i + 8 <= C {
            let d = VectorMath.load(x + i) - m
            acc += d * d
            i += 8
        }
        v = acc.sum()
        while i < C { let d = x[i] - m; v += d * d; i += 1 }
        let rs = 1 / (v * invC + epsilon).squareRoot()
        i = 0
        while i + 8 <= C {
            let y = (VectorMath.load(x + i) - m) * rs * VectorMath.load(weight + i) + VectorMath.load(bias + i)
            VectorMath.store(y, o + i)
            i += 8
        }
        while i < C { o[i] = (x[i] - m) * rs * weight[i] + bias[i]; i += 1 }
        return (m, rs)
    }

    @inlinable @inline(__always)
    static func sum(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
        var acc = SIMD8<Float>(repeating: 0)
        var i = 0
        while i + 8 <= n { acc += VectorMath.load(x + i); i += 8 }
        var s = acc.sum()
        while i < n { s += x[i]; i += 1 }
        return s
    }

    /// Floats of scratch that `backward` needs: per-worker partial sums of dweight and dbias.
    public static func scratchCount(C: Int, workers: Int) -> Int { 2 * C * workers }

    /// dout [rows, C] → dinp [rows, C] (added to when `accumulate`, else overwritten);
    /// dweight and dbias [C] are overwritten. `scratch` holds `scratchCount` floats.
    @inlinable
    public static func backward(
        dinp: UnsafeMutablePointer<Float>, dweight: UnsafeMutablePointer<Float>,
        dbias: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, inp: UnsafePointer<Float>,
        weight: UnsafePointer<Float>, mean: UnsafePointer<Float>, rstd: UnsafePointer<Float>,
        rows: Int, C: Int, accumulate: Bool, scratch: UnsafeMutablePointer<Float>, parallel: Parallel
    ) {
        let invC = 1 / Float(C)
        let n = parallel.chunkCount(rows, minimumChunk: 32)
        scratch.update(repeating: 0, count: 2 * C * n)
        parallel.chunks(rows, minimumChunk: 32) { k, range in
            let dw = scratch + 2 * C * k, db = dw + C
            for r in range {
                let x = inp + r * C
                let g = dout + r * C
                let m = mean[r], rs = rstd[r]
                // The two row sums on 8 lanes (lanes in order, then the tail).
                var sm = SIMD8<Float>(repeating: 0), snm = SIMD8<Float>(repeating: 0)
                var i = 0
                while i + 8 <= C {
                    let gi = VectorMath.load(g + i)
                    let nrm = (VectorMath.load(x + i) - m) * rs
                    let dn = VectorMath.load(weight + i) * gi
                    sm += dn
                    snm += dn * nrm
                    VectorMath.store(VectorMath.load(db + i) + gi, db + i)
                    VectorMath.store(VectorMath.load(dw + i) + nrm * gi, dw + i)
                    i += 8
                }
                var dnormMean = sm.sum()
                var dnormNormMean = snm.sum()
                while i < C {
                    let nrm = (x[i] - m) * rs
                    let dn = weight[i] * g[i]
                    dnormMean += dn
                    dnormNormMean += dn * nrm
                    db[i] += g[i]
                    dw[i] += nrm * g[i]
                    i += 1
                }
                dnormMean *= invC
                dnormNormMean *= invC
                let d = dinp + r * C
                i = 0
                while i + 8 <= C {
                    let nrm = (VectorMath.load(x + i) - m) * rs
                    let t = (VectorMath.load(weight + i) * VectorMath.load(g + i) - dnormMean - nrm * dnormNormMean) * rs
                    VectorMath.store(accumulate ? VectorMath.load(d + i) + t : t, d + i)
                    i += 8
                }
                while i < C {
                    let nrm = (x[i] - m) * rs
                    let t = (weight[i] * g[i] - dnormMean - nrm * dnormNormMean) * rs
                    d[i] = accumulate ? d[i] + t : t
                    i += 1
                }
            }
        }
        dweight.update(from: scratch, count: C)
        dbias.update(from: scratch + C, count: C)
        for k in 1..<max(n, 1) {
            let dw = scratch + 2 * C * k, db = dw + C
            for i in 0..<C {
                dweight[i] += dw[i]
                dbias[i] += db[i]
            }
        }
    }
}
