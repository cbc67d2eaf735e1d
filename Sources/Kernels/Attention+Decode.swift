import CBLAS

extension Attention {
    /// One query against cached keys and values (generation with a key/value cache).
    ///
    /// q [C] (the new position's query, heads side by side), keys and values [length, C] (rows
    /// 0..<length of the cache, the new position's own key and value included) → out [C].
    /// `scores` is scratch of at least `length` floats. Per head h: P = softmax(q_h·K_hᵀ / √hs),
    /// out_h = P·V_h — row `length − 1` of what `forward` computes for a window of `length`.
    public static func decode(out: UnsafeMutablePointer<Float>, q: UnsafePointer<Float>,
                              keys: UnsafePointer<Float>, values: UnsafePointer<Float>,
                              length: Int, C: Int, heads: Int, scores: UnsafeMutablePointer<Float>) {
        precondition(length >= 1 && C % heads == 0)
        let hs = C / heads
        let scale = 1 / Float(hs).squareRoot()
        for h in 0..<heads {
            // scores[0..<length] = scale · K_h[0..<length] · q_h
            cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(length), Int32(hs), scale, keys + h * hs, Int32(C),
                        q + h * hs, 1, 0, scores, 1)
            Softmax.row(out: scores, inp: scores, count: length, scale: 1)
            // out_h [hs] = V_h[0..<length]ᵀ · scores
            cblas_sgemv(CblasRowMajor, CblasTrans, Int32(length), Int32(hs), 1, values + h * hs, Int32(C),
                        scores, 1, 0, out + h * hs, 1)
        }
    }
}
