/* blas_split.c: Gradflow's own two-way split of a GEMM (two threads, each a single-threaded
 * cblas_sgemm on half of the rows of C, as Kernels/Matmul.swift does) against OpenBLAS's own two
 * threads on the whole product, for the GEMM shapes of one preset-M training step (BT = 2048 rows).
 *
 *   gcc -O2 bench/blas_split.c $(pkg-config --cflags --libs openblas) -lpthread -o /tmp/blas_split
 *   /tmp/blas_split
 *
 * Prints the best GFLOP/s of 30 alternating repetitions of each.
 */
#include <cblas.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

void openblas_set_num_threads(int);

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

typedef struct { int m, n, k; CBLAS_TRANSPOSE ta, tb; const float *a, *b; float *c; int lda, ldb, ldc; } job;

static void *run(void *p) {
    job *j = p;
    cblas_sgemm(CblasRowMajor, j->ta, j->tb, j->m, j->n, j->k, 1, j->a, j->lda, j->b, j->ldb, 0, j->c, j->ldc);
    return NULL;
}

/* C[M×N] = op(A) · op(B), K the inner dimension. */
static void shape(const char *label, int M, int N, int K, CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb) {
    float *a = malloc(4L * M * K), *b = malloc(4L * N * K), *c = malloc(4L * M * N);
    for (long i = 0; i < (long)M * K; i++) a[i] = (i % 997) * 1e-3f;
    for (long i = 0; i < (long)N * K; i++) b[i] = (i % 991) * 1e-3f;
    int lda = ta == CblasNoTrans ? K : M, ldb = tb == CblasNoTrans ? N : K;
    /* Row halves of C: rows of A, or columns of A when A is transposed. */
    const float *a2 = ta == CblasNoTrans ? a + (long)(M / 2) * K : a + M / 2;
    double own = 1e9, ob = 1e9, flops = 2.0 * M * N * K;
    for (int rep = 0; rep < 30; rep++) {
        openblas_set_num_threads(1);
        job j1 = {M / 2, N, K, ta, tb, a, b, c, lda, ldb, N};
        job j2 = {M - M / 2, N, K, ta, tb, a2, b, c + (long)(M / 2) * N, lda, ldb, N};
        double t0 = now();
        pthread_t th;
        pthread_create(&th, NULL, run, &j2);
        run(&j1);
        pthread_join(th, NULL);
        double t = now() - t0;
        if (t < own) own = t;
        openblas_set_num_threads(2);
        t0 = now();
        cblas_sgemm(CblasRowMajor, ta, tb, M, N, K, 1, a, lda, b, ldb, 0, c, N);
        t = now() - t0;
        if (t < ob) ob = t;
    }
    printf("%-14s %5d %5d %5d  own split %6.1f  OpenBLAS 2 threads %6.1f GFLOP/s\n", label, M, N, K,
           flops / own / 1e9, flops / ob / 1e9);
    free(a); free(b); free(c);
}

int main(void) {
    shape("qkv fwd", 2048, 1152, 384, CblasNoTrans, CblasTrans);
    shape("attproj fwd", 2048, 384, 384, CblasNoTrans, CblasTrans);
    shape("fc fwd", 2048, 1536, 384, CblasNoTrans, CblasTrans);
    shape("fcproj fwd", 2048, 384, 1536, CblasNoTrans, CblasTrans);
    shape("fc dinp", 2048, 384, 1536, CblasNoTrans, CblasNoTrans);
    shape("fcproj dinp", 2048, 1536, 384, CblasNoTrans, CblasNoTrans);
    shape("fc dW", 1536, 384, 2048, CblasTrans, CblasNoTrans);
    shape("fcproj dW", 384, 1536, 2048, CblasTrans, CblasNoTrans);
    shape("qkv dW", 1152, 384, 2048, CblasTrans, CblasNoTrans);
    return 0;
}
