import Foundation
import Kernels
import Model

/// Hyperparameters of AdamW (decoupled weight decay, PyTorch's update order).
public struct AdamWConfig: Equatable, Sendable, Codable {
    public var beta1: Float = 0.9
    public var beta2: Float = 0.95
    public var epsilon: Float = 1e-8
    public var weightDecay: Float = 0.1
    public init() {}
}

/// What one AdamW pass over a tensor measured (inputs of the depth axis and the oscillation meters).
public struct TensorUpdateStats: Sendable {
    /// ‖g‖² of the (refined, clipped) gradient that reached the optimizer.
    public var gradSquared: Double = 0
    /// ⟨g_t, g_{t−1}⟩ and ‖g_{t−1}‖² (zero on the first step).
    public var gradDotPrevious: Double = 0
    public var previousGradSquared: Double = 0
    /// ‖Δθ‖² and ‖θ‖² (before the update).
    public var updateSquared: Double = 0
    /// ⟨Δθ_t, Δθ_{t−1}⟩ and ‖Δθ_{t−1}‖² (zero on the first step).
    public var updateDotPrevious: Double = 0
    public var previousUpdateSquared: Double = 0
    public var paramSquared: Double = 0
    /// Parameters whose update changed sign since the previous step.
    public var signFlips: Int = 0
    public init() {}
}

/// AdamW with its moment arenas, plus the previous step's gradient and update for the
/// oscillation statistics. All arenas are allocated once, with the parameters' layout.
public final class AdamW {
    public let config: AdamWConfig
    public let count: Int
    /// First and second moments [count].
    public let m: UnsafeMutablePointer<Float>
    public let v: UnsafeMutablePointer<Float>
    /// Previous gradient and previous update [count], for cos(g_t, g_{t−1}) and sign flips.
    public let previousGrad: UnsafeMutablePointer<Float>
    public let previousUpdate: UnsafeMutablePointer<Float>
    /// Steps taken so far (the bias corrections use it).
    public var stepCount = 0

    public init(config: AdamWConfig, count: Int) {
        self.config = config
        self.count = count
        m = .allocate(capacity: count)
        v = .allocate(capacity: count)
        previousGrad = .allocate(capacity: count)
        previousUpdate = .allocate(capacity: count)
        for p in [m, v, previousGrad, previousUpdate] { p.initialize(repeating: 0, count: count) }
    }

    deinit {
        for p in [m, v, previousGrad, previousUpdate] { p.deallocate() }
    }

    /// Starts a step: call once before the per-tensor updates.
    public func beginStep() { stepCount += 1 }

    /// Updates one tensor in place: θ ← θ·(1 − lr·wd) − lr·m̂/(√v̂ + ε), with `lr` already
    /// multiplied by the tensor's depth weight. `gradScale` multiplies the gradient on the way in
    /// (global-norm clipping), without writing it back. Large tensors are split over the workers;
    /// their statistics are added up in chunk order, so results do not depend on timing.
    public func update(params: UnsafeMutablePointer<Float>, grads: UnsafePointer<Float>,
                       offset: Int, count n: Int, lr: Float, decays: Bool, gradScale: Float, parallel: Parallel) -> TensorUpdateStats {
        let chunks = parallel.chunkCount(n, minimumChunk: 32_768)
        if chunks == 1 {
            return updateRange(params: params, grads: grads, range: offset..<(offset + n), lr: lr, decays: decays,
                               gradScale: gradScale)
        }
        return withUnsafeTemporaryAllocation(of: TensorUpdateStats.self, capacity: chunks) { parts in
            let base = parts.baseAddress!
            base.initialize(repeating: TensorUpdateStats(), count: chunks)
            parallel.chunks(n, minimumChunk: 32_768) { k, r in
                base[k] = updateRange(params: params, grads: grads, range: (offset + r.lowerBound)..<(offset + r.upperBound),
                                      lr: lr, decays: decays, gradScale: gradScale)
            }
            var total = TensorUpdateStats()
            for k in 0..<chunks {
                let p = base[k]
                total.gradSquared += p.gradSquared
                total.gradDotPrevious += p.gradDotPrevious
                total.previousGradSquared += p.previousGradSquared
                total.updateSquared += p.updateSquared
                total.updateDotPrevious += p.updateDotPrevious
                total.previousUpdateSquared += p.previousUpdateSquared
                total.paramSquared += p.paramSquared
                total.signFlips += p.signFlips
            }
            return total
        }
    }

