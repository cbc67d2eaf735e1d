import Dispatch
import Foundation
import Synchronization

/// The helper threads that `Parallel.chunks` runs its chunks on, beside the calling thread.
///
/// `DispatchQueue.concurrentPerform` wakes a pool thread for every call: at preset M (about 130
/// parallel regions a step) the chunk on the woken thread started 40–80 µs late and ended last in
/// 8 regions of 10 (docs/PERFORMANCE.md, "Speed at M, round 2"). These helpers are long-lived and
/// spin for 50 µs after each region before they sleep, so the next region starts on them at once.
/// Chunks are claimed one at a time, so a chunk no helper has picked up yet is run by the calling
/// thread, as `concurrentPerform` does: under another process's load a helper pushed off its core
/// holds nothing up. The calling thread spins for unfinished chunks for up to 500 µs, then
/// sleeps. Which thread runs a chunk never changes what the chunk computes (kernels index their
/// scratch by chunk), so results stay bit-identical.
///
/// One region runs at a time: a call that finds the pool busy (another thread's region, or a
/// chunk that itself calls `chunks`) runs on `concurrentPerform` instead.
@usableFromInline
final class WorkerPool: @unchecked Sendable {
    /// The process's pool; helpers are started by `reserve`.
    @usableFromInline static let shared = WorkerPool()

    /// How long a helper spins for the next region before it blocks, and how long the calling
    /// thread spins for the helpers to finish before it blocks (giving its core to a helper that
    /// another process's work had pushed off its own).
    private static let helperSpin: UInt64 = 50_000
    private static let callerSpin: UInt64 = 500_000

    /// A thread that waits for a condition by spinning for a while, then blocking until the
    /// thread that makes the condition true calls `wakeIfSleeping`.
    private final class Sleeper: Sendable {
        private let sleeping = Atomic<Bool>(false)
        private let wake = DispatchSemaphore(value: 0)

        /// Returns once `done()` (a sequentially consistent load) holds; spins for about
        /// `spinNanoseconds` at a time before blocking.
        func wait(spinNanoseconds: UInt64, until done: () -> Bool) {
            var spins = 0
            var deadline: UInt64 = 0
            while !done() {
                spins &+= 1
                guard spins & 255 == 0 else { continue }
                let now = DispatchTime.now().uptimeNanoseconds
                if deadline == 0 { deadline = now + spinNanoseconds }
                guard now >= deadline else { continue }
                sleeping.store(true, ordering: .sequentiallyConsistent)
                if !done() {
                    wake.wait()
                } else if !sleeping.exchange(false, ordering: .sequentiallyConsistent) {
                    wake.wait()   // the waker saw the flag and has signalled (or is about to)
                }
                deadline = 0
            }
        }

        /// Called after making the condition true (with a sequentially consistent store).
        func wakeIfSleeping() {
            if sleeping.exchange(false, ordering: .sequentiallyConsistent) { wake.signal() }
        }
    }

    private let busy = Atomic<Bool>(false)
    /// The region: generation << 32 | chunks << 16 | next unclaimed chunk. Claiming a chunk is a
    /// compare-exchange on all three, so a thread that looked late can never claim a chunk of a
    /// later region it did not see start.
    private let claims = Atomic<Int>(0)
    /// Chunks of the current region not finished yet.
    private let remaining = Atomic<Int>(0)
    private nonisolated(unsafe) var generation = 0
    /// Written only while `busy` is held.
    private nonisolated(unsafe) var helpers: [Sleeper] = []
    private let caller = Sleeper()
    /// The region's body: set before its generation is published, cleared after its last chunk;
    /// a thread holding a claimed chunk may read it.
    private nonisolated(unsafe) var job: ((Int) -> Void)?

    private init() {}

    /// Starts the helpers for `Parallel(threads: count + 1)` ahead of its first region (a region
    /// that needs more helpers than exist starts them itself).
    func reserve(_ count: Int) {
        guard acquire() else { return }
        defer { release() }
        grow(to: count)
    }

    /// Starts helper threads until there are `count`; only while `busy` is held.
    private func grow(to count: Int) {
        while helpers.count < count {
            let helper = Sleeper(), seen = generation
            helpers.append(helper)
            let thread = Thread { [self] in self.serve(helper, seen: seen) }
            thread.stackSize = 8 << 20
            thread.start()
        }
    }

    /// Runs body(k) for k in 0..<n, each once, on the calling thread and the helpers, and returns
    /// when all are done. Chunks are claimed one at a time, so the calling thread also runs the
    /// chunks no helper has picked up by the time it is free (a helper that another process keeps
    /// off its core holds up nothing it has not claimed), as `concurrentPerform` does.
    @usableFromInline
    func run(_ n: Int, _ body: (Int) -> Void) {
        guard n < 1 << 16, acquire() else { return DispatchQueue.concurrentPerform(iterations: n, execute: body) }
        defer { release() }
        grow(to: n - 1)
        withoutActuallyEscaping(body) { body in
            job = body
            remaining.store(n, ordering: .relaxed)
            // 31 bits, so that g << 32 stays positive (and c >> 32 == g) however long the process runs.
            generation = (generation &+ 1) & 0x7FFF_FFFF
            let g = generation
            claims.store(g << 32 | n << 16, ordering: .sequentiallyConsistent)
            for h in helpers.prefix(n - 1) { h.wakeIfSleeping() }
            runChunks(of: g)
            caller.wait(spinNanoseconds: Self.callerSpin) { remaining.load(ordering: .sequentiallyConsistent) == 0 }
            job = nil
        }
    }

    /// Claims and runs chunks of generation `g` until none is left unclaimed.
    private func runChunks(of g: Int) {
        while true {
            let c = claims.load(ordering: .acquiring)
            let next = c & 0xFFFF, chunks = (c >> 16) & 0xFFFF
            guard c >> 32 == g, next < chunks else { return }
            guard claims.compareExchange(expected: c, desired: c + 1, ordering: .acquiringAndReleasing).exchanged
            else { continue }
            job!(next)
            if remaining.subtract(1, ordering: .sequentiallyConsistent).newValue == 0 { caller.wakeIfSleeping() }
        }
    }

    private func acquire() -> Bool {
        busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged
    }

    private func release() { busy.store(false, ordering: .releasing) }

    /// A helper's loop: wait for a region it has not seen, then run chunks of it while any is
    /// left.
    private func serve(_ helper: Sleeper, seen start: Int) {
        var seen = start
        while true {
            helper.wait(spinNanoseconds: Self.helperSpin) { claims.load(ordering: .sequentiallyConsistent) >> 32 != seen }
            seen = claims.load(ordering: .acquiring) >> 32
            runChunks(of: seen)
        }
    }
}
