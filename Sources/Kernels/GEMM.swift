import CBLAS

/// Row-major single-precision matrix product on OpenBLAS: the one place the kernels call
/// `cblas_sgemm`.
///
/// `C = α·op(A)·op(B)` (overwrite) or `C += α·op(A)·op(B)` (accumulate), with op(X) = X or Xᵀ.
/// Overwriting zeroes C here and calls OpenBLAS with β = 1 instead of passing β = 0: for β ≠ 1
/// OpenBLAS 0.3.21 first scales C in a separate pass of its generic beta kernel (`sgemm_beta`, one
/// scalar store per element), and its GEMM kernel then adds α·op(A)·op(B) to C in either case. So
/// zeroing with vector stores (memset) gives the same bits in less time: 13.0 → 12.7 ms for a
/// 1024 × 1536 × 384 product, 82 → 78 µs for the score blocks of one attention head
/// (docs/PERFORMANCE.md, "Speed at M, round 2").
public enum GEMM {
    /// C [m × n] (row stride ldc) = α · op(A) [m × k] · op(B) [k × n], or += when `accumulate`.
    /// A is [m × k] (row stride lda), or [k × m] when `transA`; B is [k × n], or [n × k] when
    /// `transB`.
    @inlinable
    public static func product(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
                               alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
                               b: UnsafePointer<Float>, ldb: Int,
                               c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool = false) {
        guard m > 0, n > 0 else { return }
        if !accumulate { zero(c, rows: m, columns: n, stride: ldc) }
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), 1, c, Int32(ldc))
    }

    /// Sets a [rows × columns] block of a row-major matrix with row stride `stride` to +0.
    @inlinable @inline(__always)
    static func zero(_ c: UnsafeMutablePointer<Float>, rows: Int, columns: Int, stride: Int) {
        if stride == columns {
            c.update(repeating: 0, count: rows * columns)
        } else {
            for i in 0..<rows { (c + i * stride).update(repeating: 0, count: columns) }
        }
    }
}
