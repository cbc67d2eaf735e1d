/*
 * gradflow.refine._fused: the refiner's per-step statistics on the CPU in one pass each.
 *
 * Eager PyTorch runs every operation as its own pass over memory, and the refiner's statistics are
 * almost all memory traffic: the time filter and the depth meter made about 15 passes over the
 * parameters per step and the attention statistics 4-5 passes over each layer's T x T matrices
 * (docs/PERFORMANCE.md, "PyTorch: cost of the refinement"). These kernels do the same arithmetic
 * in one pass per statistic, reading each tensor where it lies (no gather) and writing only what
 * the next step needs. They are used for contiguous float32 CPU tensors only; everything else,
 * and every machine where this module could not be built, runs the torch operations in
 * refiner.py / attention.py, which define the statistics (docs/METHOD.md §8).
 *
 * Sums: float lanes over blocks of at most BLOCK elements, each block's total added in double, so
 * the result is as accurate as a pairwise float sum and the order is fixed (the same bits run
 * after run). Arguments are raw addresses (tensor.data_ptr()) and element counts; the Python side
 * checks dtype, device and contiguity before calling.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

#define LANES 8
#define BLOCK 1024

/* Four float lanes (GCC and Clang vector extensions: one SSE register, the x86-64 baseline). */
#define VL 4
typedef float vf __attribute__((vector_size(16)));
typedef int vi __attribute__((vector_size(16)));

static inline vf load(const float *p) { vf v; __builtin_memcpy(&v, p, sizeof v); return v; }
static inline void store(float *p, vf v) { __builtin_memcpy(p, &v, sizeof v); }
static inline float lanes_sum(vf v) {
    float s = 0;
    for (int k = 0; k < VL; k++) s += v[k];
    return s;
}

/* Reads a sequence of Python ints into a new array of n int64 (n must match). */
static int read_ints(PyObject *seq, Py_ssize_t n, int64_t *out, const char *name) {
    PyObject *fast = PySequence_Fast(seq, name);
    if (!fast) return -1;
    if (PySequence_Fast_GET_SIZE(fast) != n) {
        PyErr_Format(PyExc_ValueError, "%s: expected %zd values, got %zd", name, n, PySequence_Fast_GET_SIZE(fast));
        Py_DECREF(fast);
        return -1;
    }
    PyObject **items = PySequence_Fast_ITEMS(fast);
    for (Py_ssize_t i = 0; i < n; i++) {
        out[i] = PyLong_AsLongLong(items[i]);
        if (out[i] == -1 && PyErr_Occurred()) { Py_DECREF(fast); return -1; }
    }
    Py_DECREF(fast);
    return 0;
}

/* The length of a sequence argument, or -1 with an error set. */
static Py_ssize_t seq_len(PyObject *seq, const char *name) {
    Py_ssize_t n = PySequence_Size(seq);
    if (n < 0) PyErr_Format(PyExc_TypeError, "%s must be a sequence", name);
    return n;
}

/* Σ x over n floats. */
static double sum1(const float *x, int64_t n) {
    double total = 0;
    for (int64_t lo = 0; lo < n; lo += BLOCK) {
        int64_t m = n - lo < BLOCK ? n - lo : BLOCK;
        float acc[LANES] = {0};
        int64_t i = 0;
        for (; i + LANES <= m; i += LANES)
            for (int k = 0; k < LANES; k++) acc[k] += x[lo + i + k];
        float tail = 0;
        for (; i < m; i++) tail += x[lo + i];
        float block = tail;
        for (int k = 0; k < LANES; k++) block += acc[k];
        total += block;
    }
    return total;
}

/* The band ranges of the context axis: inclusive distances [low[k], high[k]]. */
typedef struct { int64_t count; int64_t low[16]; int64_t high[16]; } Bands;

static int read_bands(PyObject *lows, PyObject *highs, Bands *bands) {
    Py_ssize_t n = seq_len(lows, "lows");
    if (n < 0) return -1;
    if (n < 1 || n > 16) { PyErr_SetString(PyExc_ValueError, "1 to 16 context bands"); return -1; }
    bands->count = n;
    if (read_ints(lows, n, bands->low, "lows") || read_ints(highs, n, bands->high, "highs")) return -1;
    return 0;
}

