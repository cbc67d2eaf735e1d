import Foundation

/// Carries records from one publisher (the trainer or a replay) to any number of observers.
///
/// Publishing never waits for an observer: each subscription has a bounded queue, and when it is
/// full the oldest *step* record is dropped (and counted) to make room. Evals, events, checkpoints
/// and the end record are never dropped, so an observer that falls behind still sees every change.
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
        let subs = subscriptions
        lock.unlock()
        for sub in subs { sub.setHeader(header) }
    }

    /// Hands a record to every subscription. O(subscribers), never blocks on a consumer.
    public func publish(_ record: Record) {
        lock.lock()
        let subs = subscriptions
        lock.unlock()
        for sub in subs { sub.enqueue(record) }
    }

    /// Marks the end of the stream; subscriptions drain what they hold and then report closed.
    public func close() {
        lock.lock()
        closed = true
        let subs = subscriptions
        lock.unlock()
        for sub in subs { sub.close() }
    }

    /// A new observer. `capacity` bounds how many records wait for it.
    public func subscribe(name: String, capacity: Int = 4096) -> BusSubscription {
        let sub = BusSubscription(name: name, capacity: capacity)
        lock.lock()
        subscriptions.append(sub)
        let header = self.header
        let closed = self.closed
        lock.unlock()
        if let header { sub.setHeader(header) }
        if closed { sub.close() }
        return sub
    }

    public func unsubscribe(_ subscription: BusSubscription) {
        lock.lock()
        subscriptions.removeAll { $0 === subscription }
        lock.unlock()
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
        if queue.count - head >= capacity {
            // Drop the oldest step record; if there is none, grow past capacity rather than lose
            // an event, eval, checkpoint or end record.
            if let index = queue[head...].firstIndex(where: { if case .step = $0 { return true }; return false }) {
                queue.remove(at: index)
                _dropped += 1
            }
        }
        queue.append(record)
        condition.signal()
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
        if head > 1024 && head * 2 > queue.count {
            queue.removeFirst(head)
            head = 0
        }
        return out
    }
}
