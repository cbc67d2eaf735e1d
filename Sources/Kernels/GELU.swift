/// GELU with the tanh approximation: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
public enum GELU {
    @usableFromInline static let k: Float = 0.7978845608028654  // √(2/π)
    @usableFromInline static let c: Float = 0.044715

    /// `body(lo, hi)` over the workers' spans of 0..<n, each a whole number of 8-lane vectors
    /// except the last, which takes the tail.
    @inlinable @inline(__always)
    static func spans(_ n: Int, _ parallel: Parallel, _ body: (Int, Int) -> Void) {
        parallel.chunks(n / 8, minimumChunk: 1024) { _, r in
            body(r.lowerBound * 8, r.upperBound == n / 8 ? n : r.upperBound * 8)
        }
    }

    /// GELU′(x) from t = tanh(k·(x + c·x³)), the tanh the output uses (8 lanes, and one float for
    /// the tail below).
    @inlinable @inline(__always)
    static func derivativeFromTanh(_ x: VectorMath.F8, _ t: VectorMath.F8) -> VectorMath.F8 {
        let sech2 = 1 - t * t
        let cubic: VectorMath.F8 = 1 + 3 * c * x * x
        return 0.5 * (1 + t) + 0.5 * x * sech2 * k * cubic
    }

    @inlinable @inline(__always)
    static func derivativeFromTanh(_ x: Float, _ t: Float) -> Float {
        0.5 * (1 + t) + 0.5 * x * (1 - t * t) * k * (1 + 3 * c * x * x)
    }

    /// inp [n] → out [n].
    @inlinable
    public static func forward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, count n: Int, parallel: Parallel) {
        spans(n, parallel) { lo, hi in
            forwardRange(out: out + lo, inp: inp + lo, count: hi - lo)
        }
    }

    @inlinable
    static func forwardRange(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, count n: Int) {
        var i = 0
        while i + 8 <= n {
            let x = VectorMath.load(inp + i)
            let u = k * (x + c * x * x * x)
            let t = VectorMath.tanh(u)
            VectorMath.store(0.5 * x * (1 + t), out + i)
            i += 8
        }
        while i < n {
            let x = inp[i]
            out[i] = 0.5 * x * (1 + VectorMath.tanh(k * (x + c * x * x * x)))
            i += 1
        }
    }

    /// inp [n] → out [n], and derivative [n] = GELU′(inp) (may alias inp: the model overwrites the
    /// pre-activation, which only the backward pass reads), computed from the same tanh as the
    /// output; `backward(dinp:derivative:dout:)` is then one multiplication. `forward(out:inp:)`
    /// gives the same output bits.
    @inlinable
    public static func forward(out: UnsafeMutablePointer<Float>, derivative: UnsafeMutablePointer<Float>,
                               inp: UnsafePointer<Float>, count n: Int, parallel: Parallel) {
        spans(n, parallel) { lo, hi in
            forwardRange(out: out + lo, derivative: derivative + lo, inp: inp + lo, count: hi - lo)
        }
    }

    @inlinable
    static func forwardRange(out: UnsafeMutablePointer<Float>, derivative: UnsafeMutablePointer<Float>,
                             inp: UnsafePointer<Float>, count n: Int) {
        var i = 0
        while i + 8 <= n {
            let x = VectorMath.load(inp + i)
            let u = k * (x + c * x * x * x)
            let t = VectorMath.tanh(u)
            let grad = derivativeFromTanh(x, t)
            VectorMath.store(0.5 * x * (1 + t), out + i)
            VectorMath.store(grad, derivative + i)
            i += 8
        }
        while i < n {
            let x = inp[i]
            let t = VectorMath.tanh(k * (x + c * x * x * x))
            let grad = derivativeFromTanh(x, t)
            out[i] = 0.5 * x * (1 + t)
            derivative[i] = grad
            i += 1
        }
    }

    /// dinp [n] = derivative [n] ⊙ dout [n] (dinp may alias dout), with the derivative saved by
    /// `forward(out:derivative:inp:)`.
    @inlinable
    public static func backward(dinp: UnsafeMutablePointer<Float>, derivative: UnsafePointer<Float>,
                                dout: UnsafePointer<Float>, count n: Int, parallel: Parallel) {
        spans(n, parallel) { lo, hi in
            var i = lo
            while i + 8 <= hi {
                VectorMath.store(VectorMath.load(derivative + i) * VectorMath.load(dout + i), dinp + i)
                i += 8
            }
            while i < hi { dinp[i] = derivative[i] * dout[i]; i += 1 }
        }
    }
}
