import Foundation
import Telemetry

/// Commands from observers to the trainer. Any thread may send; the trainer drains the queue only
/// at step boundaries, so a command never lands in the middle of a step.
public final class CommandQueue: CommandSink, @unchecked Sendable {
    private let condition = NSCondition()
    private var pending: [Command] = []

    public init() {}

    @discardableResult
    public func send(_ command: Command) -> String? {
        condition.lock()
        pending.append(command)
        condition.signal()
        condition.unlock()
        return nil
    }

    /// Everything sent since the last drain, in order.
    public func drain() -> [Command] {
        condition.lock(); defer { condition.unlock() }
        let out = pending
        pending.removeAll()
        return out
    }

    /// Blocks until a command arrives or `timeout` seconds pass.
    public func wait(timeout: Double) -> [Command] {
        condition.lock(); defer { condition.unlock() }
        if pending.isEmpty { _ = condition.wait(until: Date(timeIntervalSinceNow: timeout)) }
        let out = pending
        pending.removeAll()
        return out
    }
}
