import Dispatch

/// Splits kernel work over a fixed number of workers.
///
/// OpenBLAS runs single-threaded (see `BLASThreads`), and every kernel that is worth it splits its
/// own work into `workers` contiguous chunks: GEMMs by rows, attention by (batch, head), reductions
/// into per-worker partial sums added up in worker order. The split depends only on the worker
/// count, so results are bit-identical run to run for a given `--threads`.
///
/// A value passed to every kernel (the model holds the one it was built for), not process-wide
/// state: two models with different worker counts can run in one process.
public struct Parallel: Sendable, Equatable {
    /// Number of workers (the `--threads` setting).
    public let workers: Int

    /// `threads` workers; also puts OpenBLAS in single-threaded mode (a process-wide setting of
    /// the library, the same for every value).
    public init(threads: Int) {
        workers = max(1, threads)
        BLASThreads.set(1)
        WorkerPool.shared.reserve(workers - 1)
    }

    /// Calls `body(chunk, range)` for `workers` contiguous chunks of 0..<count (fewer when count is
    /// small or `minimumChunk` asks for it), concurrently on the calling thread and `WorkerPool`'s
    /// helpers: any thread may run any chunk, and each chunk's range is fixed by `count` and `n`.
    @inlinable
    public func chunks(_ count: Int, minimumChunk: Int = 1, _ body: (Int, Range<Int>) -> Void) {
        let n = chunkCount(count, minimumChunk: minimumChunk)
        if n == 1 {
            body(0, 0..<count)
            return
        }
        WorkerPool.shared.run(n) { k in
            body(k, (k * count / n)..<((k + 1) * count / n))
        }
    }

    /// The number of chunks `chunks` will use for this count.
    @inlinable
    public func chunkCount(_ count: Int, minimumChunk: Int = 1) -> Int {
        max(1, min(workers, count / max(1, minimumChunk)))
    }
}
