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
        let invC = 1 / Float(C)
        parallel.chunks(rows, minimumChunk: 32) { _, range in
            for r in range {
                let x = inp + r * C
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
                let o = out + r * C
                for k in 0..<C { o[k] = (x[k] - m) * rs * weight[k] + bias[k] }
                mean[r] = m
                rstd[r] = rs
            }
        }
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
                var dnormMean: Float = 0
                var dnormNormMean: Float = 0
                for i in 0..<C {
                    let nrm = (x[i] - m) * rs
                    let dn = weight[i] * g[i]
                    dnormMean += dn
                    dnormNormMean += dn * nrm
                    db[i] += g[i]
                    dw[i] += nrm * g[i]
                }
                dnormMean *= invC
                dnormNormMean *= invC
                let d = dinp + r * C
                if accumulate {
                    for i in 0..<C {
                        let nrm = (x[i] - m) * rs
                        d[i] += (weight[i] * g[i] - dnormMean - nrm * dnormNormMean) * rs
                    }
                } else {
                    for i in 0..<C {
                        let nrm = (x[i] - m) * rs
                        d[i] = (weight[i] * g[i] - dnormMean - nrm * dnormNormMean) * rs
                    }
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