/* attention_sums(p, d, rows, T, heads, lows, highs, out, out_is_double)
 *
 * p (and d, or 0) hold rows·T×T floats, contiguous, [rows][T][T] with rows = batch·heads and
 * head = row % heads. Adds into out (float or double, [heads][bands] without d: the attention
 * mass Σ p_ij; [bands] with d: the band energy Σ (p_ij·d_ij)²), over the causal entries j ≤ i with
 * the distance i − j in each band. The causal triangles are first summed entry by entry over the
 * batch (and, for the energy, the heads) into one T×T float matrix that stays in cache, then the
 * bands of each of its rows are summed. */
static PyObject *attention_sums(PyObject *Py_UNUSED(self), PyObject *args) {
    unsigned long long p_addr, d_addr, out_addr;
    long long rows, T, heads;
    PyObject *lows, *highs;
    int out_is_double;
    if (!PyArg_ParseTuple(args, "KKLLLOOKp", &p_addr, &d_addr, &rows, &T, &heads, &lows, &highs, &out_addr,
                          &out_is_double))
        return NULL;
    Bands bands;
    if (read_bands(lows, highs, &bands)) return NULL;
    if (rows < 0 || T < 1 || heads < 1 || rows % heads != 0) {
        PyErr_SetString(PyExc_ValueError, "attention_sums: bad shape");
        return NULL;
    }
    const float *p = (const float *)(uintptr_t)p_addr;
    const float *d = (const float *)(uintptr_t)d_addr;
    int64_t passes = d ? 1 : heads;            /* one matrix per head for the mass */
    int64_t width = passes * bands.count;
    double *sums = PyMem_Calloc((size_t)width, sizeof(double));
    float *acc = PyMem_Malloc(sizeof(float) * (size_t)(T * T));
    if (!sums || !acc) {
        PyMem_Free(sums);
        PyMem_Free(acc);
        return PyErr_NoMemory();
    }
    Py_BEGIN_ALLOW_THREADS
    for (int64_t h = 0; h < passes; h++) {
        for (int64_t i = 0; i < T; i++)
            for (int64_t j = 0; j <= i; j++) acc[i * T + j] = 0;
        for (int64_t r = d ? 0 : h; r < rows; r += d ? 1 : heads) {
            const float *pm = p + r * T * T;
            if (d) {
                const float *dm = d + r * T * T;
                for (int64_t i = 0; i < T; i++) {
                    float *a = acc + i * T;
                    const float *pr = pm + i * T, *dr = dm + i * T;
                    for (int64_t j = 0; j <= i; j++) {
                        float x = pr[j] * dr[j];
                        a[j] += x * x;
                    }
                }
            } else {
                for (int64_t i = 0; i < T; i++) {
                    float *a = acc + i * T;
                    const float *pr = pm + i * T;
                    for (int64_t j = 0; j <= i; j++) a[j] += pr[j];
                }
            }
        }
        double *slot = sums + h * bands.count;
        for (int64_t i = 0; i < T; i++)
            for (int64_t k = 0; k < bands.count; k++) {
                int64_t last = i - bands.low[k];
                if (last < 0) break;
                int64_t first = i - bands.high[k];
                if (first < 0) first = 0;
                slot[k] += sum1(acc + i * T + first, last - first + 1);
            }
    }
    Py_END_ALLOW_THREADS
    if (out_is_double) {
        double *out = (double *)(uintptr_t)out_addr;
        for (int64_t k = 0; k < width; k++) out[k] += sums[k];
    } else {
        float *out = (float *)(uintptr_t)out_addr;
        for (int64_t k = 0; k < width; k++) out[k] += (float)sums[k];
    }
    PyMem_Free(sums);
    PyMem_Free(acc);
    Py_RETURN_NONE;
}

/* torch.lerp(start, end, w) element by element, with torch's two forms. */
static inline float lerp(float start, float end, float w) {
    return w < 0.5f ? start + w * (end - start) : end - (end - start) * (1.0f - w);
}

