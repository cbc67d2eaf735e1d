// The loops of the time band filter on raw buffers, in SIMD. Sums run in Float lanes over
// blocks of `block` elements and are then added into Double, which keeps them accurate and lets
// the loops vectorise. Every per-element value (EMAs, bands, the change d) is computed by the same
// expressions in every loop, so the guard's ⟨d, g⟩ and the applied change agree.

/// The SIMD width of every loop. Four lanes match the SSE registers of the baseline x86-64 target;
/// eight lanes (two registers each) spilled the seven accumulators and ran slower.
typealias Vector = SIMD4<Float>
var lanes: Int { @inline(__always) get { Vector.scalarCount } }

@inline(__always)
func loadVector(_ pointer: UnsafeMutablePointer<Float>) -> Vector {
    UnsafeRawPointer(pointer).loadUnaligned(as: Vector.self)
}

@inline(__always)
func storeVector(_ value: Vector, _ pointer: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(pointer).storeBytes(of: value, as: Vector.self)
}

/// What the loops compute on one Float and on a Vector of them alike.
protocol LaneArithmetic {
    static func + (a: Self, b: Self) -> Self
    static func - (a: Self, b: Self) -> Self
    static func * (a: Self, b: Self) -> Self
}

extension Float: LaneArithmetic {}
extension SIMD4: LaneArithmetic where Scalar == Float {}

/// The bands of an element, h = g − m_f and mid = m_f − m_s (low = m_s), and the change
/// d = c_H·h + c_M·mid + c_L·m_s: the one expression of d, for the guard's ⟨d, g⟩ and for ĝ = g + d.
@inline(__always)
func bands<L: LaneArithmetic>(_ g: L, _ f: L, _ s: L, _ cH: L, _ cM: L, _ cL: L) -> (high: L, mid: L, change: L) {
    let h = g - f, mid = f - s
    return (h, mid, cH * h + cM * mid + cL * s)
}

enum TimeBandKernel {
    /// Elements per block: a block of the three buffers (12 KB) stays in L1 between the two
    /// loops of pass 1, and each Float-lane partial sum is added into Double after a block.
    static var block: Int { 1024 }

    struct Sums {
        var stats = TimeBandStats()
        /// ‖g‖² and ⟨d, g⟩ with d = ĝ − g, for the guard ⟨ĝ, g⟩ = ‖g‖² + ⟨d, g⟩.
        var gradientSquared: Double = 0
        var changeDotGradient: Double = 0

        /// Adds the sums of the next piece of the same tensor.
        mutating func add(_ other: Sums) {
            stats.add(other.stats)
            gradientSquared += other.gradientSquared
            changeDotGradient += other.changeDotGradient
        }
    }

    /// Pass 1 of a started tensor: update both EMAs with g, then measure the bands, the momentum
    /// cosine terms (against the EMA before the update) and ⟨d, g⟩.
    static func updateAndMeasure(
        gradient g: UnsafeMutablePointer<Float>, fast f: UnsafeMutablePointer<Float>,
        slow s: UnsafeMutablePointer<Float>, count n: Int,
        betaFast: Float, betaSlow: Float, cH: Float, cM: Float, cL: Float
    ) -> Sums {
        measure(gradient: g, fast: f, slow: s, count: n, betas: (betaFast, betaSlow), cH: cH, cM: cM, cL: cL)
    }

    /// Pass 1 of a tensor's first step, after both EMAs were set to g: measure the bands and
    /// ⟨d, g⟩ (there is no previous m_f, so the cosine terms other than ‖g‖² stay zero).
    static func measureStarted(
        gradient g: UnsafeMutablePointer<Float>, fast f: UnsafeMutablePointer<Float>,
        slow s: UnsafeMutablePointer<Float>, count n: Int, cH: Float, cM: Float, cL: Float
    ) -> Sums {
        measure(gradient: g, fast: f, slow: s, count: n, betas: nil, cH: cH, cM: cM, cL: cL)
    }

