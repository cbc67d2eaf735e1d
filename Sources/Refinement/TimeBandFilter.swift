// The time axis (docs/ARCHITECTURE.md §7.2): two EMAs of every tensor's gradient split it into frequency bands
// over steps, and band weights reshape it before the optimizer sees it.

/// Weights of the three time bands: high h = g − m_f, mid = m_f − m_s, low = m_s.
public struct TimeWeights: Equatable, Sendable, Codable {
    public var high: Double
    public var mid: Double
    public var low: Double

    public init(high: Double, mid: Double, low: Double) {
        self.high = high
        self.mid = mid
        self.low = low
    }

    /// All weights 1: the refined gradient is the plain gradient, bit for bit.
    public static let unit = TimeWeights(high: 1, mid: 1, low: 1)

    /// The weights in band order (high, mid, low).
    public var values: [Double] { [high, mid, low] }
}

/// Sums measured by `TimeBandFilter` over one tensor or, added up, over all of them (Double).
public struct TimeBandStats: Equatable, Sendable {
    /// ‖h‖², ‖mid‖², ‖low‖² of the bands (before weighting).
    public var highSquared: Double = 0
    public var midSquared: Double = 0
    public var lowSquared: Double = 0
    /// ⟨g_t, m_f,t−1⟩, ‖g_t‖², ‖m_f,t−1‖²: the inputs of the time policy's cos(g_t, m_f,t−1).
    /// Zero for a tensor's first step, when there is no previous m_f.
    public var gradientDotPreviousFast: Double = 0
    public var gradientSquared: Double = 0
    public var previousFastSquared: Double = 0
    /// Tensors that kept their plain gradient because ⟨ĝ, g⟩ ≤ 0 (0 or 1 for a single tensor).
    public var guardFallbacks: Int = 0

    public init() {}

    /// Adds another tensor's sums (used to total over all tensors).
    public mutating func add(_ other: TimeBandStats) {
        highSquared += other.highSquared
        midSquared += other.midSquared
        lowSquared += other.lowSquared
        gradientDotPreviousFast += other.gradientDotPreviousFast
        gradientSquared += other.gradientSquared
        previousFastSquared += other.previousFastSquared
        guardFallbacks += other.guardFallbacks
    }

    /// Band norms ‖h‖, ‖mid‖, ‖low‖, as the step record carries them.
    public var bandNorms: [Double] { [highSquared.squareRoot(), midSquared.squareRoot(), lowSquared.squareRoot()] }

    /// cos(g_t, m_f,t−1) of the summed terms, or nil when either norm is zero (first step).
    public var momentumCosine: Double? {
        let denominator = (gradientSquared * previousFastSquared).squareRoot()
        guard denominator > 0, denominator.isFinite, gradientDotPreviousFast.isFinite else { return nil }
        return max(-1, min(1, gradientDotPreviousFast / denominator))
    }
}

/// Per-tensor fast and slow gradient EMAs in one preallocated arena, and the band refinement that
/// rewrites a gradient in place.
///
/// For each tensor, every call first updates m_f ← β_f·m_f + (1 − β_f)·g and
/// m_s ← β_s·m_s + (1 − β_s)·g (both start at the first gradient seen), then takes the bands
/// h = g − m_f, mid = m_f − m_s, low = m_s and writes
/// ĝ = g + (w_H − 1)·h + (w_M − 1)·mid + (w_L − 1)·low into the gradient buffer. With unit weights
/// the gradient buffer is not written at all, so it stays bit-identical. If ⟨ĝ, g⟩ ≤ 0 the tensor
/// keeps g for this step (the guard; counted in `guardFallbacks`); a tensor whose gradient is all
/// zeros has no direction to protect and is refined without the guard. At most two passes per
/// tensor: one updates the EMAs and measures, one writes ĝ.
///
///     let filter = try TimeBandFilter(tensorOffsets: model.offsets, tensorCounts: model.counts)
///     let stats = filter.refineAll(gradientArena: grads, weights: weights.time)
///     policy.update(stats: stats, step: step)
///
/// Not thread-safe: one trainer owns it.
public final class TimeBandFilter {
    /// Fast and slow EMA betas β_f ≤ β_s.
    public let betaFast: Double
    public let betaSlow: Double
    /// Where each tensor lives, in the gradient arena and in this filter's state arena alike.
    public let tensorOffsets: [Int]
    public let tensorCounts: [Int]
    /// Floats in each of the two state arenas (the end of the furthest tensor).
    public let stateCount: Int
    /// Whether each tensor's EMAs have started (they start at its first gradient).
    public private(set) var started: [Bool]
    /// Tensor-steps that fell back to the plain gradient, since creation or the last `reset()`.
    public private(set) var guardFallbacks = 0

