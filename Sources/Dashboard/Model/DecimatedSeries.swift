import Foundation

/// A bounded history of one scalar per step that keeps its shape at any length.
///
/// Points are gathered into buckets of `span` consecutive appends; each bucket keeps the minimum,
/// the maximum, the mean and the last value, so a spike survives any amount of decimation. When
/// every bucket is in use, neighbours are merged pairwise and the span doubles: memory stays at
/// `capacity` buckets whether the run has a hundred steps or a million.
public struct DecimatedSeries: Sendable, Equatable {
    /// Summary of a run of consecutive points.
    public struct Bucket: Sendable, Equatable {
        public var firstX: Int
        public var lastX: Int
        public var min: Double
        public var max: Double
        public var sum: Double
        public var count: Int
        public var last: Double

        public var mean: Double { sum / Double(count) }

        init(x: Int, value: Double) {
            firstX = x; lastX = x; min = value; max = value; sum = value; count = 1; last = value
        }

        mutating func absorb(_ other: Bucket) {
            lastX = other.lastX
            min = Swift.min(min, other.min)
            max = Swift.max(max, other.max)
            sum += other.sum
            count += other.count
            last = other.last
        }
    }

    public let capacity: Int
    public private(set) var buckets: [Bucket] = []
    /// Points per bucket (a power of two).
    public private(set) var span = 1
    /// Number of finite values appended in all.
    public private(set) var count = 0

    /// `capacity` is rounded up to an even number of at least 4.
    public init(capacity: Int = 1024) {
        self.capacity = Swift.max(4, capacity + capacity % 2)
        buckets.reserveCapacity(self.capacity)
    }

    /// Adds the value measured at step `x`. Steps should not decrease; non-finite values are ignored.
    public mutating func append(x: Int, _ value: Double) {
        guard value.isFinite else { return }
        count += 1
        let n = buckets.count
        if n > 0 && buckets[n - 1].count < span {
            buckets[n - 1].absorb(Bucket(x: x, value: value))
            return
        }
        if n == capacity { compact() }
        buckets.append(Bucket(x: x, value: value))
    }

    /// Forgets the points from step `x` on: a run resumed from an earlier checkpoint does those
    /// steps again, and the first session's are not part of its history. A bucket holding points
    /// on both sides ends at `x - 1` but keeps its summary (its minimum and maximum may include a
    /// forgotten point; a bucket spans `span` points).
    public mutating func drop(from x: Int) {
        while let b = buckets.last, b.firstX >= x {
            buckets.removeLast()
            count -= b.count
        }
        if let b = buckets.last, b.lastX >= x { buckets[buckets.count - 1].lastX = x - 1 }
    }

    /// Merges neighbouring buckets pairwise and doubles the span.
    private mutating func compact() {
        var merged: [Bucket] = []
        merged.reserveCapacity(capacity)
        var i = 0
        while i < buckets.count {
            var b = buckets[i]
            if i + 1 < buckets.count { b.absorb(buckets[i + 1]) }
            merged.append(b)
            i += 2
        }
        buckets = merged
        span *= 2
    }

    public var isEmpty: Bool { buckets.isEmpty }
    public var last: Double? { buckets.last?.last }
    public var firstX: Int? { buckets.first?.firstX }
    public var lastX: Int? { buckets.last?.lastX }

    /// Smallest and largest value over buckets that overlap `xRange`.
    public func extent(in xRange: ClosedRange<Int>) -> (min: Double, max: Double)? {
        var lo = Double.infinity, hi = -Double.infinity
        for b in buckets[indices(overlapping: xRange)] {
            lo = Swift.min(lo, b.min); hi = Swift.max(hi, b.max)
        }
        return lo <= hi ? (lo, hi) : nil
    }

    /// The index range of buckets that overlap `xRange` (binary search; buckets are ordered by x).
    public func indices(overlapping xRange: ClosedRange<Int>) -> Range<Int> {
        var lo = 0, hi = buckets.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if buckets[mid].lastX < xRange.lowerBound { lo = mid + 1 } else { hi = mid }
        }
        var end = lo
        while end < buckets.count && buckets[end].firstX <= xRange.upperBound { end += 1 }
        return lo..<end
    }

    /// Bytes held by the bucket storage (the reserved capacity), for the benchmark's report.
    public var memoryBytes: Int { capacity * MemoryLayout<Bucket>.stride }
}

/// One column of a resampled series: the extremes and the last value of the points that fall in it.
public struct ColumnSample: Sendable, Equatable {
    public var min: Double
    public var max: Double
    public var last: Double
    /// Sum and (fractional) number of the points in the column, for the mean.
    public var sum: Double
    public var weight: Double
    public var mean: Double { weight > 0 ? sum / weight : last }

    public init(min: Double, max: Double, last: Double, sum: Double, weight: Double) {
        self.min = min
        self.max = max
        self.last = last
        self.sum = sum
        self.weight = weight
    }
}

extension DecimatedSeries {
    /// Resamples the buckets in `xRange` onto `count` equal columns; nil where a column has no data.
    /// With `smoothing` s in (0, 1) an EMA (weight s on the past) runs over the whole history first,
    /// using s^n for a bucket of n points, and each column holds the smoothed value.
    public func columns(xRange: ClosedRange<Int>, count: Int, smoothing: Double = 0) -> [ColumnSample?] {
        guard count > 0 else { return [] }
        var out = [ColumnSample?](repeating: nil, count: count)
        let lo = Double(xRange.lowerBound)
        let width = Double(Swift.max(1, xRange.upperBound - xRange.lowerBound))
        func column(_ x: Int) -> Int {
            Swift.min(count - 1, Swift.max(0, Int((Double(x) - lo) / width * Double(count - 1) + 0.5)))
        }
        if smoothing > 0 && smoothing < 1 {
            var ema: Double?
            for b in buckets {
                let s = b.count == 1 ? smoothing : pow(smoothing, Double(b.count))
                ema = ema.map { s * $0 + (1 - s) * b.mean } ?? b.mean
                guard b.lastX >= xRange.lowerBound, b.firstX <= xRange.upperBound, let v = ema else { continue }
                let c = column(b.lastX)
                if var e = out[c] {
                    e.min = Swift.min(e.min, v); e.max = Swift.max(e.max, v); e.last = v
                    e.sum += v; e.weight += 1
                    out[c] = e
                } else {
                    out[c] = ColumnSample(min: v, max: v, last: v, sum: v, weight: 1)
                }
            }
            return out
        }
        for b in buckets[indices(overlapping: xRange)] {
            let c0 = column(Swift.max(b.firstX, xRange.lowerBound))
            let c1 = column(Swift.min(b.lastX, xRange.upperBound))
            // A bucket wider than a column spreads its points evenly over the columns it covers.
            let share = 1.0 / Double(Swift.max(c0, c1) - c0 + 1)
            let sum = b.sum * share, weight = Double(b.count) * share
            for c in c0...Swift.max(c0, c1) {
                if var e = out[c] {
                    e.min = Swift.min(e.min, b.min); e.max = Swift.max(e.max, b.max); e.last = b.last
                    e.sum += sum; e.weight += weight
                    out[c] = e
                } else {
                    out[c] = ColumnSample(min: b.min, max: b.max, last: b.last, sum: sum, weight: weight)
                }
            }
        }
        return out
    }
}