    /// Pass 1 of both kinds. With `betas` (β_f, β_s), each block is walked twice while it sits in
    /// L1: first the EMA update with the sums that need the old m_f, then the band sums from the
    /// new EMAs. Without, only the second walk runs, and it sums ‖g‖² too. Inlined into both
    /// callers, where `betas` is a constant: each gets its own loops with no test inside them.
    ///
    /// One loop doing both walks ran at a quarter of the speed: with seven accumulators live,
    /// LLVM interleaved the m_f and m_s vectors through shuffles and spilled.
    @inline(__always)
    private static func measure(
        gradient g: UnsafeMutablePointer<Float>, fast f: UnsafeMutablePointer<Float>,
        slow s: UnsafeMutablePointer<Float>, count n: Int,
        betas: (fast: Float, slow: Float)?, cH: Float, cM: Float, cL: Float
    ) -> Sums {
        let betaFast = betas?.fast ?? 0, betaSlow = betas?.slow ?? 0
        let bf = Vector(repeating: betaFast), af = Vector(repeating: 1 - betaFast)
        let bs = Vector(repeating: betaSlow), aS = Vector(repeating: 1 - betaSlow)
        let vH = Vector(repeating: cH), vM = Vector(repeating: cM), vL = Vector(repeating: cL)
        var hh = 0.0, mm = 0.0, ll = 0.0, gm = 0.0, gg = 0.0, pp = 0.0, dg = 0.0
        let vectorEnd = n - n % lanes
        var start = 0
        while start < vectorEnd {
            let end = min(start + block, vectorEnd)
            var aGM = Vector(), aGG = Vector(), aPP = Vector()
            var i = start
            if betas != nil {
                while i < end {
                    let gv = loadVector(g + i), fPrev = loadVector(f + i), sPrev = loadVector(s + i)
                    aGM += gv * fPrev
                    aGG += gv * gv
                    aPP += fPrev * fPrev
                    storeVector(bf * fPrev + af * gv, f + i)
                    storeVector(bs * sPrev + aS * gv, s + i)
                    i += lanes
                }
            }
            var aHH = Vector(), aMM = Vector(), aLL = Vector(), aDG = Vector()
            i = start
            while i < end {
                let gv = loadVector(g + i), fv = loadVector(f + i), sv = loadVector(s + i)
                let (h, mid, d) = bands(gv, fv, sv, vH, vM, vL)
                aHH += h * h
                aMM += mid * mid
                aLL += sv * sv
                if betas == nil { aGG += gv * gv }
                aDG += d * gv
                i += lanes
            }
            hh += Double(aHH.sum()); mm += Double(aMM.sum()); ll += Double(aLL.sum())
            gm += Double(aGM.sum()); gg += Double(aGG.sum()); pp += Double(aPP.sum())
            dg += Double(aDG.sum())
            start = end
        }
        var i = vectorEnd
        while i < n {
            let gv = g[i]
            var fv = f[i], sv = s[i]
            if betas != nil {
                let fPrev = fv, sPrev = sv
                fv = betaFast * fPrev + (1 - betaFast) * gv
                sv = betaSlow * sPrev + (1 - betaSlow) * gv
                f[i] = fv
                s[i] = sv
                gm += Double(gv * fPrev); pp += Double(fPrev * fPrev)
            }
            let (h, mid, d) = bands(gv, fv, sv, cH, cM, cL)
            hh += Double(h * h); mm += Double(mid * mid); ll += Double(sv * sv)
            gg += Double(gv * gv)
            dg += Double(d * gv)
            i += 1
        }
        var sums = Sums()
        sums.stats.highSquared = hh
        sums.stats.midSquared = mm
        sums.stats.lowSquared = ll
        sums.stats.gradientDotPreviousFast = gm
        sums.stats.gradientSquared = gg
        sums.stats.previousFastSquared = pp
        sums.gradientSquared = gg
        sums.changeDotGradient = dg
        return sums
    }

    /// Pass 2: g ← g + d, d = c_H·(g − m_f) + c_M·(m_f − m_s) + c_L·m_s, from the updated EMAs.
    static func apply(
        gradient g: UnsafeMutablePointer<Float>, fast f: UnsafeMutablePointer<Float>,
        slow s: UnsafeMutablePointer<Float>, count n: Int, cH: Float, cM: Float, cL: Float
    ) {
        let vH = Vector(repeating: cH), vM = Vector(repeating: cM), vL = Vector(repeating: cL)
        let vectorEnd = n - n % lanes
        var i = 0
        while i < vectorEnd {
            let gv = loadVector(g + i)
            storeVector(gv + bands(gv, loadVector(f + i), loadVector(s + i), vH, vM, vL).change, g + i)
            i += lanes
        }
        while i < n {
            g[i] += bands(g[i], f[i], s[i], cH, cM, cL).change
            i += 1
        }
    }
}