    private let fast: UnsafeMutablePointer<Float>
    private let slow: UnsafeMutablePointer<Float>

    /// A filter whose state arena mirrors a gradient arena: tensor `i` occupies
    /// `tensorOffsets[i] ..< tensorOffsets[i] + tensorCounts[i]` in both.
    /// - Throws: `RefinementError` when the betas are outside [0, 1), β_f > β_s, or the layout is
    ///   inconsistent (mismatched counts, negative offsets or counts).
    public init(tensorOffsets: [Int], tensorCounts: [Int], betaFast: Double = 0.9, betaSlow: Double = 0.99) throws {
        guard tensorOffsets.count == tensorCounts.count else {
            throw RefinementError("time bands: \(tensorOffsets.count) tensor offsets but \(tensorCounts.count) tensor counts")
        }
        for (name, beta) in [("fast", betaFast), ("slow", betaSlow)] where !(beta >= 0 && beta < 1) {
            throw RefinementError("time bands: the \(name) EMA beta must be in [0, 1), got \(beta)")
        }
        guard betaFast <= betaSlow else {
            throw RefinementError("time bands: the fast beta (\(betaFast)) must not exceed the slow beta (\(betaSlow))")
        }
        var end = 0
        for (index, (offset, count)) in zip(tensorOffsets, tensorCounts).enumerated() {
            guard offset >= 0 && count >= 0 else {
                throw RefinementError("time bands: tensor \(index) has offset \(offset) and count \(count); both must be ≥ 0")
            }
            end = max(end, offset + count)
        }
        self.betaFast = betaFast
        self.betaSlow = betaSlow
        self.tensorOffsets = tensorOffsets
        self.tensorCounts = tensorCounts
        self.stateCount = end
        self.started = Array(repeating: false, count: tensorCounts.count)
        fast = .allocate(capacity: max(end, 1))
        slow = .allocate(capacity: max(end, 1))
        fast.initialize(repeating: 0, count: max(end, 1))
        slow.initialize(repeating: 0, count: max(end, 1))
    }

    /// A filter for tensors stored back to back in the given sizes.
    public convenience init(tensorSizes: [Int], betaFast: Double = 0.9, betaSlow: Double = 0.99) throws {
        var offsets: [Int] = []
        var next = 0
        for size in tensorSizes {
            offsets.append(next)
            next += size
        }
        try self.init(tensorOffsets: offsets, tensorCounts: tensorSizes, betaFast: betaFast, betaSlow: betaSlow)
    }

    deinit {
        fast.deallocate()
        slow.deallocate()
    }

    /// Forgets all EMA state and the fallback count (the next gradient starts the EMAs again).
    public func reset() {
        for index in started.indices { started[index] = false }
        guardFallbacks = 0
    }

