/* sgemm_peak.c: GFLOP/s of Debian's OpenBLAS cblas_sgemm (the library Gradflow links) for square
 * and training-shaped products, to put Gradflow's and PyTorch's step times against a BLAS ceiling.
 *
 *   gcc -O2 bench/sgemm_peak.c $(pkg-config --cflags --libs openblas) -o /tmp/sgemm_peak
 *   OPENBLAS_NUM_THREADS=1 /tmp/sgemm_peak     (then =2)
 *
 * Prints one line per shape: M N K, best and median GFLOP/s over repetitions (2·M·N·K flops each).
 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Times C[M×N] = A[M×K] · B[K×N] (row-major, transA/transB as given) `reps` times after a warm-up,
 * long enough for at least ~0.3 s in total; prints best and median GFLOP/s. */
static void measure(const char *label, int m, int n, int k, CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb) {
    float *a = malloc(sizeof(float) * (size_t)m * k);
    float *b = malloc(sizeof(float) * (size_t)k * n);
    float *c = malloc(sizeof(float) * (size_t)m * n);
    if (!a || !b || !c) { fprintf(stderr, "sgemm_peak: out of memory for %d×%d×%d\n", m, n, k); exit(1); }
    for (size_t i = 0; i < (size_t)m * k; i++) a[i] = (float)((i * 7919) % 1000) / 1000.0f - 0.5f;
    for (size_t i = 0; i < (size_t)k * n; i++) b[i] = (float)((i * 104729) % 1000) / 1000.0f - 0.5f;
    int lda = ta == CblasNoTrans ? k : m, ldb = tb == CblasNoTrans ? n : k;
    double flops = 2.0 * m * n * k;
    for (int w = 0; w < 3; w++)
        cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, n);
    int reps = (int)(0.3 / (flops / 50e9)) + 5;
    if (reps > 2000) reps = 2000;
    double *t = malloc(sizeof(double) * reps);
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, n);
        t[r] = now() - t0;
    }
    qsort(t, reps, sizeof(double), cmp_double);
    printf("%-26s %5d %5d %5d  best %7.1f  median %7.1f GFLOP/s  (%d reps)\n",
           label, m, n, k, flops / t[0] / 1e9, flops / t[reps / 2] / 1e9, reps);
    free(a); free(b); free(c); free(t);
}

int main(void) {
    printf("OpenBLAS %s, %d thread(s), core %s\n", openblas_get_config(), openblas_get_num_threads(),
           openblas_get_corename());
    int sizes[] = {256, 384, 512, 768, 1024};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++)
        measure("square", sizes[i], sizes[i], sizes[i], CblasNoTrans, CblasNoTrans);
    /* Shapes of one training step, BT rows = batch·context. */
    measure("S fc fwd (BT×C · C×4C)", 1024, 512, 128, CblasNoTrans, CblasTrans);
    measure("S fc dW (4C×BT · BT×C)", 512, 128, 1024, CblasTrans, CblasNoTrans);
    measure("M fc fwd (BT×C · C×4C)", 2048, 1536, 384, CblasNoTrans, CblasTrans);
    measure("M fc dW (4C×BT · BT×C)", 1536, 384, 2048, CblasTrans, CblasNoTrans);
    measure("M logits (BT×C · C×V)", 2048, 256, 384, CblasNoTrans, CblasTrans);
    return 0;
}
