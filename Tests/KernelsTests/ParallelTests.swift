import Dispatch
import Synchronization
import Testing
@testable import Kernels

/// `Parallel.chunks` on `WorkerPool`: every chunk runs exactly once, with its own range, whether
/// the pool takes the region, a chunk calls `chunks` again (nested: the pool is busy) or two
/// threads call it at once.
@Suite struct ParallelTests {
    /// Runs `chunks` over 0..<count and returns how often each index was visited.
    static func visits(_ parallel: Parallel, count: Int) -> [Int] {
        let hits = UnsafeMutablePointer<Int>.allocate(capacity: count)
        hits.initialize(repeating: 0, count: count)
        defer { hits.deallocate() }
        parallel.chunks(count) { _, range in for i in range { hits[i] += 1 } }
        return Array(UnsafeBufferPointer(start: hits, count: count))
    }

    @Test(arguments: [1, 2, 3, 4]) func everyIndexOnce(threads: Int) {
        let parallel = Parallel(threads: threads)
        for count in [1, 2, 5, 1000] {
            for _ in 0..<50 { #expect(Self.visits(parallel, count: count) == Array(repeating: 1, count: count)) }
        }
    }

    @Test func nestedRegionsRunEveryChunk() {
        let parallel = Parallel(threads: 2)
        let inner = Atomic<Int>(0)
        parallel.chunks(2) { _, _ in
            if Self.visits(parallel, count: 10) == Array(repeating: 1, count: 10) { inner.add(1, ordering: .relaxed) }
        }
        #expect(inner.load(ordering: .relaxed) == 2)
    }

    @Test func concurrentCallersRunEveryChunk() {
        let parallel = Parallel(threads: 2)
        let good = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            for _ in 0..<50 where Self.visits(parallel, count: 64) == Array(repeating: 1, count: 64) {
                good.add(1, ordering: .relaxed)
            }
        }
        #expect(good.load(ordering: .relaxed) == 200)
    }
}
