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
 *
 * Threads: each kernel takes the number of threads to use (torch.get_num_threads()) and splits its
 * work with OpenMP into pieces whose partial sums are stored apart and added in one fixed order
 * afterwards, so the result has the same bits at every thread count. Built with -fopenmp, this
 * module needs libgomp.so.1; torch's CPU wheels for Linux load their own libgomp.so.1 first, and
 * the dynamic loader then binds this module to that one, so the kernels run on torch's own OpenMP
 * workers — the threads that spin on the other cores after each of torch's parallel regions — and
 * not on a second pool that would compete with them (docs/PERFORMANCE.md, "PyTorch: cost of the
 * refinement"). setup.py builds the module with -fopenmp; a compiler without OpenMP builds no module,
 * and the package computes the statistics with torch operations.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define BLOCK 1024
#define MAX_THREADS 256

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

/* The band ranges of the context axis: inclusive distances [low[k], high[k]]. */
#define MAX_BANDS 16
typedef struct { int64_t count; int64_t low[MAX_BANDS]; int64_t high[MAX_BANDS]; } Bands;

static int read_bands(PyObject *lows, PyObject *highs, Bands *bands) {
    Py_ssize_t n = seq_len(lows, "lows");
    if (n < 0) return -1;
    if (n < 1 || n > MAX_BANDS) { PyErr_Format(PyExc_ValueError, "1 to %d context bands", MAX_BANDS); return -1; }
    bands->count = n;
    if (read_ints(lows, n, bands->low, "lows") || read_ints(highs, n, bands->high, "highs")) return -1;
    for (Py_ssize_t k = 0; k < n; k++)
        if (bands->low[k] < 0 || bands->high[k] < bands->low[k]) {
            PyErr_Format(PyExc_ValueError, "band %zd: distances %lld to %lld", k, (long long)bands->low[k],
                         (long long)bands->high[k]);
            return -1;
        }
    return 0;
}

/* One query row i of one attention matrix: for every band k, the causal entries j of row i at the
 * distances i − j in [low[k], high[k]]: Σ p_ij added to mass[k] (mass non-NULL) and Σ (p_ij·d_ij)²
 * to energy[k] (d non-NULL). Each band's segment is summed in two pairs of float lanes (two chains,
 * so the additions overlap), then in double. */
static inline void row_segments(const float *p, const float *d, int64_t i, const Bands *bands, double *mass,
                                double *energy) {
    for (int64_t k = 0; k < bands->count; k++) {
        int64_t last = i - bands->low[k];
        if (last < 0) continue;
        int64_t first = i - bands->high[k];
        if (first < 0) first = 0;
        vf m0 = {0}, m1 = {0}, e0 = {0}, e1 = {0};
        float m_tail = 0, e_tail = 0;
        int64_t j = first, end = last + 1;
        if (d) {
            for (; j + 2 * VL <= end; j += 2 * VL) {
                vf a = load(p + j), b = load(p + j + VL);
                vf x = a * load(d + j), y = b * load(d + j + VL);
                m0 += a; m1 += b;
                e0 += x * x; e1 += y * y;
            }
            for (; j < end; j++) {
                float x = p[j] * d[j];
                m_tail += p[j];
                e_tail += x * x;
            }
            energy[k] += (double)(lanes_sum(e0 + e1) + e_tail);
        } else {
            for (; j + 2 * VL <= end; j += 2 * VL) {
                m0 += load(p + j);
                m1 += load(p + j + VL);
            }
            for (; j < end; j++) m_tail += p[j];
        }
        if (mass) mass[k] += (double)(lanes_sum(m0 + m1) + m_tail);
    }
}

/* The rows [i0, i1) of every one of the `rows` T×T matrices of p (and d), the matrices in memory
 * order: each row's band sums added to row_sums[i][head, or heads for the energy][band]. Every
 * row_sums entry is summed over the matrices in the same order whichever rows a thread takes.
 *
 * Only the causal triangle (j ≤ i) is read, and a row read only up to its diagonal ends a run of
 * cache lines the hardware prefetcher was following, and a cold matrix came in far below the
 * memory's streaming rate. So the causal part of the row `ahead` rows on (about 1 KiB on) is
 * prefetched by hand: a cold call at preset S takes a quarter less time (docs/PERFORMANCE.md,
 * "Round 4"). */
static void attention_rows(const float *p, const float *d, int64_t rows, int64_t T, int64_t heads, const Bands *bands,
                           int mass, int64_t i0, int64_t i1, double *row_sums) {
    const int64_t nb = bands->count, width = (heads + 1) * nb, line = 64 / (int64_t)sizeof(float);
    const int64_t ahead = T >= 256 / (int64_t)sizeof(float) ? 2 : 1024 / ((int64_t)sizeof(float) * T);
    const int64_t span = i1 - i0;
    for (int64_t r = 0; r < rows; r++) {
        const int64_t h = r % heads, base = r * T * T;
        for (int64_t i = i0; i < i1; i++) {
            /* The causal part of the row this loop reads `ahead` rows later (in the next matrix at
             * the end of this one's range). */
            int64_t later = i - i0 + ahead, next_r = r + later / span, next_i = i0 + later % span;
            if (next_r < rows) {
                const int64_t next = next_r * T * T + next_i * T;
                for (int64_t j = 0; j <= next_i; j += line) {
                    __builtin_prefetch(p + next + j);
                    if (d) __builtin_prefetch(d + next + j);
                }
            }
            double *slot = row_sums + i * width;
            row_segments(p + base + i * T, d ? d + base + i * T : NULL, i, bands, mass ? slot + h * nb : NULL,
                         slot + heads * nb);
        }
    }
}

/* The first row of each of `threads` ranges of query rows with about equal causal areas (rows
 * [bounds[t], bounds[t + 1])): each thread then reads one long run of every matrix. */
static void split_rows(int64_t T, int threads, int64_t *bounds) {
    double total = (double)T * (double)(T + 1) / 2, area = 0;
    int64_t i = 0;
    bounds[0] = 0;
    for (int t = 1; t < threads; t++) {
        while (i < T && area + (double)(i + 1) <= total * t / threads) area += (double)(++i);
        bounds[t] = i;
    }
    bounds[threads] = T;
}

/* Adds sums (n doubles) into out, float or double. */
static void add_out(unsigned long long out_addr, int out_is_double, const double *sums, int64_t n) {
    if (out_is_double) {
        double *out = (double *)(uintptr_t)out_addr;
        for (int64_t k = 0; k < n; k++) out[k] += sums[k];
    } else {
        float *out = (float *)(uintptr_t)out_addr;
        for (int64_t k = 0; k < n; k++) out[k] += (float)sums[k];
    }
}

/* attention_sums(p, d, rows, T, heads, lows, highs, mass_out, energy_out, out_is_double[, threads])
 *
 * p (and d, or 0) hold rows·T×T floats, contiguous, [rows][T][T] with rows = batch·heads and
 * head = row % heads. Adds the attention mass Σ p_ij per head and band into mass_out ([heads]
 * [bands], or 0 for none) and the band energy Σ (p_ij·d_ij)² into energy_out ([bands], or 0; needs
 * d), over the causal entries j ≤ i with the distance i − j in each band; the outputs are float or
 * double. One pass reads the causal triangles of p and d once, matrix after matrix; every query
 * row's band sums are kept apart (in double) and added up in row order at the end. The query rows
 * are split over `threads` threads (default 1) in ranges of equal area; the bits do not depend on
 * the split. */
static PyObject *attention_sums(PyObject *Py_UNUSED(self), PyObject *args) {
    unsigned long long p_addr, d_addr, mass_addr, energy_addr;
    long long rows, T, heads;
    PyObject *lows, *highs;
    int out_is_double, threads = 1;
    if (!PyArg_ParseTuple(args, "KKLLLOOKKp|i", &p_addr, &d_addr, &rows, &T, &heads, &lows, &highs, &mass_addr,
                          &energy_addr, &out_is_double, &threads))
        return NULL;
    if (threads < 1) threads = 1;
    if (threads > MAX_THREADS) threads = MAX_THREADS;
    Bands bands;
    if (read_bands(lows, highs, &bands)) return NULL;
    if (rows < 0 || T < 1 || heads < 1 || rows % heads != 0) {
        PyErr_SetString(PyExc_ValueError, "attention_sums: bad shape");
        return NULL;
    }
    if (energy_addr && !d_addr) {
        PyErr_SetString(PyExc_ValueError, "attention_sums: the energy needs d");
        return NULL;
    }
    const float *p = (const float *)(uintptr_t)p_addr;
    const float *d = energy_addr ? (const float *)(uintptr_t)d_addr : NULL;
    const int mass = mass_addr != 0;
    const int64_t nb = bands.count, width = (heads + 1) * nb;
    /* Per query row: the mass of each head, then the energy, per band; then the totals. */
    double *row_sums = PyMem_Calloc((size_t)(T * width + width), sizeof(double));
    if (!row_sums) return PyErr_NoMemory();
    double *sums = row_sums + T * width;
    int64_t bounds[MAX_THREADS + 1];
    if (threads > T) threads = (int)T;
    split_rows(T, threads, bounds);
    Py_BEGIN_ALLOW_THREADS
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
        int first = 0, step = 1;   /* every range is taken, also where OpenMP gives fewer threads */
#ifdef _OPENMP
        first = omp_get_thread_num();
        step = omp_get_num_threads();
#endif
        for (int t = first; t < threads; t += step)
            attention_rows(p, d, rows, T, heads, &bands, mass, bounds[t], bounds[t + 1], row_sums);
    }
    for (int64_t i = 0; i < T; i++)
        for (int64_t q = 0; q < width; q++) sums[q] += row_sums[i * width + q];
    Py_END_ALLOW_THREADS
    if (mass) add_out(mass_addr, out_is_double, sums, heads * nb);
    if (d) add_out(energy_addr, out_is_double, sums + heads * nb, nb);
    PyMem_Free(row_sums);
    Py_RETURN_NONE;
}

