import Model

/// Where the trainer's batches come from: bytes of a corpus, or a synthetic task's generated
/// windows. A synthetic task also fills a per-position loss mask (1 on answers, 0 elsewhere);
/// a corpus never needs one, so plain training passes no mask and stays bit-identical.
extension ByteDataset {
    /// Whether batches of this source carry a loss mask.
    public var needsLossMask: Bool { task != nil }

    /// Training batch: B random windows (corpus) or B freshly generated windows (synthetic).
    public func fillTrainingBatch(inputs: UnsafeMutablePointer<Int32>, targets: UnsafeMutablePointer<Int32>,
                                  mask: UnsafeMutablePointer<Float>?, B: Int, T: Int, rng: inout Xoshiro256) {
        guard let task else {
            sampleTrainingBatch(into: inputs, targets: targets, B: B, T: T, rng: &rng)
            return
        }
        for b in 0..<B {
            SyntheticTask.fill(task.window(T: T, rng: &rng), row: b, T: T, inputs: inputs, targets: targets, mask: mask)
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
