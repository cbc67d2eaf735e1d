import ArgumentParser
import DataParallel

/// Flags of a data-parallel run under mpirun (train and bench).
struct DataParallelOptions: ParsableArguments {
    @Option(name: .customLong("bucket-mb"), help: ArgumentHelp("""
        Under mpirun: the gradient is averaged in buckets of at least this many MB (whole tensors, \
        last layers first) while the backward pass runs; 0: one allreduce after it \
        (docs/SCALING.md).
        """, valueName: "MB"))
    var bucketMB: Double = Double(MPICollective.defaultBucketBytes) / 1_048_576

    /// Larger than any model Gradflow trains (a bucket never holds more than the whole gradient),
    /// and small enough that its bytes fit an Int.
    static let maxBucketMB = 1_048_576.0

    func validate() throws {
        guard bucketMB >= 0, bucketMB <= Self.maxBucketMB, bucketMB.isFinite else {
            throw ValidationError("--bucket-mb must be from 0 to \(Int(Self.maxBucketMB)) (got \(bucketMB))")
        }
    }

    var bucketBytes: Int { Int((bucketMB * 1_048_576).rounded()) }
}