    func updateRange(params: UnsafeMutablePointer<Float>, grads: UnsafePointer<Float>, range: Range<Int>,
                     lr: Float, decays: Bool, gradScale: Float) -> TensorUpdateStats {
        let b1 = config.beta1, b2 = config.beta2, eps = config.epsilon
        let t = Float(stepCount)
        let bc1 = 1 - Foundation.pow(b1, t), bc2 = 1 - Foundation.pow(b2, t)
        let stepSize = lr / bc1
        let invSqrtBc2 = 1 / bc2.squareRoot()
        let decay: Float = decays ? 1 - lr * config.weightDecay : 1
        let p = params + range.lowerBound, g = grads + range.lowerBound
        let mm = m + range.lowerBound, vv = v + range.lowerBound
        let n = range.count
        var stats = TensorUpdateStats()
        let pg = previousGrad + range.lowerBound, pu = previousUpdate + range.lowerBound
        var gg = 0.0, gp = 0.0, pp = 0.0, uu = 0.0, th = 0.0, up = 0.0, qq = 0.0
        var flips = 0
        var i = 0
        typealias F8 = SIMD8<Float>
        // 8 lanes at a time, partial sums in Float for blocks of 256 then in Double.
        while i < n {
            let end = min(n, i + 256)
            var sgg = F8(), sgp = F8(), spp = F8(), suu = F8(), sth = F8(), sup = F8(), sqq = F8()
            var f = SIMD8<Int32>()
            while i + 8 <= end {
                let gi = VectorMath.load(g + i) * gradScale
                let mi = b1 * VectorMath.load(mm + i) + (1 - b1) * gi
                let vi = b2 * VectorMath.load(vv + i) + (1 - b2) * gi * gi
                VectorMath.store(mi, mm + i)
                VectorMath.store(vi, vv + i)
                let old = VectorMath.load(p + i)
                let new = old * decay - stepSize * mi / (VectorMath.sqrt(vi) * invSqrtBc2 + eps)
                VectorMath.store(new, p + i)
                let u = new - old
                let pgi = VectorMath.load(pg + i)
                sgg += gi * gi
                sgp += gi * pgi
                spp += pgi * pgi
                suu += u * u
                sth += old * old
                let pui = VectorMath.load(pu + i)
                sup += u * pui
                sqq += pui * pui
                f &+= SIMD8<Int32>(repeating: 1).replacing(with: 0, where: .!(u * pui .< 0))
                VectorMath.store(gi, pg + i)
                VectorMath.store(u, pu + i)
                i += 8
            }
            var tg: Float = 0, tgp: Float = 0, tpp: Float = 0, tuu: Float = 0, tth: Float = 0, tup: Float = 0, tqq: Float = 0
            var tf = 0
            while i < end {
                let gi = g[i] * gradScale
                let mi = b1 * mm[i] + (1 - b1) * gi
                let vi = b2 * vv[i] + (1 - b2) * gi * gi
                mm[i] = mi
                vv[i] = vi
                let old = p[i]
                let new = old * decay - stepSize * mi / (vi.squareRoot() * invSqrtBc2 + eps)
                p[i] = new
                let u = new - old
                tg += gi * gi
                tgp += gi * pg[i]
                tpp += pg[i] * pg[i]
                tuu += u * u
                tth += old * old
                tup += u * pu[i]
                tqq += pu[i] * pu[i]
                tf += (u * pu[i] < 0) ? 1 : 0
                pg[i] = gi
                pu[i] = u
                i += 1
            }
            gg += Double(sgg.sum() + tg); gp += Double(sgp.sum() + tgp); pp += Double(spp.sum() + tpp)
            uu += Double(suu.sum() + tuu); th += Double(sth.sum() + tth)
            up += Double(sup.sum() + tup); qq += Double(sqq.sum() + tqq)
            flips += Int(f.wrappedSum()) + tf
        }
        stats.gradSquared = gg
        stats.gradDotPrevious = gp
        stats.previousGradSquared = pp
        stats.updateSquared = uu
        stats.paramSquared = th
        stats.updateDotPrevious = up
        stats.previousUpdateSquared = qq
        stats.signFlips = flips
        return stats
    }
}

/// Linear warm-up to the peak rate, then cosine decay to `minFraction` of it at the last step.
public struct LearningRateSchedule: Equatable, Sendable, Codable {
    public var peak: Double
    public var warmupSteps: Int
    public var totalSteps: Int
    public var minFraction: Double = 0.1

    public init(peak: Double, warmupSteps: Int, totalSteps: Int, minFraction: Double = 0.1) {
        self.peak = peak
        self.warmupSteps = warmupSteps
        self.totalSteps = totalSteps
        self.minFraction = minFraction
    }

    /// The rate at `step` (0-based).
    public func rate(at step: Int) -> Double {
        if step < warmupSteps { return peak * Double(step + 1) / Double(warmupSteps) }
        let span = max(1, totalSteps - 1 - warmupSteps)
        let progress = min(1, Double(step - warmupSteps) / Double(span))
        let cosine = 0.5 * (1 + Foundation.cos(Double.pi * progress))
        return peak * (minFraction + (1 - minFraction) * cosine)
    }
}
