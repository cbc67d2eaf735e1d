// Bands of causal attention distance d = i − j for the context axis (docs/ARCHITECTURE.md §7.1).

/// The partition of attention distances 0…T−1 into consecutive bands.
///
/// `edges` holds the upper, inclusive distance of every band but the last: edges `[8, 64]` at
/// T = 128 give local 0–8, phrase 9–64 and long 65–127.
///
///     let bands = try ContextBands(edges: [8, 64], window: 128)
///     bands.band(ofDistance: 9)          // 1 ("phrase")
///     let table = bands.bandIndexByDistance()   // [Int32] of size 128 for the attention kernel
public struct ContextBands: Equatable, Sendable {
    /// The default edges: local [0, 8], phrase [9, 64], long [65, T−1].
    public static let defaultEdges = [8, 64]

    /// Upper inclusive distance of every band but the last, strictly increasing, each < T − 1.
    public let edges: [Int]
    /// The attention window T (sequence length): distances run from 0 to T − 1.
    public let window: Int

    /// Validates `edges` for a window of `window` positions.
    /// - Throws: `RefinementError` naming the offending edge when the edges are not strictly
    ///   increasing, negative, or leave the last band empty (an edge ≥ T − 1).
    public init(edges: [Int], window: Int) throws {
        guard window >= 1 else {
            throw RefinementError("context bands: the attention window must be at least 1, got \(window)")
        }
        do {
            try Self.checkOrder(edges)
        } catch let e as RefinementError {
            throw RefinementError("context bands: " + e.message)
        }
        if let edge = edges.first(where: { $0 >= window - 1 }) {
            throw RefinementError(
                "context bands: edge \(edge) leaves the last band empty; every edge must be < T − 1 = \(window - 1)")
        }
        self.edges = edges
        self.window = window
    }

    /// Checks what edges need whatever the window: each ≥ 0, strictly increasing. The message
    /// names the edge; callers put their own prefix (the flag, or "context bands").
    public static func checkOrder(_ edges: [Int]) throws {
        for (index, edge) in edges.enumerated() {
            if edge < 0 {
                throw RefinementError("edge \(index + 1) is \(edge); edges are attention distances and must be ≥ 0")
            }
            if index > 0 && edge <= edges[index - 1] {
                throw RefinementError(
                    "edges must be strictly increasing, but edge \(index + 1) (\(edge)) ≤ edge \(index) (\(edges[index - 1]))")
            }
        }
    }

    /// The default bands for a window of T positions: the default edges that fit (< T − 1), so
    /// T = 128 gets local/phrase/long, T = 32 gets local/long and T ≤ 9 one band.
    public static func standard(window: Int) -> ContextBands {
        let fitting = defaultEdges.filter { $0 < window - 1 }
        return try! ContextBands(edges: fitting, window: max(window, 1))
    }

    /// Number of bands (edges + 1).
    public var count: Int { edges.count + 1 }

    /// Band names: local/phrase/long for three bands, local/long for two, "all" for one,
    /// b0, b1, … otherwise.
    public var names: [String] {
        switch count {
        case 1: return ["all"]
        case 2: return ["local", "long"]
        case 3: return ["local", "phrase", "long"]
        default: return (0..<count).map { "b\($0)" }
        }
    }

    /// Lowest and highest distance of band `band`.
    public func distanceRange(ofBand band: Int) -> ClosedRange<Int> {
        let low = band == 0 ? 0 : edges[band - 1] + 1
        let high = band == edges.count ? window - 1 : edges[band]
        return low...high
    }

    /// Extents as the dashboard shows them: "0–8", "9–64", "65–127" (a single distance as "0").
    public var extents: [String] {
        (0..<count).map { band in
            let range = distanceRange(ofBand: band)
            return range.lowerBound == range.upperBound
                ? "\(range.lowerBound)" : "\(range.lowerBound)–\(range.upperBound)"
        }
    }

    /// The band that attention distance `distance` (0 ≤ d < T) belongs to.
    public func band(ofDistance distance: Int) -> Int {
        var band = 0
        while band < edges.count && distance > edges[band] { band += 1 }
        return band
    }

    /// The band of every distance 0…T−1, for the attention kernel's inner loop.
    public func bandIndexByDistance() -> [Int32] {
        var table = [Int32](repeating: 0, count: window)
        var band = 0
        for distance in 0..<window {
            while band < edges.count && distance > edges[band] { band += 1 }
            table[distance] = Int32(band)
        }
        return table
    }
}