/* ---------------------------------------------------------------------------------------------
 * The arena kernels: one walk over a list of tensors that lie one after the other in the refiner's
 * arena rows, split into blocks of at most BLOCK elements of one tensor. The blocks run in
 * parallel; each writes its float partial sums to its own slot, and the slots are added into their
 * depth group's double totals in block order, so the bits do not depend on the thread count. */

#define MAX_GROUPS 64

/* The tensors of one call: addresses (0 for a missing gradient), element counts, depth groups. */
typedef struct {
    Py_ssize_t n;
    int64_t *addr, *addr2, *counts, *groups;   /* addr2 and groups may be NULL */
} Tensors;

/* One kernel's work on elements [lo, lo + m) (m ≤ BLOCK) of tensor t, which starts at arena offset
 * `offset`: its partial sums go to out[0 … width). */
typedef void (*Block)(const Tensors *ts, const void *args, Py_ssize_t t, int64_t offset, int64_t lo, int64_t m,
                      float *out);

/* Runs `block` over every block of every tensor on `threads` threads and adds the partial sums,
 * `width` per depth group, into `out` in block order. Returns -1 (no memory) or 0. */
static int walk(const Tensors *ts, Block block, const void *args, int width, int threads, double *out) {
    if (threads < 1) threads = 1;
    int64_t units = 0;
    for (Py_ssize_t t = 0; t < ts->n; t++) units += (ts->counts[t] + BLOCK - 1) / BLOCK;
    /* Per block: tensor, its arena offset, the first element; then the partial sums. */
    int64_t *plan = malloc(sizeof(int64_t) * 3 * (size_t)(units + 1));
    float *partial = malloc(sizeof(float) * (size_t)width * (size_t)(units + 1));
    if (!plan || !partial) { free(plan); free(partial); return -1; }
    int64_t u = 0, offset = 0;
    for (Py_ssize_t t = 0; t < ts->n; t++) {
        for (int64_t lo = 0; lo < ts->counts[t]; lo += BLOCK, u++) {
            plan[3 * u] = t;
            plan[3 * u + 1] = offset;
            plan[3 * u + 2] = lo;
        }
        offset += ts->counts[t];
    }
#pragma omp parallel for schedule(static) num_threads(threads) if (units > 1)
    for (int64_t v = 0; v < units; v++) {
        Py_ssize_t t = (Py_ssize_t)plan[3 * v];
        int64_t lo = plan[3 * v + 2], m = ts->counts[t] - lo < BLOCK ? ts->counts[t] - lo : BLOCK;
        block(ts, args, t, plan[3 * v + 1], lo, m, partial + v * width);
    }
    for (int64_t v = 0; v < units; v++) {
        Py_ssize_t t = (Py_ssize_t)plan[3 * v];
        double *slots = out + (ts->groups ? ts->groups[t] : 0) * width;
        for (int q = 0; q < width; q++) slots[q] += partial[v * width + q];
    }
    free(plan);
    free(partial);
    return 0;
}

