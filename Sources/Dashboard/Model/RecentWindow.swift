import Telemetry

/// The last `capacity` values of a series, for statistics over a recent window (e.g. CV(100)).
public struct RecentWindow: Sendable, Equatable {
    public let capacity: Int
    private var values: [Double] = []
    private var next = 0

    public init(capacity: Int) {
        self.capacity = Swift.max(1, capacity)
        values.reserveCapacity(self.capacity)
    }

    public mutating func append(_ value: Double) {
        guard value.isFinite else { return }
        if values.count < capacity { values.append(value) } else { values[next] = value }
        next = (next + 1) % capacity
    }

    public var count: Int { values.count }

    /// The grad-norm CV of the window (`GradNormCV.coefficient`); nil with fewer than two values.
    public var coefficientOfVariation: Double? { GradNormCV.coefficient(values) }
}