/* time_filter(grads, counts, fast, slow, g_row, w_fast, w_slow) -> (⟨g,g⟩, ⟨m_f,g⟩, ⟨m_f,m_f⟩,
 * ‖m_f − m_s‖², ‖m_s‖²)
 *
 * One pass over every tensor's gradient (grads: addresses, counts: sizes, laid out one after the
 * other in the arena rows fast and slow): the products with m_f before the update, then
 * m_f ← lerp(m_f, g, w_fast), m_s ← lerp(m_s, g, w_slow), and the norms of mid = m_f − m_s and of
 * m_s after it. g_row (or 0) receives a copy of g. */
static PyObject *time_filter(PyObject *Py_UNUSED(self), PyObject *args) {
    PyObject *grads_seq, *counts_seq;
    unsigned long long f_addr, s_addr, g_addr;
    float w_fast, w_slow;
    if (!PyArg_ParseTuple(args, "OOKKKff", &grads_seq, &counts_seq, &f_addr, &s_addr, &g_addr, &w_fast, &w_slow))
        return NULL;
    Py_ssize_t n = seq_len(grads_seq, "grads");
    if (n < 0) return NULL;
    int64_t *grads = PyMem_Malloc(sizeof(int64_t) * 2 * (n + 1));
    if (!grads) return PyErr_NoMemory();
    int64_t *counts = grads + n + 1;
    if (read_ints(grads_seq, n, grads, "grads") || read_ints(counts_seq, n, counts, "counts")) {
        PyMem_Free(grads);
        return NULL;
    }
    float *f = (float *)(uintptr_t)f_addr, *s = (float *)(uintptr_t)s_addr, *gout = (float *)(uintptr_t)g_addr;
    double gg = 0, fg = 0, ff = 0, mm = 0, ss = 0;
    Py_BEGIN_ALLOW_THREADS
    int64_t offset = 0;
    for (Py_ssize_t t = 0; t < n; t++) {
        const float *g = (const float *)(uintptr_t)grads[t];
        float *ft = f + offset, *st = s + offset;
        int64_t count = counts[t];
        if (gout) {
            float *gt = gout + offset;
            for (int64_t i = 0; i < count; i++) gt[i] = g[i];
        }
        for (int64_t lo = 0; lo < count; lo += BLOCK) {
            int64_t m = count - lo < BLOCK ? count - lo : BLOCK;
            vf a_gg = {0}, a_fg = {0}, a_ff = {0}, a_mm = {0}, a_ss = {0};
            const vf wf = (vf){0} + w_fast, ws = (vf){0} + w_slow;
            int64_t i = 0;
            for (; i + VL <= m; i += VL) {
                int64_t j = lo + i;
                vf gj = load(g + j), fo = load(ft + j), so = load(st + j);
                a_gg += gj * gj;
                a_fg += fo * gj;
                a_ff += fo * fo;
                vf fn = w_fast < 0.5f ? fo + wf * (gj - fo) : gj - (gj - fo) * (1.0f - wf);
                vf sn = w_slow < 0.5f ? so + ws * (gj - so) : gj - (gj - so) * (1.0f - ws);
                store(ft + j, fn);
                store(st + j, sn);
                vf mid = fn - sn;
                a_mm += mid * mid;
                a_ss += sn * sn;
            }
            float b_gg = 0, b_fg = 0, b_ff = 0, b_mm = 0, b_ss = 0;
            for (; i < m; i++) {
                int64_t j = lo + i;
                float gj = g[j], fo = ft[j];
                b_gg += gj * gj;
                b_fg += fo * gj;
                b_ff += fo * fo;
                float fn = lerp(fo, gj, w_fast), sn = lerp(st[j], gj, w_slow);
                ft[j] = fn;
                st[j] = sn;
                float mid = fn - sn;
                b_mm += mid * mid;
                b_ss += sn * sn;
            }
            b_gg += lanes_sum(a_gg); b_fg += lanes_sum(a_fg); b_ff += lanes_sum(a_ff);
            b_mm += lanes_sum(a_mm); b_ss += lanes_sum(a_ss);
            gg += b_gg; fg += b_fg; ff += b_ff; mm += b_mm; ss += b_ss;
        }
        offset += count;
    }
    Py_END_ALLOW_THREADS
    PyMem_Free(grads);
    return Py_BuildValue("(ddddd)", gg, fg, ff, mm, ss);
}