/* Fills ts from the tensor lists of a call (each sequence of n ints; seq2 and groups_seq may be
 * NULL); -1 with an error set. */
static int fill_tensors(Tensors *ts, PyObject *seq, PyObject *seq2, PyObject *counts_seq, PyObject *groups_seq,
                        long long group_count) {
    Py_ssize_t n = seq_len(seq, "addresses");
    if (n < 0) return -1;
    if (group_count < 1 || group_count > MAX_GROUPS) {
        PyErr_Format(PyExc_ValueError, "1 to %d depth groups", MAX_GROUPS);
        return -1;
    }
    ts->n = n;
    ts->addr = PyMem_Malloc(sizeof(int64_t) * 4 * (size_t)(n + 1));
    if (!ts->addr) { PyErr_NoMemory(); return -1; }
    ts->counts = ts->addr + n + 1;
    int64_t *more = ts->counts + n + 1;
    if (read_ints(seq, n, ts->addr, "addresses") || read_ints(counts_seq, n, ts->counts, "counts")) return -1;
    if (seq2) { ts->addr2 = more; more += n + 1; if (read_ints(seq2, n, ts->addr2, "params")) return -1; }
    if (groups_seq) {
        ts->groups = more;
        if (read_ints(groups_seq, n, ts->groups, "groups")) return -1;
        for (Py_ssize_t t = 0; t < n; t++)
            if (ts->groups[t] < 0 || ts->groups[t] >= group_count) {
                PyErr_Format(PyExc_ValueError, "tensor %zd: depth group %lld is not in 0…%lld", t,
                             (long long)ts->groups[t], group_count - 1);
                return -1;
            }
    }
    for (Py_ssize_t t = 0; t < n; t++)
        if (ts->counts[t] < 0) { PyErr_Format(PyExc_ValueError, "tensor %zd: negative count", t); return -1; }
    return 0;
}

