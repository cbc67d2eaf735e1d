/* attention_blocks.c: time of the forward GEMMs of one (batch, head) pair of Gradflow's attention
 * at preset M (T 256, C 384, head size 64, strided views of a fused QKV buffer), for causal row
 * blocks of 16…256 (Sources/Kernels/Attention.swift computes only the blocks at or below the
 * diagonal: smaller blocks skip more of the upper triangle but make smaller, less efficient GEMMs).
 *
 *   gcc -O2 bench/attention_blocks.c $(pkg-config --cflags --libs openblas) -o /tmp/attention_blocks
 *   OPENBLAS_NUM_THREADS=1 /tmp/attention_blocks
 *
 * Prints the best of 200 repetitions per block size.
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

int main(void) {
    const int T = 256, C = 384, hs = 64, C3 = 3 * C;
    float *qkv = malloc(sizeof(float) * T * C3), *p = malloc(sizeof(float) * T * T), *o = malloc(sizeof(float) * T * C);
    for (long i = 0; i < (long)T * C3; i++) qkv[i] = (float)((i * 7919) % 1000) / 1000.0f - 0.5f;
    const int blocks[] = {16, 32, 64, 128, 256};
    for (int bi = 0; bi < 5; bi++) {
        int block = blocks[bi];
        double best = 1e9, flops = 0;
        for (int r0 = 0; r0 < T; r0 += block) {
            int r1 = r0 + block < T ? r0 + block : T;
            flops += 2.0 * 2 * (r1 - r0) * r1 * hs;
        }
        for (int rep = 0; rep < 200; rep++) {
            double t0 = now();
            for (int r0 = 0; r0 < T; r0 += block) {
                int r1 = r0 + block < T ? r0 + block : T;
                /* S = scale · Q[r0..<r1] · K[0..<r1]ᵀ, then O[r0..<r1] = P · V[0..<r1] (softmax left out) */
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, r1 - r0, r1, hs, 0.125f, qkv + r0 * C3, C3,
                            qkv + C, C3, 0, p + r0 * T, T);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, r1 - r0, hs, r1, 1, p + r0 * T, T,
                            qkv + 2 * C, C3, 0, o + r0 * C, C);
            }
            double t = now() - t0;
            if (t < best) best = t;
        }
        printf("block %3d: %6.1f us per (batch, head) forward GEMMs, %5.2f MFLOP, %5.1f GFLOP/s\n",
               block, best * 1e6, flops / 1e6, flops / best / 1e9);
    }
    free(qkv); free(p); free(o);
    return 0;
}
