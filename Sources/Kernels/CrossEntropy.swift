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
        var mx = -Float.infinity
        for i in 0..<n { mx = max(mx, inp[i]) }
        var sum: Float = 0
        var i = 0
        var acc = SIMD8<Float>(repeating: 0)
        while i + 8 <= n {
            let e = VectorMath.exp((VectorMath.load(inp + i) - mx) * scale)
            VectorMath.store(e, out + i)
            acc += e
            i += 8
        }
        sum = acc.sum()
        while i < n {
            let e = VectorMath.exp((inp[i] - mx) * scale)
            out[i] = e
            sum += e
            i += 1
        }
        let inv = 1 / sum
        for k in 0..<n { out[k] *= inv }
    }
}