static void free_tensors(Tensors *ts) { PyMem_Free(ts->addr); }

/* Reads the tensor lists of a call into ts; on an error (set) frees what it took and returns -1. */
static int read_tensors(Tensors *ts, PyObject *seq, PyObject *seq2, PyObject *counts_seq, PyObject *groups_seq,
                        long long group_count) {
    memset(ts, 0, sizeof *ts);
    if (fill_tensors(ts, seq, seq2, counts_seq, groups_seq, group_count) == 0) return 0;
    free_tensors(ts);
    return -1;
}

/* The sums of one call as a tuple of floats. */
static PyObject *tuple_of(const double *values, Py_ssize_t n) {
    PyObject *out = PyTuple_New(n);
    if (!out) return NULL;
    for (Py_ssize_t k = 0; k < n; k++) {
        PyObject *value = PyFloat_FromDouble(values[k]);
        if (!value) { Py_DECREF(out); return NULL; }
        PyTuple_SET_ITEM(out, k, value);
    }
    return out;
}

/* A kernel's walk over ts (which it frees) with the GIL released: the sums, `width` for each of
 * `groups` depth groups, as a tuple of floats. */
static PyObject *walk_to_tuple(Tensors *ts, Block block, const void *args, int width, int threads, long long groups) {
    double sums[MAX_GROUPS * 5] = {0};
    int status;
    Py_BEGIN_ALLOW_THREADS
    status = walk(ts, block, args, width, threads, sums);
    Py_END_ALLOW_THREADS
    free_tensors(ts);
    if (status) return PyErr_NoMemory();
    return tuple_of(sums, (Py_ssize_t)(width * groups));
}

