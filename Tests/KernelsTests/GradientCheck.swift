import Testing
import Kernels
@testable import Kernels

/// Helpers for finite-difference checks: Float32 kernels against central differences of an
/// independent double-precision reference, with ε = 1e-5 in float64.
struct Buffer {
    var data: [Float]
    init(_ n: Int, _ rng: inout SplitMix, scale: Float = 1) {
        data = (0..<n).map { _ in rng.float() * scale }
    }
    init(zeros n: Int) { data = Array(repeating: 0, count: n) }
}

/// Tiny deterministic generator for test data (Kernels' SplitMix64).
typealias SplitMix = SplitMix64

extension SplitMix64 {
    /// Uniform in [−1, 1).
    mutating func float() -> Float { Float(unit() * 2 - 1) }
}

/// Central-difference gradient of `f` at `x` (float64).
func numericGradient(_ x: [Double], eps: Double = 1e-5, _ f: ([Double]) -> Double) -> [Double] {
    var x = x
    var g = [Double](repeating: 0, count: x.count)
    for i in 0..<x.count {
        let saved = x[i]
        x[i] = saved + eps
        let up = f(x)
        x[i] = saved - eps
        let down = f(x)
        x[i] = saved
        g[i] = (up - down) / (2 * eps)
    }
    return g
}

/// ‖a − b‖ / max(‖a‖ + ‖b‖, tiny): the relative error used by every check below.
func relativeError(_ a: [Float], _ b: [Double]) -> Double {
    precondition(a.count == b.count)
    var num = 0.0, den = 0.0, na = 0.0, nb = 0.0
    for i in 0..<a.count {
        let d = Double(a[i]) - b[i]
        num += d * d
        na += Double(a[i]) * Double(a[i])
        nb += b[i] * b[i]
    }
    den = na.squareRoot() + nb.squareRoot()
    return num.squareRoot() / max(den, 1e-30)
}

func dot(_ a: [Double], _ r: [Float]) -> Double {
    var s = 0.0
    for i in 0..<a.count { s += a[i] * Double(r[i]) }
    return s
}

/// The workers the tests' kernels and models use: two, which exercises the split.
let testParallel = Kernels.Parallel(threads: 2)
