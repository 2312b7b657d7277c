// Packed weight layouts shared by the SIMD paths (docs/KERNELS.md). Internal to CSieveKernels.
#ifndef SIEVE_PACK_H
#define SIEVE_PACK_H

#include "sieve_kernels.h"

#define SIEVE_OC_BLOCK 16
// The requantisation shift of a padding channel (never stored), with multiplier 2^30: inside every
// path's 32-bit requantisation form, so a partly filled last block is not pushed onto the 64-bit one.
#define SIEVE_PADDING_SHIFT 40

// The short-multiplier requantisation form. When a channel's multiplier M ends in t zero bits
// (the quantiser rounds depthwise multipliers to a few significant bits, docs/FORMAT.md) and its
// accumulators are bounded, |acc| <= bound, the exact rule (acc * M + 2^(s-1)) >> s equals
// (acc * m + 2^(s'-1)) >> s' with m = M >> t and s' = s - t, all in int32 when
// bound * m + 2^(s'-1) < 2^31: one 32-bit multiply per lane instead of a 64-bit product.
// Fills *m and *s' and returns 1 when the channel qualifies, else returns 0.
static inline int sieve_rq_short_lane(int32_t multiplier, int32_t shift, int64_t bound, int32_t *m, int32_t *s) {
    int32_t t = 0;
    while (t < shift - 1 && t < 30 && ((multiplier >> t) & 1) == 0) t++;
    const int64_t small = (int64_t)(multiplier >> t);
    const int32_t rest = shift - t;
    if (rest < 1 || rest > 31 || bound < 0 || bound >= ((int64_t)1 << 31)) return 0;
    if (bound * small + ((int64_t)1 << (rest - 1)) >= ((int64_t)1 << 31)) return 0;
    *m = (int32_t)small;
    *s = rest;
    return 1;
}

static inline int32_t sieve_round_up(int32_t value, int32_t multiple) {
    return (value + multiple - 1) / multiple * multiple;
}

// The K4 layout: a matrix of out_c rows of k int8 weights (k in the scalar kernels' order), as
//   int32 bias[ocp]        bias[oc] - input_offset * sum(row oc), 0 past out_c
//   int32 multiplier[ocp]  1 << 30 past out_c
//   int32 shift[ocp]       31 past out_c
//   int8  weights[ocp / 16][k4 / 4][16][4]   row oc, columns 4j...4j+3; zero past out_c and k
// with ocp = out_c rounded up to 16 and k4 = k rounded up to 4. A 64-byte block holds four
// consecutive k of sixteen output channels: one vpdpbusd zmm operand, four sdot q operands.
// input_offset is what the kernel adds to every input value (128 for u8 x s8 vpdpbusd).
size_t sieve_pack_k4_size(int32_t out_c, int32_t k);
void sieve_pack_k4(const int8_t *weights, const int32_t *bias, const int32_t *multipliers, const int32_t *shifts,
                   int32_t out_c, int32_t k, int32_t input_offset, void *packed);

// The K4 layout with int16 weights (2 bytes each, same order): for int16 multiply-adds (vpmaddwd).
size_t sieve_pack_k4_s16_size(int32_t out_c, int32_t k);
void sieve_pack_k4_s16(const int8_t *weights, const int32_t *bias, const int32_t *multipliers, const int32_t *shifts,
                       int32_t out_c, int32_t k, void *packed);

// A conv's K4 matrix as the x86 paths read it: the scalar order when in_c % 4 == 0; otherwise
// each of the kernel_h rows of kernel_w * in_c weights padded to a multiple of 4, one run per
// kernel row (sieve_conv_stage). sieve_conv_k4 is its k (a multiple of 4).
int32_t sieve_conv_k4(const sieve_conv_params *p);
void sieve_pack_conv_k4(const sieve_conv_params *p, int32_t input_offset, int32_t weight_bytes, void *packed);

// How a conv kernel walks the input sieve_conv_stage staged: for output row oy, pixel j, kernel
// row ky, tap kx and 4-byte column group g, the bytes are at
//   staged + oy * pixel_row_stride + j * pixel_stride + ky * row_stride + kx * tap_stride + 4 * g.
typedef struct {
    int32_t taps_h, taps_w, groups;
    int32_t pixel_stride, row_stride, tap_stride, pixel_row_stride;
} sieve_conv_walk;

