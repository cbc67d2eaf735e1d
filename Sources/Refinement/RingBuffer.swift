// A fixed-capacity window of the most recent values, for the spike detector and the gradient-norm
// variation.

/// The last `capacity` values appended, oldest first when read as `values`.
public struct RingBuffer: Equatable, Sendable, Codable {
    public let capacity: Int
    private var storage: [Double] = []
    private var next = 0

    public init(capacity: Int) {
        self.capacity = max(capacity, 1)
        storage.reserveCapacity(self.capacity)
    }

    public var count: Int { storage.count }

    public mutating func append(_ value: Double) {
        if storage.count < capacity {
            storage.append(value)
        } else {
            storage[next] = value
        }
        next = (next + 1) % capacity
    }

    /// The values, oldest first.
    public var values: [Double] {
        storage.count < capacity ? storage : Array(storage[next...] + storage[..<next])
    }

    /// Unordered view of the values (for order-free statistics).
    public var unordered: [Double] { storage }

    /// The median of the values, or nil when there are none.
    public var median: Double? { Self.median(storage) }

    /// The median of `x` (the mean of the middle two for an even count), or nil when it is empty.
    public static func median(_ x: [Double]) -> Double? {
        guard !x.isEmpty else { return nil }
        let sorted = x.sorted()
        let middle = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
    }
}
