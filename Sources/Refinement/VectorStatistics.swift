// Fused reductions the trainer runs over a depth group's buffers for the oscillation statistics
// and the relative update. Raw pointers, SIMD, Float lanes flushed into Double per block.

/// Reductions over raw Float buffers, written to vectorise in release builds.
public enum VectorStatistics {
    /// ⟨a, b⟩, ‖a‖² and ‖b‖² in one pass (for cos(g_t, g_{t−1}) = dot / sqrt(aa·bb)).
    public static func dotAndNorms(
        _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count n: Int
    ) -> (dot: Double, aa: Double, bb: Double) {
        let pa = UnsafeMutablePointer(mutating: a), pb = UnsafeMutablePointer(mutating: b)
        var dot = 0.0, aa = 0.0, bb = 0.0
        let vectorEnd = n - n % lanes
        var i = 0
        while i < vectorEnd {
            let end = min(i + TimeBandKernel.block, vectorEnd)
            var vDot = Vector(), vAA = Vector(), vBB = Vector()
            while i < end {
                let x = loadVector(pa + i), y = loadVector(pb + i)
                vDot += x * y
                vAA += x * x
                vBB += y * y
                i += lanes
            }
            dot += Double(vDot.sum()); aa += Double(vAA.sum()); bb += Double(vBB.sum())
        }
        while i < n {
            let x = Double(a[i]), y = Double(b[i])
            dot += x * y; aa += x * x; bb += y * y
            i += 1
        }
        return (dot, aa, bb)
    }

    /// ‖a‖².
    public static func sumOfSquares(_ a: UnsafePointer<Float>, count n: Int) -> Double {
        let pa = UnsafeMutablePointer(mutating: a)
        var total = 0.0
        let vectorEnd = n - n % lanes
        var i = 0
        while i < vectorEnd {
            let end = min(i + TimeBandKernel.block, vectorEnd)
            var partial = Vector()
            while i < end {
                let x = loadVector(pa + i)
                partial += x * x
                i += lanes
            }
            total += Double(partial.sum())
        }
        while i < n {
            total += Double(a[i]) * Double(a[i])
            i += 1
        }
        return total
    }

    /// Number of elements whose update changed sign since the previous update: one is > 0 and
    /// the other < 0 (a zero on either side is not a flip).
    public static func signFlips(
        update: UnsafePointer<Float>, previousUpdate: UnsafePointer<Float>, count n: Int
    ) -> Int {
        let pu = UnsafeMutablePointer(mutating: update), pp = UnsafeMutablePointer(mutating: previousUpdate)
        let zero = Vector(), one = Vector.MaskStorage(repeating: 1)
        var flips = 0
        let vectorEnd = n - n % lanes
        var i = 0
        while i < vectorEnd {
            let end = min(i + TimeBandKernel.block, vectorEnd)
            var partial = Vector.MaskStorage()
            while i < end {
                let u = loadVector(pu + i), p = loadVector(pp + i)
                let flip = (u .> zero .& p .< zero) .| (u .< zero .& p .> zero)
                partial &+= Vector.MaskStorage().replacing(with: one, where: flip)
                i += lanes
            }
            flips += Int(partial.wrappedSum())
        }
        while i < n {
            let u = update[i], p = previousUpdate[i]
            if (u > 0 && p < 0) || (u < 0 && p > 0) { flips += 1 }
            i += 1
        }
        return flips
    }

    /// `signFlips(update:previousUpdate:count:)`, then copies `update` into `previousUpdate`, so
    /// the next step compares against this one.
    public static func signFlipsAndStore(
        update: UnsafePointer<Float>, previousUpdate: UnsafeMutablePointer<Float>, count n: Int
    ) -> Int {
        let flips = signFlips(update: update, previousUpdate: previousUpdate, count: n)
        previousUpdate.update(from: update, count: n)
        return flips
    }
}