/* torch.lerp(start, end, w) on four lanes, with torch's two forms (w below or from 0.5). */
static inline vf lerp4(vf start, vf end, float w) {
    const vf wv = (vf){0} + w;
    return w < 0.5f ? start + wv * (end - start) : end - (end - start) * (1.0f - wv);
}

/* The same on one float (the tail of a block): lane 0 of lerp4. */
static inline float lerp(float start, float end, float w) {
    return lerp4((vf){0} + start, (vf){0} + end, w)[0];
}

typedef struct { float *fast, *slow, *g_row; float w_fast, w_slow; } TimeArgs;

static void time_block(const Tensors *ts, const void *args, Py_ssize_t t, int64_t offset, int64_t lo, int64_t m,
                       float *out) {
    const TimeArgs *a = args;
    const float *g = (const float *)(uintptr_t)ts->addr[t];
    float *ft = a->fast + offset, *st = a->slow + offset;
    if (a->g_row) __builtin_memcpy(a->g_row + offset + lo, g + lo, sizeof(float) * (size_t)m);
    const float w_fast = a->w_fast, w_slow = a->w_slow;
    {
        vf a_gg = {0}, a_fg = {0}, a_ff = {0}, a_mm = {0}, a_ss = {0};
        int64_t i = 0;
        for (; i + VL <= m; i += VL) {
            int64_t j = lo + i;
            vf gj = load(g + j), fo = load(ft + j), so = load(st + j);
            a_gg += gj * gj;
            a_fg += fo * gj;
            a_ff += fo * fo;
            vf fn = lerp4(fo, gj, w_fast), sn = lerp4(so, gj, w_slow);
            store(ft + j, fn);
            store(st + j, sn);
            vf mid = fn - sn;
            a_mm += mid * mid;
            a_ss += sn * sn;
        }
        float b[5] = {0};
        for (; i < m; i++) {
            int64_t j = lo + i;
            float gj = g[j], fo = ft[j];
            b[0] += gj * gj;
            b[1] += fo * gj;
            b[2] += fo * fo;
            float fn = lerp(fo, gj, w_fast), sn = lerp(st[j], gj, w_slow);
            ft[j] = fn;
            st[j] = sn;
            float mid = fn - sn;
            b[3] += mid * mid;
            b[4] += sn * sn;
        }
        b[0] += lanes_sum(a_gg); b[1] += lanes_sum(a_fg); b[2] += lanes_sum(a_ff);
        b[3] += lanes_sum(a_mm); b[4] += lanes_sum(a_ss);
        for (int q = 0; q < 5; q++) out[q] = b[q];
    }
}

/* time_filter(grads, counts, fast, slow, g_row, w_fast, w_slow[, threads])
 *   -> (⟨g,g⟩, ⟨m_f,g⟩, ⟨m_f,m_f⟩, ‖m_f − m_s‖², ‖m_s‖²)
 *
 * One pass over every tensor's gradient (grads: addresses, counts: sizes, laid out one after the
 * other in the arena rows fast and slow): the products with m_f before the update, then
 * m_f ← lerp(m_f, g, w_fast), m_s ← lerp(m_s, g, w_slow), and the norms of mid = m_f − m_s and of
 * m_s after it. g_row (or 0) receives a copy of g. */
static PyObject *time_filter(PyObject *Py_UNUSED(self), PyObject *args) {
    PyObject *grads_seq, *counts_seq;
    unsigned long long f_addr, s_addr, g_addr;
    float w_fast, w_slow;
    int threads = 1;
    if (!PyArg_ParseTuple(args, "OOKKKff|i", &grads_seq, &counts_seq, &f_addr, &s_addr, &g_addr, &w_fast, &w_slow,
                          &threads))
        return NULL;
    Tensors ts;
    if (read_tensors(&ts, grads_seq, NULL, counts_seq, NULL, 1)) return NULL;
    TimeArgs a = {(float *)(uintptr_t)f_addr, (float *)(uintptr_t)s_addr, (float *)(uintptr_t)g_addr, w_fast, w_slow};
    return walk_to_tuple(&ts, time_block, &a, 5, threads, 1);
}

