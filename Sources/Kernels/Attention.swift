/// Causal multi-head self-attention on a fused QKV buffer, with an optional weight per band of
/// query–key distance in the backward pass (docs/ARCHITECTURE.md §7.1).
///
/// Every (batch, head) pair is independent: its scores, softmax and products are small GEMMs on
/// `GEMM.product` (OpenBLAS) over strided views of the QKV buffer. Rows are processed in blocks so that only the
/// causal (lower) part of each T×T product is computed.
public struct Attention {
    public let B: Int, T: Int, C: Int, heads: Int
    public var headSize: Int { C / heads }
    /// Rows per causal block: the GEMMs skip keys beyond the last query of each block.
    public var block: Int

    public init(B: Int, T: Int, C: Int, heads: Int, block: Int = 64) {
        precondition(C % heads == 0, "channels must divide into heads")
        self.B = B
        self.T = T
        self.C = C
        self.heads = heads
        self.block = max(1, min(block, T))
    }

    /// Contiguous bands of distance d = i − j, band k covering [lower[k], upper[k]].
    public struct Bands {
        public var lower: [Int]
        public var upper: [Int]
        public var count: Int { lower.count }

        /// `upperEdges`: inclusive upper distance of each band but the last (e.g. [8, 64]).
        public init(upperEdges: [Int], T: Int) {
            var lo = [0], up: [Int] = []
            for e in upperEdges { up.append(e); lo.append(e + 1) }
            up.append(max(T - 1, lo.last!))
            lower = lo
            upper = up
        }

        /// Keys j of query row i whose distance i − j falls in band `k`, or nil when none does.
        @inline(__always)
        public func columns(row i: Int, band k: Int) -> ClosedRange<Int>? {
            let hi = i - lower[k], lo = max(0, i - upper[k])
            return hi >= lo ? lo...hi : nil
        }
    }

    /// Per-step measurements the kernels can add up while they run.
    public struct Statistics {
        /// [layerBandCount]: Σ over heads of Σ_{(i,j)∈band} (P_ij·dP_ij)², summed over the batch.
        public var energy: UnsafeMutablePointer<Double>?
        /// [heads × bands]: Σ over batch and queries of the attention mass in each band.
        public var mass: UnsafeMutablePointer<Double>?

        public init(energy: UnsafeMutablePointer<Double>? = nil, mass: UnsafeMutablePointer<Double>? = nil) {
            self.energy = energy
            self.mass = mass
        }
    }

    // MARK: - Forward

    /// qkv [B, T, 3C] → out [B, T, C]; att [B, heads, T, T] receives the probabilities P (entries
    /// above the diagonal are zero within computed blocks). `window`: each query sees only the last
    /// `window` keys (itself included), for the evaluation's context-gain measure; nil = full context.
    public func forward(out: UnsafeMutablePointer<Float>, att: UnsafeMutablePointer<Float>,
                        qkv: UnsafePointer<Float>, window: Int? = nil,
                        bands: Bands? = nil, massOut: UnsafeMutablePointer<Double>? = nil, parallel: Parallel) {
        let nb = bands?.count ?? 0
        let pairs = B * heads
        let n = parallel.chunkCount(pairs)
        withUnsafeTemporaryAllocation(of: Double.self, capacity: max(1, n * heads * nb)) { partial in
            let part = partial.baseAddress!
            part.update(repeating: 0, count: max(1, n * heads * nb))
            parallel.chunks(pairs) { w, range in
                for pair in range {
                    forwardPair(b: pair / heads, h: pair % heads, out: out, att: att, qkv: qkv, window: window,
                                bands: massOut == nil ? nil : bands, mass: part + w * heads * nb)
                }
            }
            if let massOut {
                for w in 0..<n { for i in 0..<(heads * nb) { massOut[i] += part[w * heads * nb + i] } }
            }
        }
    }

