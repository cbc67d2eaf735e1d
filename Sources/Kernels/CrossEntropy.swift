import Foundation

/// Softmax cross-entropy over a vocabulary, fused with its backward pass.
public enum CrossEntropy {
    /// logits [rows, V], targets [rows] → probs [rows, V] (softmax), losses [rows] in nats.
    @inlinable
    public static func forward(probs: UnsafeMutablePointer<Float>, losses: UnsafeMutablePointer<Float>,
                               logits: UnsafePointer<Float>, targets: UnsafePointer<Int32>,
                               rows: Int, V: Int, parallel: Parallel) {
        parallel.chunks(rows, minimumChunk: 64) { _, range in
            for r in range {
                let x = logits + r * V
                let p = probs + r * V
                Softmax.row(out: p, inp: x, count: V, scale: 1)
                losses[r] = -Foundation.log(max(p[Int(targets[r])], Float.leastNormalMagnitude))
            }
        }
    }

    /// dlogits [rows, V] = (probs − onehot(target)) · scale[r], where scale[r] is the derivative of
    /// the final loss with respect to row r's loss (1/rows for a plain mean; 0 for masked rows).
    /// May alias probs.
    @inlinable
    public static func backward(dlogits: UnsafeMutablePointer<Float>, probs: UnsafePointer<Float>,
                                targets: UnsafePointer<Int32>, rowScale: UnsafePointer<Float>,
                                rows: Int, V: Int, parallel: Parallel) {
        parallel.chunks(rows, minimumChunk: 64) { _, range in
            for r in range {
                let s = rowScale[r]
                let p = probs + r * V
                let d = dlogits + r * V
                for i in 0..<V { d[i] = p[i] * s }
                d[Int(targets[r])] -= s
            }
        }
    }
}

/// Numerically stable softmax of one row.
public enum Softmax {
    /// out[i] = exp(scale·(inp[i] − max)) / Σ. `out` may alias `inp`.
    @inlinable
    public static func row(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, count n: Int,
                           scale: Float) {
        // The maximum on 8 lanes: exact, so the same value as a scalar scan.
        var i = 0
        var mx8 = SIMD8<Float>(repeating: -.infinity)
        while i + 8 <= n { mx8 = VectorMath.max(mx8, VectorMath.load(inp + i)); i += 8 }
        var mx = mx8[0]
        for k in 1..<8 { mx = max(mx, mx8[k]) }
        while i < n { mx = max(mx, inp[i]); i += 1 }
        var sum: Float = 0
        i = 0
        var acc = SIMD8<Float>(repeating: 0)
        while i + 8 <= n {
            let e = VectorMath.exp((VectorMath.load(inp + i) - mx) * scale)
            VectorMath.store(e, out + i)
            acc += e
            i += 8
        }
        sum = acc.sum()
        if i < n {
            // The tail as one vector (the same per-lane function as VectorMath.exp(Float)), its
            // lanes summed in order as the scalar loop would.
            var x = SIMD8<Float>(repeating: mx)
            for k in 0..<(n - i) { x[k] = inp[i + k] }
            let e = VectorMath.exp((x - mx) * scale)
            for k in 0..<(n - i) {
                out[i + k] = e[k]
                sum += e[k]
            }
            i = n
        }
        let inv = 1 / sum
        i = 0
        while i + 8 <= n { VectorMath.store(VectorMath.load(out + i) * inv, out + i); i += 8 }
        while i < n { out[i] *= inv; i += 1 }
    }
}