typedef struct { float *row; } SnapshotArgs;

static void snapshot_block(const Tensors *ts, const void *args, Py_ssize_t t, int64_t offset, int64_t lo, int64_t m,
                           float *out) {
    const SnapshotArgs *a = args;
    const float *theta = (const float *)(uintptr_t)ts->addr[t];
    float *dst = a->row + offset;
    {
        vf acc = {0};
        int64_t i = 0;
        for (; i + VL <= m; i += VL) {
            vf x = load(theta + lo + i);
            store(dst + lo + i, x);
            acc += x * x;
        }
        float block = 0;
        for (; i < m; i++) { float x = theta[lo + i]; dst[lo + i] = x; block += x * x; }
        out[0] = block + lanes_sum(acc);
    }
}

/* depth_snapshot(params, counts, groups, group_count, row[, threads]) -> (‖θ_k‖² for every group k)
 *
 * Copies every parameter (addresses params, sizes counts, laid out one after the other) into row
 * and sums its squares into its group's total. */
static PyObject *depth_snapshot(PyObject *Py_UNUSED(self), PyObject *args) {
    PyObject *params_seq, *counts_seq, *groups_seq;
    long long group_count;
    unsigned long long row_addr;
    int threads = 1;
    if (!PyArg_ParseTuple(args, "OOOLK|i", &params_seq, &counts_seq, &groups_seq, &group_count, &row_addr, &threads))
        return NULL;
    Tensors ts;
    if (read_tensors(&ts, params_seq, NULL, counts_seq, groups_seq, group_count)) return NULL;
    SnapshotArgs a = {(float *)(uintptr_t)row_addr};
    return walk_to_tuple(&ts, snapshot_block, &a, 1, threads, group_count);
}

typedef struct { float *g_cur, *u_cur; const float *g_prev, *u_prev; } MeasureArgs;

static void measure_block(const Tensors *ts, const void *args, Py_ssize_t t, int64_t offset, int64_t lo, int64_t m,
                          float *out) {
    const MeasureArgs *a = args;
    const float *g = ts->addr[t] ? (const float *)(uintptr_t)ts->addr[t] : NULL;
    const float *theta = (const float *)(uintptr_t)ts->addr2[t];
    float *gct = a->g_cur + offset, *uct = a->u_cur + offset;
    const float *gpt = a->g_prev + offset, *upt = a->u_prev + offset;
    {
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
        for (int q = 0; q < 5; q++) out[q] = b[q];
    }
}

/* depth_measure(grads, params, counts, groups, group_count, g_cur, g_prev, u_cur, u_prev[, threads])
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
    int threads = 1;
    if (!PyArg_ParseTuple(args, "OOOOLKKKK|i", &grads_seq, &params_seq, &counts_seq, &groups_seq, &group_count,
                          &gc_addr, &gp_addr, &uc_addr, &up_addr, &threads))
        return NULL;
    Tensors ts;
    if (read_tensors(&ts, grads_seq, params_seq, counts_seq, groups_seq, group_count)) return NULL;
    MeasureArgs a = {(float *)(uintptr_t)gc_addr, (float *)(uintptr_t)uc_addr, (const float *)(uintptr_t)gp_addr,
                     (const float *)(uintptr_t)up_addr};
    return walk_to_tuple(&ts, measure_block, &a, 5, threads, group_count);
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

/* The module, with its limits as constants (fused.py reads them to decide what the kernels take). */
PyMODINIT_FUNC PyInit__fused(void) {
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    if (PyModule_AddIntConstant(m, "MAX_BANDS", MAX_BANDS) || PyModule_AddIntConstant(m, "MAX_GROUPS", MAX_GROUPS)) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
