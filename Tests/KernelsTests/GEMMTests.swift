import CBLAS
import Testing
@testable import Kernels

/// `GEMM.product` zeroes C itself and calls OpenBLAS with β = 1; that must give the bits of
/// OpenBLAS's own β = 0 (and leave the rest of a strided C alone).
@Suite struct GEMMTests {
    @Test(arguments: [(false, false), (false, true), (true, false), (true, true)])
    func overwriteIsBitIdenticalToBetaZero(transA: Bool, transB: Bool) {
        var rng = SplitMix(state: 7)
        let m = 37, n = 21, k = 70, ldc = n + 5
        let a = Buffer(m * k, &rng).data, b = Buffer(k * n, &rng).data
        let lda = transA ? m : k, ldb = transB ? k : n
        let garbage = Buffer(m * ldc, &rng).data
        var ours = garbage, theirs = garbage
        GEMM.product(transA: transA, transB: transB, m: m, n: n, k: k, alpha: 0.5, a: a, lda: lda,
                     b: b, ldb: ldb, c: &ours, ldc: ldc)
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), 0.5, a, Int32(lda), b, Int32(ldb), 0, &theirs, Int32(ldc))
        #expect(ours.map(\.bitPattern) == theirs.map(\.bitPattern))
    }

    @Test func accumulateAddsToC() {
        var rng = SplitMix(state: 8)
        let m = 9, n = 11, k = 13
        let a = Buffer(m * k, &rng).data, b = Buffer(k * n, &rng).data, c0 = Buffer(m * n, &rng).data
        var ours = c0, theirs = c0
        GEMM.product(m: m, n: n, k: k, a: a, lda: k, b: b, ldb: n, c: &ours, ldc: n, accumulate: true)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(n), Int32(k), 1, a, Int32(k),
                    b, Int32(n), 1, &theirs, Int32(n))
        #expect(ours.map(\.bitPattern) == theirs.map(\.bitPattern))
    }
}
