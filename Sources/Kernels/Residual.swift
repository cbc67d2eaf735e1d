/// Elementwise helpers: the residual connection and buffer arithmetic.
public enum Residual {
    /// out [n] = a [n] + b [n].
    @inlinable
    public static func forward(out: UnsafeMutablePointer<Float>, a: UnsafePointer<Float>,
                               b: UnsafePointer<Float>, count n: Int, parallel: Parallel) {
        parallel.chunks(n, minimumChunk: 8192) { _, r in
            for i in r { out[i] = a[i] + b[i] }
        }
    }
}

/// Token and position embedding: out[b,t] = wte[token[b,t]] + wpe[t].
public enum Embedding {
    /// tokens [B·T] → out [B, T, C]; wte [V, C], wpe [T_max, C].
    @inlinable
    public static func forward(out: UnsafeMutablePointer<Float>, tokens: UnsafePointer<Int32>,
                               wte: UnsafePointer<Float>, wpe: UnsafePointer<Float>,
                               B: Int, T: Int, C: Int, parallel: Parallel) {
        parallel.chunks(B * T, minimumChunk: 64) { _, rows in
            for row in rows {
                let b = row / T, t = row % T
                let o = out + (b * T + t) * C
                let e = wte + Int(tokens[b * T + t]) * C
                let p = wpe + t * C
                for i in 0..<C { o[i] = e[i] + p[i] }
            }
        }
    }

    /// dout [B, T, C] → dwte (added to: it already holds the output head's gradient), dwpe [T, C]
    /// (its first T rows overwritten, the rest zeroed up to `maxT`).
    @inlinable
    public static func backward(dwte: UnsafeMutablePointer<Float>, dwpe: UnsafeMutablePointer<Float>,
                                dout: UnsafePointer<Float>, tokens: UnsafePointer<Int32>,
                                B: Int, T: Int, C: Int, maxT: Int) {
        dwpe.update(repeating: 0, count: maxT * C)
        for b in 0..<B {
            for t in 0..<T {
                let g = dout + (b * T + t) * C
                let e = dwte + Int(tokens[b * T + t]) * C
                let p = dwpe + t * C
                for i in 0..<C {
                    e[i] += g[i]
                    p[i] += g[i]
                }
            }
        }
    }
}
