// The packed depthwise weights both x86 paths read (multiplier 1): weights widened to int32,
//   int32 weights[taps][cp], bias[cp], multiplier[cp], shift[cp]   (cp = out_c rounded up to 16)
// then the path's requantisation blocks, which it fills from the padded multipliers and shifts.
#ifndef SIEVE_DWCONV_WIDE_H
#define SIEVE_DWCONV_WIDE_H

#include "sieve_pack.h"

typedef struct {
    const int32_t *weights, *bias, *multipliers, *shifts;
    const void *blocks;  // the path's requantisation blocks
    int32_t cp;
} dw_wide_view;

static inline size_t dw_wide_size(const sieve_conv_params *p) {
    const size_t cp = (size_t)sieve_round_up(p->out_c, 16);
    return ((size_t)p->kernel_h * p->kernel_w + 3) * cp * sizeof(int32_t);
}

static inline dw_wide_view dw_wide(const void *packed, const sieve_conv_params *p) {
    dw_wide_view v;
    v.cp = sieve_round_up(p->out_c, 16);
    v.weights = (const int32_t *)packed;
    v.bias = v.weights + (size_t)p->kernel_h * p->kernel_w * v.cp;
    v.multipliers = v.bias + v.cp;
    v.shifts = v.multipliers + v.cp;
    v.blocks = v.shifts + v.cp;
    return v;
}

static inline void dw_wide_pack(const sieve_conv_params *p, void *packed) {
    const dw_wide_view v = dw_wide(packed, p);
    int32_t *w = (int32_t *)v.weights, *bias = (int32_t *)v.bias, *m = (int32_t *)v.multipliers, *s = (int32_t *)v.shifts;
    for (int32_t t = 0; t < p->kernel_h * p->kernel_w; t++) {
        for (int32_t c = 0; c < v.cp; c++) w[(size_t)t * v.cp + c] = c < p->out_c ? p->weights[(size_t)t * p->out_c + c] : 0;
    }
    for (int32_t c = 0; c < v.cp; c++) {
        bias[c] = c < p->out_c ? p->bias[c] : 0;
        m[c] = c < p->out_c ? p->multipliers[c] : 1 << 30;
        s[c] = c < p->out_c ? p->shifts[c] : 31;
    }
}

// The staged band, and 64 bytes of slack for the last channel block's load overrun.
static inline size_t dw_wide_scratch_size(const sieve_conv_params *p) {
    return (size_t)sieve_conv_span_h(p) * sieve_conv_span_w(p) * p->in_c + 64;
}

#endif
