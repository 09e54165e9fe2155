/* An FMA-throughput loop independent of fnd (C, OpenMP, GCC's vector extensions): the check behind
   docs/measured.md's "fma_check.c" rows, fnd peak against an independent loop. Each thread runs CHAINS
   independent vector chains c = c * y + x.

   gcc -O3 -march=native -fopenmp scripts/fma_check.c -o /tmp/fma_check && /tmp/fma_check 2   # threads
   Prints float32 and float64 GFLOP/s, the best of 5 runs. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#ifndef WIDTH
#define WIDTH 32 /* bytes per vector: 32 (AVX2), 64 (AVX-512) */
#endif
#define CHAINS 10
#define ITERS 20000000L

#define KERNEL(T, NAME)                                                                       \
    typedef T NAME##_v __attribute__((vector_size(WIDTH)));                                     \
    static double NAME(int threads) {                                                         \
        double best = 1e30; T sink = 0;                                                        \
        for (int rep = 0; rep < 5; rep++) {                                                    \
            double t0 = omp_get_wtime();                                                       \
            _Pragma("omp parallel num_threads(threads) reduction(+:sink)")                     \
            {                                                                                  \
                NAME##_v c[CHAINS], y, x;                                                      \
                for (int l = 0; l < (int)(WIDTH / sizeof(T)); l++) { y[l] = (T)0.9990234375; x[l] = (T)0.0009765625; } \
                for (int i = 0; i < CHAINS; i++) c[i] = x * (T)i;                               \
                for (long it = 0; it < ITERS; it++)                                            \
                    for (int i = 0; i < CHAINS; i++) c[i] = c[i] * y + x;                        \
                for (int i = 0; i < CHAINS; i++) sink += c[i][0];                               \
            }                                                                                  \
            double t = omp_get_wtime() - t0;                                                   \
            if (t < best) best = t;                                                            \
        }                                                                                      \
        if (sink < 0) printf("%g\n", (double)sink);                                            \
        return 2.0 * CHAINS * (WIDTH / sizeof(T)) * ITERS * threads / best / 1e9;              \
    }
KERNEL(float, fma32)
KERNEL(double, fma64)

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 1;
    printf("threads %d: float32 %.1f GFLOP/s, float64 %.1f GFLOP/s\n", threads, fma32(threads), fma64(threads));
    return 0;
}
