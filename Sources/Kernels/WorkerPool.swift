import Dispatch
import Foundation
import Synchronization

/// The helper threads that `Parallel.chunks` runs its chunks 1…n−1 on (the calling thread runs
/// chunk 0).
///
/// `DispatchQueue.concurrentPerform` wakes a pool thread for every call and lets chunks move
/// between threads; at preset M (about 130 parallel regions a step) the chunk on the woken thread
/// started 40–80 µs late and ended last in 8 regions of 10, about 20 ms of waiting a step
/// (docs/PERFORMANCE.md, "Speed at M, round 2"). These helpers are long-lived and spin on a
/// generation counter for a while after each region before they sleep, so the next region
/// starts on them at once. Which thread runs a chunk never changes what the chunk computes, so
/// results stay bit-identical.
///
/// One region runs at a time: a call that finds the pool busy (another thread's region, or a
/// chunk that itself calls `chunks`) or needing more helpers than exist runs on
/// `concurrentPerform` instead.
@usableFromInline
final class WorkerPool: @unchecked Sendable {
    /// The process's pool; helpers are started by `reserve`.
    @usableFromInline static let shared = WorkerPool()

    /// Spins of a sleeping-candidate helper before it blocks (about 100–200 µs), and of the
    /// calling thread waiting for helpers before it yields its core to them.
    private static let helperSpins = 100_000
    private static let callerSpins = 2_000

    private final class Helper: Sendable {
        let sleeping = Atomic<Bool>(false)
        let wake = DispatchSemaphore(value: 0)
    }

    private let busy = Atomic<Bool>(false)
    private let generation = Atomic<Int>(0)
    private let pending = Atomic<Int>(0)
    /// Written only while `busy` is held; read by helpers after they see a new generation.
    private nonisolated(unsafe) var helpers: [Helper] = []
    private nonisolated(unsafe) var job: ((Int) -> Void)?
    private nonisolated(unsafe) var jobChunks = 0

    private init() {}

    /// Makes sure `count` helper threads exist (for `Parallel(threads: count + 1)`).
    func reserve(_ count: Int) {
        guard acquire() else { return }
        defer { release() }
        while helpers.count < count {
            let helper = Helper(), index = helpers.count, seen = generation.load(ordering: .acquiring)
            helpers.append(helper)
            let thread = Thread { [self] in self.serve(helper, chunk: index + 1, seen: seen) }
            thread.stackSize = 8 << 20
            thread.start()
        }
    }

    /// Runs body(0..<n) with chunk 0 on the calling thread and chunk k on helper k − 1, and
    /// returns when all are done.
    @usableFromInline
    func run(_ n: Int, _ body: (Int) -> Void) {
        guard acquire() else { return DispatchQueue.concurrentPerform(iterations: n, execute: body) }
        defer { release() }
        guard n - 1 <= helpers.count else { return DispatchQueue.concurrentPerform(iterations: n, execute: body) }
        withoutActuallyEscaping(body) { body in
            job = body
            jobChunks = n
            pending.store(helpers.count, ordering: .relaxed)
            generation.add(1, ordering: .sequentiallyConsistent)
            for h in helpers where h.sleeping.exchange(false, ordering: .sequentiallyConsistent) { h.wake.signal() }
            body(0)
            var spins = 0
            while pending.load(ordering: .acquiring) != 0 {
                spins += 1
                if spins > Self.callerSpins { sched_yield() }
            }
            job = nil
        }
    }

    private func acquire() -> Bool {
        busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged
    }

    private func release() { busy.store(false, ordering: .releasing) }

    /// A helper's loop: wait for the next generation, run its chunk if the region has one, report.
    private func serve(_ helper: Helper, chunk: Int, seen start: Int) {
        var seen = start
        while true {
            seen = waitForGeneration(after: seen, helper)
            if chunk < jobChunks, let job { job(chunk) }
            pending.subtract(1, ordering: .releasing)
        }
    }

    /// Spins until the generation moves past `seen`, then blocks on the helper's semaphore until
    /// `run` signals it; returns the new generation.
    private func waitForGeneration(after seen: Int, _ helper: Helper) -> Int {
        var spins = 0
        while true {
            let g = generation.load(ordering: .acquiring)
            if g != seen { return g }
            spins += 1
            guard spins > Self.helperSpins else { continue }
            spins = 0
            helper.sleeping.store(true, ordering: .sequentiallyConsistent)
            if generation.load(ordering: .sequentiallyConsistent) == seen {
                helper.wake.wait()
            } else if !helper.sleeping.exchange(false, ordering: .sequentiallyConsistent) {
                helper.wake.wait()   // `run` saw the flag and has signalled (or is about to)
            }
        }
    }
}
