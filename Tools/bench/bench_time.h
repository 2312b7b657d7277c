// Timing helpers shared by the kernel benchmark programs of Tools/bench (kernel-ops.c, fuse-ops.c).
#ifndef BENCH_TIME_H
#define BENCH_TIME_H

#include <stdlib.h>
#include <time.h>

static double now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec * 1e-3;
}

static int by_value(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

// Sorts values in place.
static double median(double *values, int n) {
    qsort(values, (size_t)n, sizeof(double), by_value);
    return values[n / 2];
}

#endif
