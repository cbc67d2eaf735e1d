// A fixed-capacity window of the most recent values, for the spike detector and the gradient-norm
// variation.

/// The last `capacity` values appended, oldest first when read as `values`.
struct RingBuffer: Equatable, Sendable, Codable {
    let capacity: Int
    private var storage: [Double] = []
    private var next = 0

    init(capacity: Int) {
        self.capacity = max(capacity, 1)
        storage.reserveCapacity(self.capacity)
    }

    var count: Int { storage.count }

    mutating func append(_ value: Double) {
        if storage.count < capacity {
            storage.append(value)
        } else {
            storage[next] = value
        }
        next = (next + 1) % capacity
    }

    /// The values, oldest first.
    var values: [Double] {
        storage.count < capacity ? storage : Array(storage[next...] + storage[..<next])
    }

    /// Unordered view of the values (for order-free statistics).
    var unordered: [Double] { storage }
}
