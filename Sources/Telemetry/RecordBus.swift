import RunFormat
import Foundation

/// Carries records from one publisher (the trainer or a replay) to any number of observers.
///
/// Publishing never waits for an observer: each subscription has a bounded queue, and when it is
/// full the oldest *step* record is dropped (and counted) to make room. Evals, events, checkpoints
/// and the end record are never dropped, so an observer that falls behind still sees every change.
/// Records published after `close()` are ignored. A replay that starts over calls `restart`, which
/// empties every queue and bumps each subscription's `generation`.
public final class RecordBus: @unchecked Sendable {
    private let lock = NSLock()
    private var subscriptions: [BusSubscription] = []
    private var header: RunHeader?
    private var closed = false

    public init() {}

    /// Announces the run. Subscriptions made later receive it too.
    public func publishHeader(_ header: RunHeader) {
        lock.lock()
        self.header = header
        for sub in subscriptions { sub.setHeader(header) }
        lock.unlock()
    }

    /// Hands a record to every subscription. O(subscribers), never blocks on a consumer.
    public func publish(_ record: Record) {
        lock.lock()
        if closed { lock.unlock(); return }
        let subs = subscriptions
        lock.unlock()
        for sub in subs { sub.enqueue(record) }
    }

    /// Marks the end of the stream; subscriptions drain what they hold and then report closed.
    public func close() {
        lock.lock()
        closed = true
        for sub in subscriptions { sub.close() }
        lock.unlock()
    }

    /// Starts the stream over (a replay seeking backward): reopens the bus if it was closed,
    /// empties every subscription's queue and increments its `generation`, and sets `header`.
    /// Records published after this call belong to the new generation.
    public func restart(header: RunHeader? = nil) {
        lock.lock()
        closed = false
        if let header { self.header = header }
        let subs = subscriptions
        let current = self.header
        for sub in subs { sub.restart(header: current) }
        lock.unlock()
    }

    /// Waits up to `timeout` seconds until every subscription has room for one more record, so
    /// that publishing it drops nothing; true when they have (or are closed). A replay, which
    /// reads a file and can wait, calls this before each record so that its observers see every
    /// step of a long run; the trainer never does (it must not wait for a dashboard).
    public func waitForRoom(timeout: Double) -> Bool {
        lock.lock()
        let subs = subscriptions
        lock.unlock()
        let deadline = Date(timeIntervalSinceNow: timeout)
        return subs.allSatisfy { $0.waitForRoom(until: deadline) }
    }

    /// A new observer. `capacity` bounds how many records wait for it.
    public func subscribe(name: String, capacity: Int = 4096) -> BusSubscription {
        let sub = BusSubscription(name: name, capacity: capacity)
        lock.lock()
        // Under the bus lock, so a concurrent publishHeader or close cannot be seen out of order.
        if let header { sub.setHeader(header) }
        if closed { sub.close() }
        subscriptions.append(sub)
        lock.unlock()
        return sub
    }

    /// Stops delivering to `subscription`; it reports finished once its queue is drained.
    public func unsubscribe(_ subscription: BusSubscription) {
        lock.lock()
        subscriptions.removeAll { $0 === subscription }
        lock.unlock()
        subscription.close()
    }
}

/// One observer's queue on a `RecordBus`.
public final class BusSubscription: @unchecked Sendable {
    public let name: String
    private let capacity: Int
    private let condition = NSCondition()
    private var queue: [Record] = []
    private var head = 0
    private var closed = false
    private var _header: RunHeader?
    private var _dropped = 0
    private var _generation = 0

    init(name: String, capacity: Int) {
        self.name = name
        self.capacity = max(1, capacity)
        queue.reserveCapacity(min(self.capacity, 4096))
    }

    /// The run's header once published.
    public var header: RunHeader? {
        condition.lock(); defer { condition.unlock() }
        return _header
    }

    /// Step records dropped because this observer fell behind.
    public var dropped: Int {
        condition.lock(); defer { condition.unlock() }
        return _dropped
    }

    /// Incremented by `RecordBus.restart`: records taken before belong to an abandoned stream.
    public var generation: Int {
        condition.lock(); defer { condition.unlock() }
        return _generation
    }

    /// True once the bus is closed and every record has been taken.
    public var isFinished: Bool {
        condition.lock(); defer { condition.unlock() }
        return closed && head == queue.count
    }

    func setHeader(_ header: RunHeader) {
        condition.lock()
        _header = header
        condition.broadcast()
        condition.unlock()
    }

    func enqueue(_ record: Record) {
        condition.lock()
        if closed { condition.unlock(); return }
        if queue.count - head >= capacity {
            // Drop the oldest step record; if there is none, grow past capacity rather than lose
            // an event, eval, checkpoint or end record.
            if case .step = queue[head] {
                head += 1                       // the common case: O(1)
                _dropped += 1
            } else if let index = queue[head...].firstIndex(where: { if case .step = $0 { return true }; return false }) {
                queue.remove(at: index)
                _dropped += 1
            }
        }
        queue.append(record)
        condition.signal()
        condition.unlock()
    }

    /// Waits until `deadline` for room (the common case, room now, costs one lock).
    func waitForRoom(until deadline: Date) -> Bool {
        condition.lock(); defer { condition.unlock() }
        while !closed && queue.count - head >= capacity {
            if !condition.wait(until: deadline) { break }
        }
        return closed || queue.count - head < capacity
    }

    func restart(header: RunHeader?) {
        condition.lock()
        queue.removeAll(keepingCapacity: true)
        head = 0
        closed = false
        _generation += 1
        if let header { _header = header }
        condition.broadcast()
        condition.unlock()
    }

    func close() {
        condition.lock()
        closed = true
        condition.broadcast()
        condition.unlock()
    }

    /// Takes up to `max` waiting records without blocking.
    public func drain(max: Int = Int.max) -> [Record] {
        condition.lock(); defer { condition.unlock() }
        return takeLocked(max)
    }

    /// Like `drain`, together with the generation the records belong to (taken atomically, so an
    /// observer of a replay never mixes records from before and after a restart).
    public func drainBatch(max: Int = Int.max) -> (generation: Int, records: [Record]) {
        condition.lock(); defer { condition.unlock() }
        return (_generation, takeLocked(max))
    }

    /// Waits up to `timeout` seconds for at least one record, then takes up to `max`.
    /// Returns an empty array on timeout or when the bus is closed and drained.
    public func wait(timeout: Double, max: Int = Int.max) -> [Record] {
        condition.lock(); defer { condition.unlock() }
        let deadline = Date(timeIntervalSinceNow: timeout)
        while head == queue.count && !closed {
            if !condition.wait(until: deadline) { break }
        }
        return takeLocked(max)
    }

    private func takeLocked(_ max: Int) -> [Record] {
        let n = Swift.min(max, queue.count - head)
        guard n > 0 else { return [] }
        let out = Array(queue[head..<(head + n)])
        head += n
        condition.broadcast()  // a publisher may be waiting for room (no cost when none is)
        if head > 1024 && head * 2 > queue.count {
            queue.removeFirst(head)
            head = 0
        }
        return out
    }
}