    /// One (batch, head) pair of the forward pass; adds its band masses to mass[h × bands].
    func forwardPair(b: Int, h: Int, out: UnsafeMutablePointer<Float>, att: UnsafeMutablePointer<Float>,
                     qkv: UnsafePointer<Float>, window: Int?, bands: Bands?, mass: UnsafeMutablePointer<Double>) {
        let hs = headSize, C3 = 3 * C
        let scale = 1 / Float(hs).squareRoot()
        let q = qkv + b * T * C3 + h * hs
        let k = q + C
        let v = q + 2 * C
        let p = att + (b * heads + h) * T * T
        let o = out + b * T * C + h * hs
        var r0 = 0
        while r0 < T {
            let r1 = min(T, r0 + block)
            // S[r0..<r1, 0..<r1] = scale · Q[r0..<r1] · K[0..<r1]ᵀ
            GEMM.product(transB: true, m: r1 - r0, n: r1, k: hs, alpha: scale, a: q + r0 * C3, lda: C3,
                         b: k, ldb: C3, c: p + r0 * T, ldc: T)
            for i in r0..<r1 {
                let row = p + i * T
                let lo = window.map { max(0, i - $0 + 1) } ?? 0
                if lo > 0 { row.update(repeating: 0, count: lo) }
                Softmax.row(out: row + lo, inp: row + lo, count: i - lo + 1, scale: 1)
                if i + 1 < r1 { (row + i + 1).update(repeating: 0, count: r1 - i - 1) }
            }
            // O[r0..<r1] = P[r0..<r1, 0..<r1] · V[0..<r1]
            GEMM.product(m: r1 - r0, n: hs, k: r1, a: p + r0 * T, lda: T, b: v, ldb: C3, c: o + r0 * C, ldc: C)
            r0 = r1
        }
        if let bands {
            let m = mass + h * bands.count
            for i in 0..<T {
                let row = p + i * T
                for kb in 0..<bands.count {
                    guard let cols = bands.columns(row: i, band: kb) else { continue }
                    var s: Float = 0
                    for j in cols { s += row[j] }
                    m[kb] += Double(s)
                }
            }
        }
    }

    // MARK: - Backward

    /// dout [B, T, C] → dqkv [B, T, 3C] (overwritten). `att` holds P from the forward pass and is
    /// used as scratch (overwritten). `scratch` holds `backwardScratchCount(workers:)` floats. With `bands` and `weights`
    /// ([bands.count], one per band for this layer), the gradient along each edge j → i is scaled by
    /// the weight of band(i − j) (docs/ARCHITECTURE.md §7.1); with nil weights this is the plain backward.
    public func backward(dqkv: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>,
                         qkv: UnsafePointer<Float>, att: UnsafeMutablePointer<Float>,
                         scratch: UnsafeMutablePointer<Float>, bands: Bands? = nil,
                         weights: UnsafePointer<Float>? = nil,
                         energyOut: UnsafeMutablePointer<Double>? = nil, parallel: Parallel) {
        let nb = bands?.count ?? 0
        let pairs = B * heads
        let n = parallel.chunkCount(pairs)
        withUnsafeTemporaryAllocation(of: Double.self, capacity: max(1, n * nb)) { partial in
            let part = partial.baseAddress!
            part.update(repeating: 0, count: max(1, n * nb))
            parallel.chunks(pairs) { w, range in
                for pair in range {
                    backwardPair(b: pair / heads, h: pair % heads, dqkv: dqkv, dout: dout, qkv: qkv, att: att,
                                 dp: scratch + w * T * T, bands: bands, weights: weights,
                                 energy: energyOut == nil ? nil : part + w * nb)
                }
            }
            if let energyOut {
                for w in 0..<n { for i in 0..<nb { energyOut[i] += part[w * nb + i] } }
            }
        }
    }

    /// dS = scale · P ⊙ (dP − ⟨P, dP⟩) over one row of `count` entries, in place in `dp`; the dot
    /// product on 8 lanes (partial sums per lane, then the lanes in order, then the tail).
    @inline(__always)
    static func softmaxBackwardRow(p: UnsafePointer<Float>, dp: UnsafeMutablePointer<Float>, count n: Int,
                                   scale: Float) {
        var acc = SIMD8<Float>(repeating: 0)
        var j = 0
        while j + 8 <= n {
            acc += VectorMath.load(p + j) * VectorMath.load(dp + j)
            j += 8
        }
        var dot = acc.sum()
        while j < n { dot += p[j] * dp[j]; j += 1 }
        j = 0
        while j + 8 <= n {
            VectorMath.store(VectorMath.load(p + j) * (VectorMath.load(dp + j) - dot) * scale, dp + j)
            j += 8
        }
        while j < n { dp[j] = p[j] * (dp[j] - dot) * scale; j += 1 }
    }

