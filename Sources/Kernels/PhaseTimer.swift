import Foundation

/// Accumulates wall time per named phase of a step, for `gradflow bench --profile`.
/// Phases are registered once; `measure` costs two clock reads.
public final class PhaseTimer {
    public private(set) var names: [String] = []
    public private(set) var seconds: [Double] = []
    private var index: [String: Int] = [:]

    public init() {}

    @inlinable
    public func measure<R>(_ name: String, _ body: () throws -> R) rethrows -> R {
        let t0 = DispatchTime.now().uptimeNanoseconds
        let r = try body()
        add(name, Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9)
        return r
    }

    public func add(_ name: String, _ s: Double) {
        if let i = index[name] {
            seconds[i] += s
        } else {
            index[name] = names.count
            names.append(name)
            seconds.append(s)
        }
    }

    public func reset() {
        for i in seconds.indices { seconds[i] = 0 }
    }
}

/// Runs `body`, timing it under `name` when a timer is given.
@inlinable
public func timed<R>(_ timer: PhaseTimer?, _ name: String, _ body: () throws -> R) rethrows -> R {
    guard let timer else { return try body() }
    return try timer.measure(name, body)
}
