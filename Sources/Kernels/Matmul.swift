import CBLAS

/// Linear layer `out = inp · Wᵀ + bias` on cblas_sgemm, row-major, as in llm.c.
public enum Matmul {
    /// inp [rows, inC], weight [outC, inC], bias [outC] (or nil) → out [rows, outC].
    @inlinable
    public static func forward(
        out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>,
        weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
        rows: Int, inC: Int, outC: Int, parallel: Parallel
    ) {
        parallel.chunks(rows, minimumChunk: 32) { _, r in
            guard !r.isEmpty else { return }
            var beta: Float = 0
            if let bias {
                for row in r { (out + row * outC).update(from: bias, count: outC) }
                beta = 1
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(r.count), Int32(outC), Int32(inC),
                        1, inp + r.lowerBound * inC, Int32(inC), weight, Int32(inC), beta,
                        out + r.lowerBound * outC, Int32(outC))
        }
    }

    /// dout [rows, outC] → dinp [rows, inC] (overwritten, or added to when `accumulateInput`),
    /// dweight [outC, inC] and dbias [outC] (overwritten). `ones` holds at least `rows` ones.
    @inlinable
    public static func backward(
        dinp: UnsafeMutablePointer<Float>?, dweight: UnsafeMutablePointer<Float>,
        dbias: UnsafeMutablePointer<Float>?, dout: UnsafePointer<Float>,
        inp: UnsafePointer<Float>, weight: UnsafePointer<Float>, ones: UnsafePointer<Float>,
        rows: Int, inC: Int, outC: Int, accumulateInput: Bool = false, parallel: Parallel
    ) {
        // Each worker takes a block of input rows for dinp and a block of output channels for
        // dweight and dbias, so no two workers write the same element.
        let n = parallel.chunkCount(max(rows, outC), minimumChunk: 32)
        parallel.chunks(n) { k, _ in
            let r = (k * rows / n)..<((k + 1) * rows / n)
            let o = (k * outC / n)..<((k + 1) * outC / n)
            if let dinp, !r.isEmpty {
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(r.count), Int32(inC), Int32(outC),
                            1, dout + r.lowerBound * outC, Int32(outC), weight, Int32(inC),
                            accumulateInput ? 1 : 0, dinp + r.lowerBound * inC, Int32(inC))
            }
            guard !o.isEmpty else { return }
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(o.count), Int32(inC), Int32(rows),
                        1, dout + o.lowerBound, Int32(outC), inp, Int32(inC), 0,
                        dweight + o.lowerBound * inC, Int32(inC))
            if let dbias {
                cblas_sgemv(CblasRowMajor, CblasTrans, Int32(rows), Int32(o.count), 1, dout + o.lowerBound,
                            Int32(outC), ones, 1, 0, dbias + o.lowerBound, 1)
            }
        }
    }
}

/// Thread control for OpenBLAS, which runs every GEMM of the model.
public enum BLASThreads {
    public static func set(_ n: Int) { openblas_set_num_threads(Int32(max(1, n))) }
    public static var current: Int { Int(openblas_get_num_threads()) }
}
