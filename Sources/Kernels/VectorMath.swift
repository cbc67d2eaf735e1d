#if arch(x86_64)
import _Builtin_intrinsics.intel
#endif

/// Vectorised elementary functions for the kernels' inner loops.
///
/// libm's scalar `expf`/`tanhf` cost 10–20 ns an element, which at preset M (19 M GELU elements a
/// step) is a tenth of the step. These are Cephes-style polynomial approximations on 8 lanes
/// (one AVX register), accurate to about 2 ulp over the range the model uses.
public enum VectorMath {
    public typealias F8 = SIMD8<Float>

    /// e^x for each lane; inputs below −87.3 give 0, above 88.7 give +inf. Transparent (always
    /// inlined): as `@inline(__always)` the compiler still called it, and `tanh`, out of line
    /// from some loops (GELU forward, softmax), spilling the vectors around each call.
    @_transparent
    public static func exp(_ x0: F8) -> F8 {
        var x = x0
        x.replace(with: F8(repeating: -87.33654), where: x0 .< -87.33654)
        x.replace(with: F8(repeating: 88.72283), where: x0 .> 88.72283)
        // n = round(x / ln 2) by the 1.5·2²³ trick, which also leaves n in the low mantissa bits
        // (generic Float→Int conversions are not specialised for SIMD and cost 10× the rest).
        let magic = F8(repeating: 12582912)
        let shifted = x * 1.44269504088896341 + magic
        let n = shifted - magic
        var r = x - n * 0.693359375
        r = r + n * 2.12194440e-4
        let r2 = r * r
        var p = F8(repeating: 1.9875691500e-4)
        p = p * r + 1.3981999507e-3
        p = p * r + 8.3334519073e-3
        p = p * r + 4.1665795894e-2
        p = p * r + 1.6666665459e-1
        p = p * r + 5.0000001201e-1
        let y = p * r2 + r + 1
        // 2^n built from the exponent bits.
        let ni = unsafeBitCast(shifted, to: SIMD8<Int32>.self) &- 0x4B40_0000
        let scale = unsafeBitCast((ni &+ 127) &<< 23, to: F8.self)
        var out = y * scale
        out.replace(with: F8(repeating: .infinity), where: x0 .>= 88.72283)
        out.replace(with: F8(repeating: 0), where: x0 .<= -87.33654)
        return out
    }

    /// tanh(x) for each lane, as 1 − 2 / (e^{2x} + 1).
    @_transparent
    public static func tanh(_ x: F8) -> F8 {
        let e = exp(x + x)
        return 1 - 2 / (e + 1)
    }

    /// Scalar e^x through the same approximation, so scalar tails match vector lanes exactly.
    @inlinable @inline(__always)
    public static func exp(_ x: Float) -> Float { exp(F8(repeating: x))[0] }

    @inlinable @inline(__always)
    public static func tanh(_ x: Float) -> Float { tanh(F8(repeating: x))[0] }

    /// √x for each lane, correctly rounded (the same bits as `Float.squareRoot()` lane by lane).
    /// `SIMD8.squareRoot()` compiles to eight scalar square roots, each behind a branch to libm's
    /// `sqrtf` for negative inputs (errno); on x86-64 this is two SSE `sqrtps` (baseline x86-64,
    /// so GRADFLOW_PORTABLE builds run it too), which AVX builds may join into one.
    @inlinable @inline(__always)
    public static func sqrt(_ x: F8) -> F8 {
        #if arch(x86_64)
        return F8(lowHalf: _mm_sqrt_ps(x.lowHalf), highHalf: _mm_sqrt_ps(x.highHalf))
        #else
        return x.squareRoot()
        #endif
    }

    /// The larger of a and b in each lane (for non-NaN lanes, the same as `pointwiseMax`, which
    /// the compiler leaves as a call).
    @inlinable @inline(__always)
    public static func max(_ a: F8, _ b: F8) -> F8 {
        #if arch(x86_64)
        return F8(lowHalf: _mm_max_ps(a.lowHalf, b.lowHalf), highHalf: _mm_max_ps(a.highHalf, b.highHalf))
        #else
        return pointwiseMax(a, b)
        #endif
    }

    @inlinable @inline(__always)
    public static func load(_ p: UnsafePointer<Float>) -> F8 {
        UnsafeRawPointer(p).loadUnaligned(as: F8.self)
    }

    @inlinable @inline(__always)
    public static func store(_ v: F8, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: F8.self)
    }
}
