/// Reductions over whole buffers, vectorised with 8 float lanes and summed in Double per block so
/// that long buffers keep their precision.
public enum VectorOps {
    /// √(Σ x²) over `count` floats.
    @inlinable
    public static func norm(_ x: UnsafePointer<Float>, count n: Int) -> Double {
        sumOfSquares(x, count: n).squareRoot()
    }

    /// Σ x² over `count` floats.
    @inlinable
    public static func sumOfSquares(_ x: UnsafePointer<Float>, count n: Int) -> Double {
        var total = 0.0
        var i = 0
        while i < n {
            let end = min(n, i + 4096)
            var acc = SIMD8<Float>(repeating: 0)
            while i + 8 <= end {
                let v = VectorMath.load(x + i)
                acc += v * v
                i += 8
            }
            var s = acc.sum()
            while i < end { s += x[i] * x[i]; i += 1 }
            total += Double(s)
        }
        return total
    }
}