    /// Refines every tensor of a gradient arena laid out like `tensorOffsets`, and returns the sums
    /// over all tensors (their `guardFallbacks` is the number of tensors that fell back this step).
    ///
    /// With `workers` > 1 the elements are cut into that many equal spans (tensors split at block
    /// boundaries) that run concurrently; the sums of a tensor's pieces are added in order, so the
    /// result depends only on the worker count. A worker that holds a whole tensor applies the
    /// guard and writes ĝ right after measuring it, while the tensor is still in its cache; only
    /// the few tensors cut between workers wait for a second pass. With one worker every tensor is
    /// one piece, refined in order. Allocates nothing after the first call with a given worker
    /// count.
    @discardableResult
    public func refineAll(gradientArena: UnsafeMutablePointer<Float>, weights: TimeWeights, workers: Int = 1) -> TimeBandStats {
        let plan = piecePlan(workers: max(1, workers))
        let cH = Float(weights.high) - 1, cM = Float(weights.mid) - 1, cL = Float(weights.low) - 1
        let refines = !(cH == 0 && cM == 0 && cL == 0)
        let betaFast = Float(self.betaFast), betaSlow = Float(self.betaSlow)
        let fast = self.fast, slow = self.slow, sums = plan.sums, outcome = plan.outcome
        let offsets = tensorOffsets
        started.withUnsafeBufferPointer { started in
            plan.run { piece in
                let p = plan.pieces[piece]
                let at = offsets[p.tensor] + p.start
                let g = gradientArena + at, f = fast + at, s = slow + at
                if started[p.tensor] {
                    sums[piece] = TimeBandKernel.updateAndMeasure(
                        gradient: g, fast: f, slow: s, count: p.count,
                        betaFast: betaFast, betaSlow: betaSlow, cH: cH, cM: cM, cL: cL)
                } else {
                    f.update(from: g, count: p.count)
                    s.update(from: g, count: p.count)
                    sums[piece] = TimeBandKernel.measureStarted(
                        gradient: g, fast: f, slow: s, count: p.count, cH: cH, cM: cM, cL: cL)
                }
                guard p.isWholeTensor else { return }
                outcome[p.tensor] = TimeBandFilter.guardOutcome(sums[piece], count: p.count, refines: refines)
                if outcome[p.tensor] == .apply {
                    TimeBandKernel.apply(gradient: g, fast: f, slow: s, count: p.count, cH: cH, cM: cM, cL: cL)
                }
            }
        }
        // Totals per tensor, its pieces' sums added in order; the guard of the tensors cut in pieces.
        var total = TimeBandStats()
        var pending = false
        var piece = 0
        for tensor in tensorCounts.indices {
            var tensorSums = TimeBandKernel.Sums()
            let whole = plan.pieces[piece].isWholeTensor
            while piece < plan.pieces.count && plan.pieces[piece].tensor == tensor {
                tensorSums.add(sums[piece])
                piece += 1
            }
            started[tensor] = true
            if !whole {
                outcome[tensor] = TimeBandFilter.guardOutcome(tensorSums, count: tensorCounts[tensor], refines: refines)
                pending = pending || outcome[tensor] == .apply
            }
            if outcome[tensor] == .fallBack {
                tensorSums.stats.guardFallbacks = 1
                guardFallbacks += 1
            }
            total.add(tensorSums.stats)
        }
        if pending {
            plan.run { piece in
                let p = plan.pieces[piece]
                guard !p.isWholeTensor && outcome[p.tensor] == .apply else { return }
                let at = offsets[p.tensor] + p.start
                TimeBandKernel.apply(gradient: gradientArena + at, fast: fast + at, slow: slow + at,
                                     count: p.count, cH: cH, cM: cM, cL: cL)
            }
        }
        return total
    }

    /// What the guard decides for a tensor from its sums: keep g (unit weights, or empty), fall
    /// back to g (⟨ĝ, g⟩ ≤ 0 for a non-zero g), or write ĝ.
    static func guardOutcome(_ sums: TimeBandKernel.Sums, count: Int, refines: Bool) -> PiecePlan.Outcome {
        guard refines && count > 0 else { return .keep }
        // An all-zero gradient has no direction to protect: it is refined without the guard, as
        // Grokfast would refine it.
        if sums.gradientSquared > 0 && sums.gradientSquared + sums.changeDotGradient <= 0 { return .fallBack }
        return .apply
    }

    private var plans: [Int: PiecePlan] = [:]

    private func piecePlan(workers: Int) -> PiecePlan {
        if let plan = plans[workers] { return plan }
        let plan = PiecePlan(tensorCounts: tensorCounts, workers: workers, alignment: TimeBandKernel.block)
        plans[workers] = plan
        return plan
    }

    // MARK: - Checkpoints

    /// Everything needed to continue a run exactly: both EMA arenas and which tensors have started.
    public struct State: Equatable, Sendable {
        public var fast: [Float]
        public var slow: [Float]
        public var started: [Bool]
        public var guardFallbacks: Int

        public init(fast: [Float], slow: [Float], started: [Bool], guardFallbacks: Int) {
            self.fast = fast
            self.slow = slow
            self.started = started
            self.guardFallbacks = guardFallbacks
        }
    }

    /// A copy of the filter's state, for a checkpoint.
    public func saveState() -> State {
        State(
            fast: Array(UnsafeBufferPointer(start: fast, count: stateCount)),
            slow: Array(UnsafeBufferPointer(start: slow, count: stateCount)),
            started: started, guardFallbacks: guardFallbacks)
    }

    /// Restores a state saved by a filter with the same layout.
    /// - Throws: `RefinementError` when the sizes do not match this filter's layout.
    public func restore(_ state: State) throws {
        guard state.fast.count == stateCount, state.slow.count == stateCount,
              state.started.count == tensorCounts.count
        else {
            throw RefinementError(
                "time bands: the saved state has \(state.fast.count)/\(state.slow.count) floats and \(state.started.count) tensors; this model needs \(stateCount) floats and \(tensorCounts.count) tensors")
        }
        if stateCount > 0 {
            state.fast.withUnsafeBufferPointer { fast.update(from: $0.baseAddress!, count: stateCount) }
            state.slow.withUnsafeBufferPointer { slow.update(from: $0.baseAddress!, count: stateCount) }
        }
        started = state.started
        guardFallbacks = state.guardFallbacks
    }
}