// Stages a band for the K4 conv kernels (padded with the zero point), adding offset to every
// byte, into sieve_conv_stage_size bytes of scratch. With in_c % 4 != 0 the walk reads each
// kernel row as one run of round_up(kernel_w * in_c, 4) bytes (taps_w 1), up to 3 bytes past the
// padded band on its last row (into the slack).
size_t sieve_conv_stage_size(const sieve_conv_params *p);
sieve_conv_walk sieve_conv_stage(const sieve_conv_params *p, int32_t offset, uint8_t *staged);

typedef struct {
    const int32_t *bias, *multipliers, *shifts;
    const int8_t *weights;
    int32_t ocp, k4;
} sieve_k4_view;

static inline sieve_k4_view sieve_k4(const void *packed, int32_t out_c, int32_t k) {
    sieve_k4_view v;
    v.ocp = sieve_round_up(out_c, SIEVE_OC_BLOCK);
    v.k4 = sieve_round_up(k, 4);
    v.bias = (const int32_t *)packed;
    v.multipliers = v.bias + v.ocp;
    v.shifts = v.multipliers + v.ocp;
    v.weights = (const int8_t *)(v.shifts + v.ocp);
    return v;
}

// A conv reads its input directly (one K4 row per kernel tap) when in_c is a multiple of 4,
// and through an im2col copy otherwise (the one-channel stem).
static inline int sieve_conv_is_direct(const sieve_conv_params *p) { return p->in_c % 4 == 0; }

// Input rows and columns a band of output rows touches, padding included.
static inline int32_t sieve_conv_span_h(const sieve_conv_params *p) { return (p->out_h - 1) * p->stride_h + p->kernel_h; }
static inline int32_t sieve_conv_span_w(const sieve_conv_params *p) { return (p->out_w - 1) * p->stride_w + p->kernel_w; }

// Winograd F(2,3) (x86/conv_wino_avx2.c, arm/conv_wino_neon.c, docs/KERNELS.md): the transformed
// 3x3 weights of output channel oc and input channel c, U = G2 g G2^T with G2 = 2G = [2 0 0; 1 1 1;
// 1 -1 1; 0 0 2], 4 times the textbook transform and integers, |U| <= 9 * 128 = 1152; u[4 r + col]
// is position (r, col) of the 4x4 tile.
static inline void sieve_wino_weights(const sieve_conv_params *p, int32_t oc, int32_t c, int16_t u[16]) {
    int32_t g[3][3], t[4][3];
    for (int ky = 0; ky < 3; ky++) {
        for (int kx = 0; kx < 3; kx++) g[ky][kx] = p->weights[(((size_t)oc * 3 + ky) * 3 + kx) * p->in_c + c];
    }
    for (int kx = 0; kx < 3; kx++) {  // G2 g
        t[0][kx] = 2 * g[0][kx];
        t[1][kx] = g[0][kx] + g[1][kx] + g[2][kx];
        t[2][kx] = g[0][kx] - g[1][kx] + g[2][kx];
        t[3][kx] = 2 * g[2][kx];
    }
    for (int r = 0; r < 4; r++) {  // (G2 g) G2^T
        u[4 * r + 0] = (int16_t)(2 * t[r][0]);
        u[4 * r + 1] = (int16_t)(t[r][0] + t[r][1] + t[r][2]);
        u[4 * r + 2] = (int16_t)(t[r][0] - t[r][1] + t[r][2]);
        u[4 * r + 3] = (int16_t)(2 * t[r][2]);
    }
}

// A Winograd band with out_h and out_w rounded up to whole 2x2 tiles: what its staging reads.
static inline sieve_conv_params sieve_wino_tiled(const sieve_conv_params *p) {
    sieve_conv_params t = *p;
    t.out_h = (p->out_h + 1) / 2 * 2;
    t.out_w = (p->out_w + 1) / 2 * 2;
    return t;
}

// Copies the input rows and columns a band of output rows reads into dst ([span_h][span_w][in_c],
// the padding filled with the input zero point), adding `offset` to every byte (128 turns s8 into
// the u8 vpdpbusd takes; 0 keeps s8).
void sieve_pad_input(const sieve_conv_params *p, int32_t offset, uint8_t *dst);
// im2col of a band: dst[out_h * out_w][k4], k in (ky, kx, ci) order, padding = zero point, plus
// offset. dst holds sieve_im2col_scratch_size bytes (the padded band is staged after the rows).
size_t sieve_im2col_scratch_size(const sieve_conv_params *p);
void sieve_im2col(const sieve_conv_params *p, int32_t offset, uint8_t *dst);

#endif
