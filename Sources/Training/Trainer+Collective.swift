import Foundation
import Kernels
import Model
import Refinement

/// The trainer's side of a data-parallel run: which rows of the global batch this rank computes,
/// and the reductions that make one rank's gradient and statistics describe the whole batch.
/// With one rank every function here returns at once and changes nothing.
extension Trainer {
    /// The error when `batch` rows cannot be split evenly over `ranks` (nil when they can).
    public static func batchSplitError(batch: Int, ranks: Int) -> String? {
        guard ranks > 1, batch % ranks != 0 else { return nil }
        return "--batch \(batch) does not divide evenly over \(ranks) ranks: --batch is the global batch, split over the ranks; use a multiple of \(ranks)"
    }

    /// Rows of the global batch this rank fills (rank r: the r-th of `size` equal slices), so
    /// that the union over the ranks is the batch one process would draw.
    var batchRows: Range<Int> {
        let r = collective.rank
        return (r * localBatch)..<((r + 1) * localBatch)
    }

    /// The backward pass (with `refinement`'s context weights, into its statistics buffers), with
    /// the gradient averaged over the ranks; returns this rank's share of
    /// the batch's loss weight (1 / ranks, or its share of the loss mask's weight for a synthetic
    /// task).
    ///
    /// Each rank's gradient is that of its own mean loss; the batch's loss is the weighted mean
    /// Σ share_r · loss_r, so a rank whose share is not 1 / ranks scales its gradient by
    /// share · ranks before the average.
    ///
    /// With `collective.bucketBytes` > 0 the gradient is reduced in buckets as the backward pass
    /// finishes them (last layers first: the layout puts the blocks in order and the pass runs
    /// them backwards), each a contiguous run of whole tensors of at least that many bytes, so the
    /// transfers hide behind the rest of the pass; "allreduce" then times only the wait for the
    /// last ones. The buckets depend on the layout and the bucket size alone, so the same rank
    /// count, bucket size and seed give the same bits run after run, over any transport.
    func backwardAveragingGradient(_ refinement: RefinementEngine) -> Double {
        let n = collective.size
        guard n > 1 else {
            model.backward(context: refinement.contextRefinement)
            return 1
        }
        let rows = localBatch * config.context
        var share = 1 / Double(n)
        if let lossMask {
            var local = 0.0
            for i in 0..<rows { local += Double(lossMask[i]) }
            let total = collective.sum([local])[0]
            share = total > 0 ? local / total : 1 / Double(n)
        }
        let scale = Float(share * Double(n))
        let g = model.grads
        let bucket = collective.bucketBytes / MemoryLayout<Float>.stride
        guard bucket > 0 else {
            model.backward(context: refinement.contextRefinement)
            timed(profiler, "allreduce") {
                if scale != 1 { for i in 0..<model.layout.count { g[i] *= scale } }
                collective.average(g, count: model.layout.count)
            }
            return share
        }
        // Final gradients not yet handed over: lo ..< hi (the pass announces decreasing offsets).
        var hi = model.layout.count
        let ranks = collective
        func send(_ lo: Int) {
            guard hi > lo else { return }
            if scale != 1 { for i in lo..<hi { g[i] *= scale } }
            ranks.beginAverage(g + lo, count: hi - lo)
            hi = lo
        }
        model.backward(context: refinement.contextRefinement) { lo in
            if hi - lo >= bucket || lo == 0 { send(lo) }
        }
        timed(profiler, "allreduce") { ranks.finishAverages() }
        return share
    }

    /// Sums the step's statistics over the ranks in place (`refinement`'s context energies and
    /// attention mass) and
    /// returns the batch's loss. Energies are squares of the rank's loss gradient, which is
    /// 1 / share times the batch's: they are weighted by share² before the sum.
    func reduceStatistics(loss: Double, share: Double, _ refinement: RefinementEngine) -> Double {
        guard collective.size > 1 else { return loss }
        let e = refinement.layers * refinement.bands.count
        let m = refinement.layers * refinement.heads * refinement.bands.count
        var buffer = [Double](repeating: 0, count: 1 + e + m)
        buffer[0] = loss * share
        for i in 0..<e { buffer[1 + i] = refinement.energy[i] * share * share }
        for i in 0..<m { buffer[1 + e + i] = refinement.mass[i] }
        buffer.withUnsafeMutableBufferPointer { collective.sum($0.baseAddress!, count: $0.count) }
        for i in 0..<e { refinement.energy[i] = buffer[1 + i] }
        for i in 0..<m { refinement.mass[i] = buffer[1 + e + i] }
        return buffer[0]
    }

    /// FNV-1a of the parameters, AdamW moments, data order and refinement state (weights,
    /// policies, meters): equal on every rank of a healthy data-parallel run (the hidden
    /// `--debug-fingerprint` test hook prints it).
    public func stateFingerprint() -> String {
        var h = FNV1a()
        let n = model.layout.count * MemoryLayout<Float>.size
        h.add(UnsafeRawBufferPointer(start: model.params, count: n))
        h.add(UnsafeRawBufferPointer(start: main.optimizer.m, count: n))
        h.add(UnsafeRawBufferPointer(start: main.optimizer.v, count: n))
        withUnsafeBytes(of: main.data.state) { h.add($0) }
        // The weights and modes in force, and the meters (not the whole snapshot: its JSON holds
        // sets, whose order differs from process to process).
        let w = engine.weights
        var numbers = w.context.flatMap { $0 } + w.time.values + w.depth
        numbers += ScaleAxis.allCases.map { Double(w.isOn($0) ? 1 : 0) + (w.mode($0) == .adaptive ? 2 : 0) }
        numbers.withUnsafeBytes { h.add($0) }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        h.add([UInt8]((try? encoder.encode(engine.oscillation)) ?? Data()))
        h.add([UInt8]((try? encoder.encode(engine.spikes)) ?? Data()))
        return h.hex
    }
}
