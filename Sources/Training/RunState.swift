import Foundation
import Model
import Refinement

/// The run's state: everything a training step reads and writes that is not scratch — the
/// parameters, AdamW's moments and step, the refinement's state (weights, modes, policies,
/// meters, time-band EMAs), the divergence guard's window, the data cursor and the last loss.
/// Activations and gradients are the model's scratch, shared by every state.
///
/// A step is a function of a state and a batch (`Trainer.step(_:batch:)`): it changes the state
/// it is given and the model's scratch, nothing else. The trainer holds the main run's state and, during a twin
/// window, the twin's, and steps both through that one function; the guard's rolling snapshot,
/// its rollback, a revert to the twin and a checkpoint take and give back this same value
/// (docs/ARCHITECTURE.md §3).
///
/// The arenas are allocated once and held by reference; the main run's parameters are the
/// model's own arena (what evaluation and the evaluation's sample read). So `copy()` makes an
/// independent state and `assign(from:)` overwrites one in place; a plain assignment hands the
/// same arenas on. Restoring a copy and taking the same steps again gives the same losses bit for
/// bit (same threads).
struct RunState {
    /// [layout.count] parameters.
    let params: ParameterArena
    /// AdamW's moments, previous gradient and update (for the oscillation statistics), and step.
    let optimizer: AdamW
    /// The refinement's weights, modes, policies, meters and time-band EMAs (and its per-step
    /// statistics buffers, which every step overwrites).
    let refinement: RefinementEngine
    /// The divergence guard's rule state: the recent healthy losses a step is judged against.
    /// The guard judges the main run's published losses: a twin's copy is carried, never fed.
    var guardWindow: DivergenceRule
    /// The data cursor: the generator that draws the training windows.
    var data: Xoshiro256
    /// The loss of the last step taken (nil before the first).
    var lastLoss: Double?

    /// An independent copy (a snapshot).
    func copy() -> RunState {
        RunState(params: ParameterArena(copying: params), optimizer: optimizer.copy(), refinement: refinement.copy(),
                 guardWindow: guardWindow, data: data, lastLoss: lastLoss)
    }

    /// Overwrites this state with `other`'s, in place (no arena is allocated but the time-band
    /// EMAs' transfer). `keepingData` leaves the data cursor where it is: a rollback skips the
    /// batches since the snapshot.
    mutating func assign(from other: RunState, keepingData: Bool = false) {
        params.assign(from: other.params)
        optimizer.assign(from: other.optimizer)
        refinement.assign(from: other.refinement)
        guardWindow = other.guardWindow
        if !keepingData { data = other.data }
        lastLoss = other.lastLoss
    }

    /// Bytes held by the float arenas (parameters, moments, previous gradient and update, time EMAs).
    var bytes: Int {
        let time = refinement.timeFilter.map { 2 * $0.stateCount } ?? 0
        return (params.count * 5 + time) * MemoryLayout<Float>.size
    }
}

/// A parameter arena: the model's own (the main run's parameters) or an owned copy (a twin's, a
/// snapshot's).
final class ParameterArena {
    let pointer: UnsafeMutablePointer<Float>
    let count: Int
    /// The model whose arena this is (kept alive with it); nil for an owned copy.
    private let model: GPT?

    /// The model's own parameters.
    init(of model: GPT) {
        self.model = model
        pointer = model.params
        count = model.layout.count
    }

    /// A copy of `other`'s values in an arena of its own.
    init(copying other: ParameterArena) {
        model = nil
        count = other.count
        pointer = .allocate(capacity: count)
        pointer.initialize(from: other.pointer, count: count)
    }

    deinit { if model == nil { pointer.deallocate() } }

    /// Copies `other`'s values into this arena.
    func assign(from other: ParameterArena) {
        precondition(other.count == count, "a parameter arena of another model")
        if other.pointer != pointer { pointer.update(from: other.pointer, count: count) }
    }

    /// The values, as an array (tests, checkpoints).
    var values: [Float] { Array(UnsafeBufferPointer(start: pointer, count: count)) }
}

extension AdamW {
    /// A second optimizer with this one's moments, previous gradient and update, and step.
    func copy() -> AdamW {
        let o = AdamW(config: config, count: count)
        o.assign(from: self)
        return o
    }

    /// Takes `other`'s moments, previous gradient and update, and step.
    func assign(from other: AdamW) {
        precondition(other.count == count, "an optimizer of another model")
        guard other !== self else { return }
        for (dst, src) in [(m, other.m), (v, other.v), (previousGrad, other.previousGrad), (previousUpdate, other.previousUpdate)] {
            dst.update(from: src, count: count)
        }
        stepCount = other.stepCount
    }
}
