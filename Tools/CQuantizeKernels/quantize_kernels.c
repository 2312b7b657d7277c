#include "quantize_kernels.h"
#include "sieve_kernels.h"  // the runtime's requantisation, so the quantiser predicts the kernels' bytes

#include <math.h>
#include <stdlib.h>

// Built for the host's x86 vector unit when it has AVX2, else plain (an ifunc picks at load, so
// ELF only).
#if defined(__x86_64__) && defined(__clang__) && defined(__ELF__)
#define HOT_LOOP __attribute__((target_clones("avx2", "default")))
#else
#define HOT_LOOP
#endif

// Clamps as selects: a compare and branch mispredicts on ReLU'd outputs (half of them at act_min).
static inline int32_t clamp(int32_t v, int32_t lo, int32_t hi) {
    v = v < lo ? lo : v;
    return v > hi ? hi : v;
}

static inline int32_t output_of(int32_t acc, int32_t multiplier, int32_t shift, int32_t zp, int32_t lo, int32_t hi) {
    return clamp(sieve_add_wrap(sieve_requantize(acc, multiplier, shift), zp), lo, hi);
}

HOT_LOOP void sieve_q_outputs(const sieve_q_layer *l, const int32_t *bias, int8_t *out) {
    // Locals: out is int8_t, which may alias anything, so fields read through l would be reloaded.
    const int32_t c = l->channels, zp = l->zero_point, lo = l->act_min, hi = l->act_max;
    const int32_t *restrict m = l->multipliers, *restrict sh = l->shifts, *restrict b = bias;
    const int32_t *restrict sums = l->sums;
    int8_t *restrict o = out;
    for (int64_t p = 0; p < l->pixels; p++) {
        const int32_t *restrict row = sums + p * c;
        for (int32_t ch = 0; ch < c; ch++) {
            const int32_t acc = (int32_t)((uint32_t)b[ch] + (uint32_t)row[ch]);
            o[p * c + ch] = (int8_t)output_of(acc, m[ch], sh[ch], zp, lo, hi);
        }
    }
}

// One candidate: plain sums of outputs (no step counting to do).
static inline __attribute__((always_inline)) void single_totals(const sieve_q_layer *l, const int32_t *restrict b, int64_t *restrict totals) {
    const int32_t c = l->channels, zp = l->zero_point, lo = l->act_min, hi = l->act_max;
    const int32_t *restrict m = l->multipliers, *restrict sh = l->shifts, *restrict sums = l->sums;
    for (int64_t p = 0; p < l->pixels; p++) {
        const int32_t *restrict row = sums + p * c;
        for (int32_t ch = 0; ch < c; ch++) totals[ch] += output_of((int32_t)((uint32_t)b[ch] + (uint32_t)row[ch]), m[ch], sh[ch], zp, lo, hi);
    }
}

