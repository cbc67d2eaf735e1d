/// Layer normalisation over the last dimension, with a gain and a bias (ε = 1e-5).
public enum LayerNorm {
    public static let epsilon: Float = 1e-5

    /// inp [rows, C] → out [rows, C]; saves mean [rows] and rstd [rows] for the backward pass.
    @inlinable
    public static func forward(
        out: UnsafeMutablePointer<Float>, mean: UnsafeMutablePointer<Float>,
        rstd: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>,
        weight: UnsafePointer<Float>, bias: UnsafePointer<Float>, rows: Int, C: Int
    ) {
        let invC = 1 / Float(C)
        for r in 0..<rows {
            let x = inp + r * C
            var s: Float = 0
            for i in 0..<C { s += x[i] }
            let m = s * invC
            var v: Float = 0
            for i in 0..<C { let d = x[i] - m; v += d * d }
            let rs = 1 / (v * invC + epsilon).squareRoot()
            let o = out + r * C
            for i in 0..<C { o[i] = (x[i] - m) * rs * weight[i] + bias[i] }
            mean[r] = m
            rstd[r] = rs
        }
    }

    /// dout [rows, C] → dinp [rows, C] (added to when `accumulate`, else overwritten);
    /// dweight and dbias [C] are overwritten.
    @inlinable
    public static func backward(
        dinp: UnsafeMutablePointer<Float>, dweight: UnsafeMutablePointer<Float>,
        dbias: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, inp: UnsafePointer<Float>,
        weight: UnsafePointer<Float>, mean: UnsafePointer<Float>, rstd: UnsafePointer<Float>,
        rows: Int, C: Int, accumulate: Bool
    ) {
        dweight.update(repeating: 0, count: C)
        dbias.update(repeating: 0, count: C)
        let invC = 1 / Float(C)
        for r in 0..<rows {
            let x = inp + r * C
            let g = dout + r * C
            let m = mean[r], rs = rstd[r]
            var dnormMean: Float = 0
            var dnormNormMean: Float = 0
            for i in 0..<C {
                let n = (x[i] - m) * rs
                let dn = weight[i] * g[i]
                dnormMean += dn
                dnormNormMean += dn * n
                dbias[i] += g[i]
                dweight[i] += n * g[i]
            }
            dnormMean *= invC
            dnormNormMean *= invC
            let d = dinp + r * C
            if accumulate {
                for i in 0..<C {
                    let n = (x[i] - m) * rs
                    d[i] += (weight[i] * g[i] - dnormMean - n * dnormNormMean) * rs
                }
            } else {
                for i in 0..<C {
                    let n = (x[i] - m) * rs
                    d[i] = (weight[i] * g[i] - dnormMean - n * dnormNormMean) * rs
                }
            }
        }
    }
}
