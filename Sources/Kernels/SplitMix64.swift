/// SplitMix64 (Steele, Lea and Flood, 2014), the one copy in the project: a tiny deterministic
/// generator for seeding (`Xoshiro256`), the bootstrap of study reports, synthetic benchmark data
/// and test data. Not for training batches (those use `Xoshiro256`, whose state a checkpoint keeps).
public struct SplitMix64: RandomNumberGenerator, Sendable, Equatable {
    public var state: UInt64

    public init(state: UInt64) { self.state = state }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1), 53 bits.
    public mutating func unit() -> Double { Double(next() >> 11) * 0x1p-53 }

    /// Uniform integer in 0..<n (modulo; the bias is negligible for small n).
    public mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
}
