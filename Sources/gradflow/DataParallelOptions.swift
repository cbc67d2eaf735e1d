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

    func validate() throws {
        guard bucketMB >= 0, bucketMB.isFinite else { throw ValidationError("--bucket-mb must be ≥ 0 (got \(bucketMB))") }
    }

    var bucketBytes: Int { Int((bucketMB * 1_048_576).rounded()) }
}
