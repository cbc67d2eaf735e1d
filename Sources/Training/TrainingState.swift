import Foundation
import Model
import Refinement

/// Everything a training step reads or writes that is not scratch (DESIGN §2.1): parameters,
/// AdamW moments and step, the previous gradient and update of the oscillation statistics, the
/// refinement state (weights, modes, policies, meters, time-band EMAs) and the data order.
/// Activations and gradients are scratch and are not part of it.
///
/// A value: copy it to keep a snapshot, `Trainer.restore(state:)` to go back to it. Restoring a
/// state and taking the same steps again gives the same losses bit for bit (same threads).
struct TrainingState {
    /// Steps completed when the state was taken.
    var step: Int
    var rng: Xoshiro256
    var params: [Float]
    var adamM: [Float]
    var adamV: [Float]
    var previousGrad: [Float]
    var previousUpdate: [Float]
    var adamSteps: Int
    var refinement: RefinementEngine.Snapshot
    var time: TimeBandFilter.State?
    var bestValidation: Double?
    var lastLoss: Double?

    /// Bytes held by the float arenas (parameters, moments, previous gradient and update, time EMAs).
    var bytes: Int {
        (params.count * 5 + (time.map { $0.fast.count + $0.slow.count } ?? 0)) * MemoryLayout<Float>.size
    }
}

extension Trainer {
    /// A copy of the whole training state.
    func captureState() -> TrainingState {
        let n = model.layout.count
        var s = TrainingState(step: 0, rng: rng, params: [Float](repeating: 0, count: n), adamM: [Float](repeating: 0, count: n),
                              adamV: [Float](repeating: 0, count: n), previousGrad: [Float](repeating: 0, count: n),
                              previousUpdate: [Float](repeating: 0, count: n), adamSteps: 0,
                              refinement: engine.snapshot(), time: nil, bestValidation: nil, lastLoss: nil)
        capture(into: &s)
        return s
    }

    /// Copies the training state into `s`, reusing its buffers (the rolling snapshot allocates
    /// nothing after the first one but the time-band EMAs).
    func capture(into s: inout TrainingState) {
        let n = model.layout.count
        func copy(_ p: UnsafeMutablePointer<Float>, _ a: inout [Float]) {
            if a.count != n { a = [Float](repeating: 0, count: n) }
            a.withUnsafeMutableBufferPointer { $0.baseAddress!.update(from: p, count: n) }
        }
        copy(model.params, &s.params)
        copy(optimizer.m, &s.adamM)
        copy(optimizer.v, &s.adamV)
        copy(optimizer.previousGrad, &s.previousGrad)
        copy(optimizer.previousUpdate, &s.previousUpdate)
        s.adamSteps = optimizer.stepCount
        s.refinement = engine.snapshot()
        s.time = engine.timeFilter?.saveState()
        s.rng = rng
        s.step = step
        s.bestValidation = bestValidation
        s.lastLoss = lastLoss
    }

    /// Puts a captured state back. `keepDataOrder` leaves the data order where it is (a rollback
    /// skips the batches since the snapshot) and `keepStep` the step counter and the best
    /// validation loss (steps never go back in the run file).
    func restore(state s: TrainingState, keepDataOrder: Bool = false, keepStep: Bool = false) {
        let n = model.layout.count
        precondition(s.params.count == n, "a training state of another model")
        s.params.withUnsafeBufferPointer { model.params.update(from: $0.baseAddress!, count: n) }
        s.adamM.withUnsafeBufferPointer { optimizer.m.update(from: $0.baseAddress!, count: n) }
        s.adamV.withUnsafeBufferPointer { optimizer.v.update(from: $0.baseAddress!, count: n) }
        s.previousGrad.withUnsafeBufferPointer { optimizer.previousGrad.update(from: $0.baseAddress!, count: n) }
        s.previousUpdate.withUnsafeBufferPointer { optimizer.previousUpdate.update(from: $0.baseAddress!, count: n) }
        optimizer.stepCount = s.adamSteps
        // Same run, same layout: these cannot fail.
        try! engine.restore(s.refinement)
        if let time = s.time {
            try! engine.startTimeFilter()
            try! engine.timeFilter!.restore(time)
        } else {
            // A state from before the time axis was turned on: the axis starts afresh if turned on again.
            engine.dropTimeFilter()
        }
        if !keepDataOrder { rng = s.rng }
        if !keepStep {
            // Going back in time (not a rollback, which keeps the run's history of evals).
            step = s.step
            bestValidation = s.bestValidation
        }
        lastLoss = s.lastLoss
    }
}

extension AdamW {
    /// A second optimizer with this one's moments, previous gradient and update, and step.
    func copy() -> AdamW {
        let o = AdamW(config: config, count: count)
        for (dst, src) in [(o.m, m), (o.v, v), (o.previousGrad, previousGrad), (o.previousUpdate, previousUpdate)] {
            dst.update(from: src, count: count)
        }
        o.stepCount = stepCount
        return o
    }
}

extension RefinementEngine {
    /// A second engine in the state `snapshot` (weights, policies, meters) with a copy of this
    /// engine's time-band EMAs: the refinement of a twin.
    func copy(as snapshot: Snapshot, layout: ParameterLayout, totalSteps: Int, context: Int) -> RefinementEngine {
        // Same setup as this engine, which was built from it: cannot fail.
        let e = try! RefinementEngine(setup: setup, layout: layout, heads: heads, totalSteps: totalSteps, context: context)
        try! e.restore(snapshot)
        if let time = timeFilter?.saveState() { try! e.timeFilter?.restore(time) }
        return e
    }
}
