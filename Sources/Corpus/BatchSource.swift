import Model

/// Where the trainer's batches come from: bytes of a corpus, or a synthetic task's generated
/// windows. A synthetic task also fills a per-position loss mask (1 on answers, 0 elsewhere);
/// a corpus never needs one, so plain training passes no mask and stays bit-identical.
extension ByteDataset {
    /// Whether batches of this source carry a loss mask.
    public var needsLossMask: Bool { task != nil }

    /// Training batch: B random windows (corpus) or B freshly generated windows (synthetic).
    /// With `rows`, only those rows of the B-row batch are written (to rows 0 ..< rows.count of
    /// the buffers), while the RNG still advances over all B: one rank's slice of the batch a
    /// single process would draw, leaving every rank's RNG in the same state.
    public func fillTrainingBatch(inputs: UnsafeMutablePointer<Int32>, targets: UnsafeMutablePointer<Int32>,
                                  mask: UnsafeMutablePointer<Float>?, B: Int, T: Int, rows: Range<Int>? = nil,
                                  rng: inout Xoshiro256) {
        let rows = rows ?? 0..<B
        guard let task else {
            sampleTrainingBatch(into: inputs, targets: targets, B: B, T: T, rows: rows, rng: &rng)
            return
        }
        for b in 0..<B {
            let window = task.window(T: T, rng: &rng)
            if rows.contains(b) {
                SyntheticTask.fill(window, row: b - rows.lowerBound, T: T, inputs: inputs, targets: targets, mask: mask)
            }
        }
    }

    /// Validation windows `first ..< first + B` (see `validationBatch`); for a synthetic task the
    /// fixed validation windows with their mask. Returns how many rows are real.
    public func fillValidationBatch(inputs: UnsafeMutablePointer<Int32>, targets: UnsafeMutablePointer<Int32>,
                                    mask: UnsafeMutablePointer<Float>?, first: Int, count: Int, B: Int, T: Int) -> Int {
        guard let task else {
            return validationBatch(into: inputs, targets: targets, first: first, count: count, B: B, T: T)
        }
        let real = max(0, min(B, count - first))
        for b in 0..<B {
            let w = first + min(b, max(real - 1, 0))
            SyntheticTask.fill(task.validationWindow(w, T: T), row: b, T: T, inputs: inputs, targets: targets, mask: mask)
        }
        return real
    }
}