// With A = (b0 + S) * M + 2^(s-1), q0 = A >> s and rem = A mod 2^s, candidate j's value is
// q0 + ((rem + D_j) >> s). The candidates span about one step, so the value steps up at most once:
// at every candidate k with D_k >= 2^s - rem. So per pixel row, a loop over the channels finds each
// element's first output and its need = 2^s - rem, and one loop per candidate counts the elements
// with D_k >= need (weighted by whether the step moves the clamped output). Every loop runs over
// the channels with no branch, so it vectorises. Elements whose b + S would wrap, or that would
// step more than once, requantise every candidate instead (rare).
HOT_LOOP int sieve_q_trial_totals(const sieve_q_layer *l, int32_t trials, const int32_t *bias, const int64_t *offsets,
                                  const uint8_t *rising, int64_t *totals) {
    const int32_t c = l->channels, n = trials, zp = l->zero_point, lo = l->act_min, hi = l->act_max;
    const int32_t *restrict m = l->multipliers, *restrict sh = l->shifts;
    if (n == 1) {  // plain sums of outputs: no step to find
        single_totals(l, bias, totals);
        return 0;
    }
    // Per channel: eight values, and the offsets and counts as [trial][channel].
    int64_t *memory = calloc((size_t)c * (8 + 2 * (size_t)n), sizeof(int64_t));
    uint8_t *fast = calloc((size_t)c, 1);
    if (!memory || !fast) {
        free(memory);
        free(fast);
        return -1;
    }
    int64_t *restrict b0 = memory, *restrict b_last = b0 + c, *restrict half = b_last + c, *restrict one = half + c;
    int64_t *restrict d_last = one + c, *restrict need = d_last + c, *restrict differ = need + c, *restrict base = differ + c;
    int64_t *restrict counts = base + c, *restrict d = counts + (size_t)n * c;
    for (int32_t ch = 0; ch < c; ch++) {
        b0[ch] = bias[(size_t)ch * n];
        b_last[ch] = bias[(size_t)ch * n + n - 1];
        half[ch] = (int64_t)1 << (sh[ch] - 1);
        one[ch] = (int64_t)1 << sh[ch];
        d_last[ch] = offsets[(size_t)ch * n + n - 1];
        for (int32_t k = 0; k < n; k++) d[(size_t)k * c + ch] = offsets[(size_t)ch * n + k];
    }
    for (int64_t p = 0; p < l->pixels; p++) {
        const int32_t *restrict row = l->sums + p * c;
        int32_t slow = 0;
        for (int32_t ch = 0; ch < c; ch++) {
            const int64_t sv = row[ch], x0 = b0[ch] + sv;
            const int64_t a = x0 * m[ch] + half[ch];
            const int64_t q0 = a >> sh[ch], rem = a - q0 * one[ch];
            const int32_t first = clamp((int32_t)((uint32_t)(int32_t)q0 + (uint32_t)zp), lo, hi);
            const int32_t second = clamp((int32_t)((uint32_t)(int32_t)(q0 + 1) + (uint32_t)zp), lo, hi);
            const int32_t ok = rising[ch] & (x0 >= INT32_MIN) & (b_last[ch] + sv <= INT32_MAX) & (((rem + d_last[ch]) >> sh[ch]) <= 1);
            fast[ch] = (uint8_t)ok;
            slow |= !ok;
            need[ch] = one[ch] - rem;
            differ[ch] = ok ? second - first : 0;
            base[ch] += ok ? first : 0;
        }
        for (int32_t k = 1; k < n; k++) {
            const int64_t *restrict dk = d + (size_t)k * c;
            int64_t *restrict ck = counts + (size_t)k * c;
            for (int32_t ch = 0; ch < c; ch++) ck[ch] += dk[ch] >= need[ch] ? differ[ch] : 0;
        }
        if (slow) {
            for (int32_t ch = 0; ch < c; ch++) {
                if (fast[ch]) continue;
                for (int32_t j = 0; j < n; j++)
                    totals[(size_t)ch * n + j] += output_of((int32_t)((uint32_t)bias[(size_t)ch * n + j] + (uint32_t)row[ch]), m[ch], sh[ch], zp, lo, hi);
            }
        }
    }
    for (int32_t ch = 0; ch < c; ch++) {
        for (int32_t j = 0; j < n; j++) totals[(size_t)ch * n + j] += base[ch] + counts[(size_t)j * c + ch];
    }
    free(memory);
    free(fast);
    return 0;
}

// Four interleaved copies of the counts: a run of equal values (the zeros after a ReLU) would
// otherwise chain every increment through one memory slot. Zero goes to its own slot by a select,
// not a branch, which would mispredict.
HOT_LOOP void sieve_q_histogram_add(const float *values, int64_t count, double inverse, int32_t negative_bins, int32_t bins,
                                    uint32_t *counts) {
    const int64_t slots = (int64_t)bins + 1;
    uint32_t *copies[4] = {counts, counts + slots, counts + 2 * slots, counts + 3 * slots};
    for (int64_t i = 0; i < count; i++) {
        const float v = values[i];
        if (!isfinite(v)) continue;
        const double t = floor((double)v * inverse);
        int64_t bin = (t < -1e15 ? -1 : t > 1e15 ? bins : (int64_t)t) + negative_bins;
        bin = bin < 0 ? 0 : bin > bins - 1 ? bins - 1 : bin;
        copies[i & 3][v == 0 ? bins : bin] += 1;
    }
}

