// The quantiser's C loops (Tools/CQuantizeKernels) against requantising every candidate bias of
// every element: random layers with rising and non-rising candidates, accumulators near the int32
// limits (b + S wraps), candidates spanning more than a step, every shift 1...62, and tiny
// multipliers where D_k equals 2^s - rem exactly; the calibration histogram and the float depthwise
// conv against plain loops.   check_quantize_kernels [CASES]
#include "quantize_kernels.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int32_t reference(int32_t acc, int32_t m, int32_t s, int32_t zp, int32_t lo, int32_t hi) {
    int32_t v = (int32_t)((((int64_t)acc * m) + ((int64_t)1 << (s - 1))) >> s);
    v = (int32_t)((uint32_t)v + (uint32_t)zp);
    return v < lo ? lo : v > hi ? hi : v;
}

static uint64_t state = 0x5eed;
static long uniform(long n) {  // 0 ... n-1
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (long)((state >> 17) % (uint64_t)n);
}

int main(int argc, char **argv) {
    const int cases = argc > 1 ? atoi(argv[1]) : 3000;
    long wrapping = 0, equal = 0;
    for (int it = 0; it < cases; it++) {
        const int c = 1 + (int)uniform(40), n = it % 5 == 0 ? 1 : 17, pixels = 1 + (int)uniform(50), mode = (int)uniform(5);
        int32_t *sums = malloc(sizeof(int32_t) * (size_t)pixels * c), *m = malloc(sizeof(int32_t) * c), *sh = malloc(sizeof(int32_t) * c);
        int32_t *b = malloc(sizeof(int32_t) * (size_t)c * n);
        int64_t *offsets = calloc((size_t)c * n, sizeof(int64_t)), *totals = calloc((size_t)c * n, sizeof(int64_t)), *want = calloc((size_t)c * n, sizeof(int64_t));
        uint8_t *rising = malloc((size_t)c);
        int8_t *out = malloc((size_t)pixels * c);
        for (int ch = 0; ch < c; ch++) {
            // mode 0: typical; 1: near INT32_MAX; 2: near INT32_MIN; 3: any shift; 4: tiny multipliers and shifts
            m[ch] = mode == 4 ? 1 << uniform(4) : (1 << 30) + (int32_t)uniform(1 << 30);
            sh[ch] = mode == 3 ? 1 + (int32_t)uniform(62) : mode == 4 ? 1 + (int32_t)uniform(6) : 20 + (int32_t)uniform(30);
            const double step = (double)((int64_t)1 << sh[ch]) / m[ch] * (uniform(10) < 8 ? 1.0 : 1.0 + uniform(100) / 50.0);
            const int32_t base = mode == 1 ? (int32_t)(2147483647 - uniform((long)(3 * step) + 5))
                               : mode == 2 ? (int32_t)(-2147483647 + uniform(1000)) : (int32_t)uniform(20000) - 10000;
            rising[ch] = uniform(10) != 0;
            for (int j = 0; j < n; j++) {
                double v = base + step * j / (n > 1 ? n - 1 : 1);
                if (v > 2147483647.0) v = 2147483647.0;
                b[ch * n + j] = rising[ch] ? (int32_t)v : (int32_t)((uint32_t)base + (uint32_t)uniform(1000) - 500u);  // wraps
            }
            for (int j = 1; j < n; j++) if (b[ch * n + j] < b[ch * n + j - 1]) rising[ch] = 0;
            if (rising[ch]) for (int j = 0; j < n; j++) offsets[ch * n + j] = ((int64_t)b[ch * n + j] - b[ch * n]) * m[ch];
        }
        for (long i = 0; i < (long)pixels * c; i++)
            sums[i] = mode == 1 ? (int32_t)uniform(2000000) - 1000 : mode == 2 ? -(int32_t)uniform(2000000)
                    : mode == 4 ? (int32_t)uniform(200) - 100 : (int32_t)uniform(40000) - 20000;
        const int32_t zp = (int32_t)uniform(256) - 128, lo = -128 + (int32_t)uniform(50), hi = 127 - (int32_t)uniform(50);
        const sieve_q_layer layer = {sums, pixels, c, m, sh, zp, lo, hi};
        if (sieve_q_trial_totals(&layer, n, b, offsets, rising, totals) != 0) { fprintf(stderr, "no memory\n"); return 1; }
        sieve_q_outputs(&layer, b, out);  // with the first c entries of b as the biases
        for (long p = 0; p < pixels; p++) {
            for (int ch = 0; ch < c; ch++) {
                const int32_t s = sums[p * c + ch];
                if ((int64_t)b[ch * n] + s < INT32_MIN || (int64_t)b[ch * n + n - 1] + s > INT32_MAX) wrapping++;
                for (int j = 0; j < n; j++) {
                    want[ch * n + j] += reference((int32_t)((uint32_t)b[ch * n + j] + (uint32_t)s), m[ch], sh[ch], zp, lo, hi);
                    const int64_t a = ((int64_t)b[ch * n] + s) * m[ch] + ((int64_t)1 << (sh[ch] - 1));
                    if (rising[ch] && j > 0 && offsets[ch * n + j] == ((int64_t)1 << sh[ch]) - (a - (a >> sh[ch]) * ((int64_t)1 << sh[ch]))) equal++;
                }
                const int32_t expected = reference((int32_t)((uint32_t)b[ch] + (uint32_t)s), m[ch], sh[ch], zp, lo, hi);
                if (out[p * c + ch] != (int8_t)expected) {
                    fprintf(stderr, "MISMATCH: sieve_q_outputs, case %d, pixel %ld, channel %d: %d, expected %d\n", it, p, ch, out[p * c + ch], expected);
                    return 1;
                }
            }
        }
        for (int i = 0; i < n * c; i++) {
            if (totals[i] != want[i]) {
                fprintf(stderr, "MISMATCH: sieve_q_trial_totals, case %d (mode %d), channel %d, candidate %d: %lld, expected %lld\n", it, mode,
                        i / n, i % n, (long long)totals[i], (long long)want[i]);
                return 1;
            }
        }
        free(sums); free(m); free(sh); free(b); free(offsets); free(totals); free(want); free(rising); free(out);
    }
    // Histograms: zeros (and -0) to their own slot, NaN and infinities skipped, values past either
    // end clamped to the end bins, the four copies summed.
    for (int it = 0; it < cases; it++) {
        const int64_t count = 1 + uniform(3000);
        const int32_t bins = 1 + (int32_t)uniform(300), negative = (int32_t)uniform(bins + 1);
        const double inverse = (1 + uniform(1000)) / 100.0;
        float *values = malloc(sizeof(float) * (size_t)count);
        uint32_t *counts = calloc(4 * ((size_t)bins + 1), sizeof(uint32_t)), *want = calloc((size_t)bins + 1, sizeof(uint32_t));
        for (int64_t i = 0; i < count; i++) {
            const long kind = uniform(20);
            values[i] = kind == 0 ? 0.0f : kind == 1 ? -0.0f : kind == 2 ? NAN : kind == 3 ? -INFINITY
                      : (float)((uniform(2000001) - 1000000) / 1000.0 * (kind == 4 ? 1e6 : 1.0) / inverse);
            const float v = values[i];
            if (!isfinite(v)) continue;
            if (v == 0) { want[bins]++; continue; }
            double t = floor((double)v * inverse) + negative;
            want[t < 0 ? 0 : t > bins - 1 ? bins - 1 : (int32_t)t]++;
        }
        sieve_q_histogram_add(values, count, inverse, negative, bins, counts);
        for (int32_t b = 0; b <= bins; b++) {
            const uint32_t got = counts[b] + counts[bins + 1 + b] + counts[2 * (bins + 1) + b] + counts[3 * (bins + 1) + b];
            if (got != want[b]) {
                fprintf(stderr, "MISMATCH: sieve_q_histogram_add, case %d, slot %d of %d: %u, expected %u\n", it, b, bins, got, want[b]);
                return 1;
            }
        }
        free(values); free(counts); free(want);
    }
    // The float depthwise conv against the plain loop it replaced (bit for bit: same additions in the
    // same order; both built with -ffp-contract=off), every kernel size 1-5, strides 1-3, padding 0-3.
    for (int it = 0; it < cases; it++) {
        sieve_q_depthwise_shape d;
        d.channels = 1 + (int32_t)uniform(4);
        d.in_h = 1 + (int32_t)uniform(12);
        d.in_w = 1 + (int32_t)uniform(40);
        d.kernel_h = it % 3 ? 3 : 1 + (int32_t)uniform(5);
        d.kernel_w = it % 3 ? 3 : 1 + (int32_t)uniform(5);
        d.stride_h = 1 + (int32_t)uniform(3);
        d.stride_w = 1 + (int32_t)uniform(3);
        d.pad_top = (int32_t)uniform(4);
        d.pad_left = (int32_t)uniform(4);
        const int32_t pad_bottom = (int32_t)uniform(4), pad_right = (int32_t)uniform(4);
        d.out_h = (d.in_h + d.pad_top + pad_bottom - d.kernel_h) / d.stride_h + 1;
        d.out_w = (d.in_w + d.pad_left + pad_right - d.kernel_w) / d.stride_w + 1;
        if (d.out_h <= 0 || d.out_w <= 0) continue;
        const size_t in = (size_t)d.channels * d.in_h * d.in_w, out = (size_t)d.channels * d.out_h * d.out_w;
        float *x = malloc(sizeof(float) * in), *w = malloc(sizeof(float) * d.channels * d.kernel_h * d.kernel_w), *b = malloc(sizeof(float) * d.channels);
        float *y = malloc(sizeof(float) * out), *expected = malloc(sizeof(float) * out);
        for (size_t i = 0; i < in; i++) x[i] = (float)(uniform(2000001) - 1000000) / 3e5f;
        for (int32_t i = 0; i < d.channels * d.kernel_h * d.kernel_w; i++) w[i] = (float)(uniform(2000001) - 1000000) / 7e5f;
        for (int32_t c = 0; c < d.channels; c++) b[c] = (float)(uniform(2001) - 1000) / 300.0f;
        for (int32_t c = 0; c < d.channels; c++) {
            for (int32_t oy = 0; oy < d.out_h; oy++) {
                float *row = expected + ((size_t)c * d.out_h + oy) * d.out_w;
                for (int32_t ox = 0; ox < d.out_w; ox++) row[ox] = b[c];
                for (int32_t ky = 0; ky < d.kernel_h; ky++) {
                    const int32_t iy = oy * d.stride_h - d.pad_top + ky;
                    if (iy < 0 || iy >= d.in_h) continue;
                    for (int32_t kx = 0; kx < d.kernel_w; kx++) {
                        for (int32_t ox = 0; ox < d.out_w; ox++) {
                            const int32_t ix = ox * d.stride_w - d.pad_left + kx;
                            if (ix >= 0 && ix < d.in_w)
                                row[ox] += w[(c * d.kernel_h + ky) * d.kernel_w + kx] * x[((size_t)c * d.in_h + iy) * d.in_w + ix];
                        }
                    }
                }
            }
        }
        sieve_q_depthwise_f32(&d, x, w, b, y);
        if (memcmp(y, expected, sizeof(float) * out) != 0) {
            fprintf(stderr, "MISMATCH: sieve_q_depthwise_f32, case %d: %dx%d kernel, stride %dx%d, input %dx%d, padding %d,%d\n", it, d.kernel_h,
                    d.kernel_w, d.stride_h, d.stride_w, d.in_h, d.in_w, d.pad_top, d.pad_left);
            return 1;
        }
        free(x); free(w); free(b); free(y); free(expected);
    }
    printf("OK: %d cases (%ld elements where b + S wraps, %ld where a candidate lands exactly on the step)\n", cases, wrapping, equal);
    return 0;
}