/* depth_snapshot(params, counts, groups, group_count, row) -> (‖θ_k‖² for every group k)
 *
 * Copies every parameter (addresses params, sizes counts, laid out one after the other) into row
 * and sums its squares into its group's total. */
static PyObject *depth_snapshot(PyObject *Py_UNUSED(self), PyObject *args) {
    PyObject *params_seq, *counts_seq, *groups_seq;
    long long group_count;
    unsigned long long row_addr;
    if (!PyArg_ParseTuple(args, "OOOLK", &params_seq, &counts_seq, &groups_seq, &group_count, &row_addr)) return NULL;
    Py_ssize_t n = seq_len(params_seq, "params");
    if (n < 0) return NULL;
    if (group_count < 1 || group_count > 64) {
        PyErr_SetString(PyExc_ValueError, "depth_snapshot: 1 to 64 groups");
        return NULL;
    }
    int64_t *params = PyMem_Malloc(sizeof(int64_t) * 3 * (n + 1));
    if (!params) return PyErr_NoMemory();
    int64_t *counts = params + n + 1, *groups = counts + n + 1;
    if (read_ints(params_seq, n, params, "params") || read_ints(counts_seq, n, counts, "counts") ||
        read_ints(groups_seq, n, groups, "groups")) {
        PyMem_Free(params);
        return NULL;
    }
    for (Py_ssize_t t = 0; t < n; t++)
        if (groups[t] < 0 || groups[t] >= group_count) {
            PyMem_Free(params);
            PyErr_SetString(PyExc_ValueError, "depth_snapshot: group out of range");
            return NULL;
        }
    double totals[64] = {0};
    float *row = (float *)(uintptr_t)row_addr;
    Py_BEGIN_ALLOW_THREADS
    int64_t offset = 0;
    for (Py_ssize_t t = 0; t < n; t++) {
        const float *theta = (const float *)(uintptr_t)params[t];
        float *dst = row + offset;
        int64_t count = counts[t];
        for (int64_t lo = 0; lo < count; lo += BLOCK) {
            int64_t m = count - lo < BLOCK ? count - lo : BLOCK;
            float acc[LANES] = {0};
            int64_t i = 0;
            for (; i + LANES <= m; i += LANES)
                for (int k = 0; k < LANES; k++) {
                    float x = theta[lo + i + k];
                    dst[lo + i + k] = x;
                    acc[k] += x * x;
                }
            float block = 0;
            for (; i < m; i++) { float x = theta[lo + i]; dst[lo + i] = x; block += x * x; }
            for (int k = 0; k < LANES; k++) block += acc[k];
            totals[groups[t]] += block;
        }
        offset += count;
    }
    Py_END_ALLOW_THREADS
    PyMem_Free(params);
    PyObject *out = PyTuple_New(group_count);
    if (!out) return NULL;
    for (long long k = 0; k < group_count; k++) PyTuple_SET_ITEM(out, k, PyFloat_FromDouble(totals[k]));
    return out;
}

/* depth_measure(grads, params, counts, groups, group_count, g_cur, g_prev, u_cur, u_prev)
 *   -> per group (‖g‖², ⟨g, g_prev⟩, ‖u‖², ⟨u, u_prev⟩, flips), flattened
 *
 * One pass after the optimizer step: g (the gradient, 0 for a tensor without one: zeros) is copied
 * into g_cur and multiplied with g_prev; u_cur holds θ before the step (depth_snapshot) and becomes
 * the update u = θ_before − θ_after, multiplied with u_prev; a flip is u·u_prev < 0 (in float, as
 * the torch path's product and comparison). */