// One output element with every tap tested: the edges of a 3x3 conv, and every other kernel size.
static inline float depthwise_point(const sieve_q_depthwise_shape *s, const float *plane, const float *kernel, float bias, int32_t oy, int32_t ox) {
    float a = bias;
    for (int32_t ky = 0; ky < s->kernel_h; ky++) {
        const int32_t iy = oy * s->stride_h - s->pad_top + ky;
        if (iy < 0 || iy >= s->in_h) continue;
        for (int32_t kx = 0; kx < s->kernel_w; kx++) {
            const int32_t ix = ox * s->stride_w - s->pad_left + kx;
            if (ix >= 0 && ix < s->in_w) a = a + kernel[ky * s->kernel_w + kx] * plane[(size_t)iy * s->in_w + ix];
        }
    }
    return a;
}

// The columns of a 3x3 row whose three taps all lie inside the input, `rows` input rows inside it
// (r[k] and w[3k...3k+2]): the sum stays in a register, in the same order as depthwise_point.
static inline __attribute__((always_inline)) void depthwise3_columns(const float *const r[3], const float *w, int rows, float bias,
                                                                     int32_t first, int32_t end, int32_t sw, int32_t offset, float *restrict out) {
    for (int32_t ox = first; ox < end; ox++) {
        const int32_t i = ox * sw + offset;
        float a = bias;
        for (int k = 0; k < rows; k++) {
            a = a + w[3 * k] * r[k][i];
            a = a + w[3 * k + 1] * r[k][i + 1];
            a = a + w[3 * k + 2] * r[k][i + 2];
        }
        out[ox] = a;
    }
}

HOT_LOOP void sieve_q_depthwise_f32(const sieve_q_depthwise_shape *s, const float *x, const float *weights, const float *bias, float *y) {
    const int32_t ow = s->out_w, sw = s->stride_w, offset = -s->pad_left;
    const int three = s->kernel_h == 3 && s->kernel_w == 3;
    // 3x3: the columns whose taps are all inside: ox * sw + offset >= 0 and ox * sw + offset + 2 < in_w.
    int32_t first = offset >= 0 ? 0 : (-offset + sw - 1) / sw;
    int32_t end = s->in_w - offset - 3 < 0 ? 0 : (s->in_w - offset - 3) / sw + 1;
    if (end > ow) end = ow;
    if (first > end) first = end;
    for (int32_t c = 0; c < s->channels; c++) {
        const float *plane = x + (size_t)c * s->in_h * s->in_w, *kernel = weights + (size_t)c * s->kernel_h * s->kernel_w;
        for (int32_t oy = 0; oy < s->out_h; oy++) {
            float *restrict row = y + ((size_t)c * s->out_h + oy) * ow;
            if (!three) {
                for (int32_t ox = 0; ox < ow; ox++) row[ox] = depthwise_point(s, plane, kernel, bias[c], oy, ox);
                continue;
            }
            const float *r[3];
            float w[9];
            int rows = 0;
            for (int32_t ky = 0; ky < 3; ky++) {
                const int32_t iy = oy * s->stride_h - s->pad_top + ky;
                if (iy < 0 || iy >= s->in_h) continue;
                r[rows] = plane + (size_t)iy * s->in_w;
                for (int kx = 0; kx < 3; kx++) w[3 * rows + kx] = kernel[3 * ky + kx];
                rows++;
            }
            for (int32_t ox = 0; ox < first; ox++) row[ox] = depthwise_point(s, plane, kernel, bias[c], oy, ox);
            if (rows == 3) depthwise3_columns(r, w, 3, bias[c], first, end, sw, offset, row);
            else if (rows == 2) depthwise3_columns(r, w, 2, bias[c], first, end, sw, offset, row);
            else depthwise3_columns(r, w, rows, bias[c], first, end, sw, offset, row);
            for (int32_t ox = end; ox < ow; ox++) row[ox] = depthwise_point(s, plane, kernel, bias[c], oy, ox);
        }
    }
}
