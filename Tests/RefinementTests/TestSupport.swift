// Seeded randomness and buffer helpers shared by the refinement tests.

/// SplitMix64: a small deterministic generator so every test run sees the same numbers.
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A roughly normal sample (sum of uniforms), scaled.
    mutating func normal(_ scale: Float = 1) -> Float {
        var sum: Float = 0
        for _ in 0..<4 { sum += Float.random(in: -1...1, using: &self) }
        return sum * scale * 0.866
    }
}

/// Runs `body` with a freshly allocated buffer holding `values`, and returns what it left there.
func withBuffer<R>(_ values: [Float], _ body: (UnsafeMutablePointer<Float>) -> R) -> (R, [Float]) {
    let pointer = UnsafeMutablePointer<Float>.allocate(capacity: max(values.count, 1))
    defer { pointer.deallocate() }
    pointer.initialize(from: values, count: values.count)
    let result = body(pointer)
    return (result, Array(UnsafeBufferPointer(start: pointer, count: values.count)))
}

func relativeError(_ a: Double, _ b: Double) -> Double {
    abs(a - b) / max(abs(a), abs(b), 1e-30)
}