    /// Floats of scratch that `backward` needs (one T×T matrix per worker).
    public func backwardScratchCount(workers: Int) -> Int { workers * T * T }

    /// One (batch, head) pair of the backward pass.
    func backwardPair(b: Int, h: Int, dqkv: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>,
                      qkv: UnsafePointer<Float>, att: UnsafeMutablePointer<Float>, dp: UnsafeMutablePointer<Float>,
                      bands: Bands?, weights: UnsafePointer<Float>?, energy energyOut: UnsafeMutablePointer<Double>?) {
        let hs = headSize, C3 = 3 * C
        let scale = 1 / Float(hs).squareRoot()
        let q = qkv + b * T * C3 + h * hs
        let k = q + C
        let v = q + 2 * C
        let dq = dqkv + b * T * C3 + h * hs
        let dk = dq + C
        let dv = dq + 2 * C
        let p = att + (b * heads + h) * T * T
        let dO = dout + b * T * C + h * hs
        // dP[r0..<r1, 0..<r1] = dO[r0..<r1] · V[0..<r1]ᵀ
        var r0 = 0
        while r0 < T {
            let r1 = min(T, r0 + block)
            GEMM.product(transB: true, m: r1 - r0, n: r1, k: hs, a: dO + r0 * C, lda: C, b: v, ldb: C3,
                         c: dp + r0 * T, ldc: T)
            r0 = r1
        }
        // dS = scale · P ⊙ (W⊙dP − rowsum(P ⊙ W⊙dP)); then P ← W⊙P for dV.
        for i in 0..<T {
            let pr = p + i * T, dr = dp + i * T
            if let bands, let energyOut {
                for kb in 0..<bands.count {
                    guard let cols = bands.columns(row: i, band: kb) else { continue }
                    var e: Float = 0
                    for j in cols { let x = pr[j] * dr[j]; e += x * x }
                    energyOut[kb] += Double(e)
                }
            }
            if let bands, let weights {
                for kb in 0..<bands.count {
                    guard let cols = bands.columns(row: i, band: kb) else { continue }
                    let w = weights[kb]
                    for j in cols { dr[j] *= w }
                }
            }
            Attention.softmaxBackwardRow(p: pr, dp: dr, count: i + 1, scale: scale)
            let rowEnd = min(T, (i / block + 1) * block)
            if i + 1 < rowEnd { (dr + i + 1).update(repeating: 0, count: rowEnd - i - 1) }
            if let bands, let weights {
                for kb in 0..<bands.count {
                    guard let cols = bands.columns(row: i, band: kb) else { continue }
                    let w = weights[kb]
                    for j in cols { pr[j] *= w }
                }
            }
        }
        // dQ[r0..<r1] = dS[r0..<r1, 0..<r1] · K[0..<r1]
        r0 = 0
        while r0 < T {
            let r1 = min(T, r0 + block)
            GEMM.product(m: r1 - r0, n: hs, k: r1, a: dp + r0 * T, lda: T, b: k, ldb: C3, c: dq + r0 * C3, ldc: C3)
            r0 = r1
        }
        // Columns c0..<c1 only receive from rows c0..<T:
        // dK[c0..<c1] = dS[c0..<T, c0..<c1]ᵀ · Q[c0..<T];  dV[c0..<c1] = P'[c0..<T, c0..<c1]ᵀ · dO[c0..<T]
        var c0 = 0
        while c0 < T {
            let c1 = min(T, c0 + block)
            GEMM.product(transA: true, m: c1 - c0, n: hs, k: T - c0, a: dp + c0 * T + c0, lda: T,
                         b: q + c0 * C3, ldb: C3, c: dk + c0 * C3, ldc: C3)
            GEMM.product(transA: true, m: c1 - c0, n: hs, k: T - c0, a: p + c0 * T + c0, lda: T,
                         b: dO + c0 * C, ldb: C, c: dv + c0 * C3, ldc: C3)
            c0 = c1
        }
    }
}