static PyObject *depth_measure(PyObject *Py_UNUSED(self), PyObject *args) {
    PyObject *grads_seq, *params_seq, *counts_seq, *groups_seq;
    long long group_count;
    unsigned long long gc_addr, gp_addr, uc_addr, up_addr;
    if (!PyArg_ParseTuple(args, "OOOOLKKKK", &grads_seq, &params_seq, &counts_seq, &groups_seq, &group_count,
                          &gc_addr, &gp_addr, &uc_addr, &up_addr))
        return NULL;
    Py_ssize_t n = seq_len(params_seq, "params");
    if (n < 0) return NULL;
    if (group_count < 1 || group_count > 64) {
        PyErr_SetString(PyExc_ValueError, "depth_measure: 1 to 64 groups");
        return NULL;
    }
    int64_t *grads = PyMem_Malloc(sizeof(int64_t) * 4 * (n + 1));
    if (!grads) return PyErr_NoMemory();
    int64_t *params = grads + n + 1, *counts = params + n + 1, *groups = counts + n + 1;
    if (read_ints(grads_seq, n, grads, "grads") || read_ints(params_seq, n, params, "params") ||
        read_ints(counts_seq, n, counts, "counts") || read_ints(groups_seq, n, groups, "groups")) {
        PyMem_Free(grads);
        return NULL;
    }
    for (Py_ssize_t t = 0; t < n; t++)
        if (groups[t] < 0 || groups[t] >= group_count) {
            PyMem_Free(grads);
            PyErr_SetString(PyExc_ValueError, "depth_measure: group out of range");
            return NULL;
        }
    double totals[64][5] = {{0}};
    float *gc = (float *)(uintptr_t)gc_addr, *uc = (float *)(uintptr_t)uc_addr;
    const float *gp = (const float *)(uintptr_t)gp_addr, *up = (const float *)(uintptr_t)up_addr;
    Py_BEGIN_ALLOW_THREADS
    int64_t offset = 0;
    for (Py_ssize_t t = 0; t < n; t++) {
        const float *g = (const float *)(uintptr_t)grads[t];
        const float *theta = (const float *)(uintptr_t)params[t];
        float *gct = gc + offset, *uct = uc + offset;
        const float *gpt = gp + offset, *upt = up + offset;
        int64_t count = counts[t];
        double *total = totals[groups[t]];
        for (int64_t lo = 0; lo < count; lo += BLOCK) {
            int64_t m = count - lo < BLOCK ? count - lo : BLOCK;
            vf a_gg = {0}, a_gp = {0}, a_uu = {0}, a_up = {0};
            vi a_fl = {0};
            int64_t i = 0;
            for (; i + VL <= m; i += VL) {
                int64_t j = lo + i;
                vf gj = g ? load(g + j) : (vf){0};
                store(gct + j, gj);
                a_gg += gj * gj;
                a_gp += load(gpt + j) * gj;
                vf u = load(uct + j) - load(theta + j);
                store(uct + j, u);
                a_uu += u * u;
                vf product = u * load(upt + j);
                a_up += product;
                a_fl -= product < 0.0f;     /* a true comparison is −1 in every lane */
            }
            float b[5] = {0};
            for (; i < m; i++) {
                int64_t j = lo + i;
                float gj = g ? g[j] : 0.0f;
                gct[j] = gj;
                b[0] += gj * gj;
                b[1] += gpt[j] * gj;
                float u = uct[j] - theta[j];
                uct[j] = u;
                b[2] += u * u;
                float product = u * upt[j];
                b[3] += product;
                b[4] += product < 0.0f ? 1.0f : 0.0f;
            }
            b[0] += lanes_sum(a_gg); b[1] += lanes_sum(a_gp); b[2] += lanes_sum(a_uu); b[3] += lanes_sum(a_up);
            for (int k = 0; k < VL; k++) b[4] += (float)a_fl[k];
            for (int q = 0; q < 5; q++) total[q] += b[q];
        }
        offset += count;
    }
    Py_END_ALLOW_THREADS
    PyMem_Free(grads);
    PyObject *out = PyTuple_New(group_count * 5);
    if (!out) return NULL;
    for (long long k = 0; k < group_count; k++)
        for (int q = 0; q < 5; q++) PyTuple_SET_ITEM(out, k * 5 + q, PyFloat_FromDouble(totals[k][q]));
    return out;
}

static PyMethodDef methods[] = {
    {"attention_sums", attention_sums, METH_VARARGS, "Attention mass per head and band, or band energy."},
    {"time_filter", time_filter, METH_VARARGS, "The time filter's EMA update and band statistics in one pass."},
    {"depth_snapshot", depth_snapshot, METH_VARARGS, "θ before the step, and ‖θ‖² per depth group."},
    {"depth_measure", depth_measure, METH_VARARGS, "The depth meter's gradient and update statistics in one pass."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_fused", "The refiner's statistics in one pass each (CPU).",
                                    -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__fused(void) { return PyModule_Create(&module); }
