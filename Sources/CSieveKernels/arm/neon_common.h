// Shared by the AArch64 kernels (arm/OP__neon.c, OP__neondot.c, OP__i8mm.c): the requantisation table
// and epilogue, input staging of a conv band and the pixel x channel-block driver (docs/KERNELS.md).
// Each path's file includes this inside its SIEVE_TARGET_BEGIN region, so these static functions
// are compiled for that path's instruction set.
#ifndef SIEVE_NEON_COMMON_H
#define SIEVE_NEON_COMMON_H

#include <arm_neon.h>
#include <stddef.h>
#include <string.h>
#include "sieve_isa.h"
#include "sieve_pack.h"

#define ARM_MR 4  // output pixels per micro-kernel call

static inline int32_t arm_min(int32_t a, int32_t b) { return a < b ? a : b; }
static inline int32_t arm_max(int32_t a, int32_t b) { return a > b ? a : b; }
static inline size_t arm_round_up_size(size_t value, size_t multiple) { return (value + multiple - 1) / multiple * multiple; }

// ---- Requantisation --------------------------------------------------------------------------------
// rq(acc, M, s) = (acc * M + 2^(s-1)) >> s. Two exact forms:
//  fast (s >= 32): Q = sqdmulh(acc, M) = floor(acc * M / 2^31) (no saturation: M > 0), then
//    srshl(Q, 31 - s) = (Q + 2^(s-32)) >> (s-31); since 2^(s-1) is a multiple of 2^31 the two floors
//    compose to floor((acc * M + 2^(s-1)) / 2^s). The result fits in 30 bits.
//  slow (any s): smull to 64 bits, srshl by -s (adds 2^(s-1) first), keep the low 32 bits (the scalar
//    kernel's int32 conversion), then + zero point with a wrapping add.
// Then saturating narrowing to int8 and the clamp: saturation is monotone and [act_min, act_max] lies
// inside int8, so clamp(saturate(v)) = clamp(v). In the fast form the zero point is added in int16 with
// saturation, which is exact for the same reason.
//
// The table, ocp = out_c rounded up to 16 (every array a multiple of 64 bytes):
//   int32 bias[ocp], multiplier[ocp]      (the K4 header for neondot; own copy for neon/i8mm)
//   int32 rshift[ocp]                      31 - s (fast blocks)
//   int64 nshift[ocp]                      -s     (slow blocks)
//   int32 fast[ocp / 16], padded to 64 B   1 when every real channel of the 16-block has s >= 32
//   int32 rmix[ocp]                        fast blocks, for the neondot conv's register epilogue:
//                                          channels 0-3 of each block 2^(31 - t), t = s - 31 (0 when
//                                          t > 31), channels 4-15 rshift
// The rounding shift by t >= 1 is also sqrdmulh(Q, 2^(31 - t)) = floor((2 Q 2^(31-t) + 2^31) / 2^32)
// = floor((Q + 2^(t-1)) / 2^t), exactly; for t > 31 both give 0 (|Q| <= 2^31). On the A57/A76 the
// multiply runs on the other vector pipe than the shift and the narrowing, so a quarter of the lanes
// taking it balances the two pipes (docs/ESTIMATE.md).
typedef struct {
    const int32_t *bias, *mult, *rshift;
    const int64_t *nshift;
    const int32_t *fast, *rmix;
} arm_rq_view;

static inline size_t arm_rq_fast_size(int32_t ocp) { return arm_round_up_size((size_t)ocp / 16 * 4, 64); }

static inline size_t arm_rq_extra_size(int32_t ocp) { return (size_t)ocp * 16 + arm_rq_fast_size(ocp); }

static inline size_t arm_rq_table_size(int32_t ocp) { return (size_t)ocp * 8 + arm_rq_extra_size(ocp); }

// Writes rshift, nshift and fast at `extra`; returns the view's extra part in `v`.
static inline void arm_rq_fill_extra(void *extra, const int32_t *shifts, int32_t out_c, int32_t ocp, arm_rq_view *v) {
    int32_t *rshift = (int32_t *)extra;
    int64_t *nshift = (int64_t *)(rshift + ocp);
    int32_t *fast = (int32_t *)(nshift + ocp);
    int32_t *rmix = (int32_t *)((char *)fast + arm_rq_fast_size(ocp));
    memset(fast, 0, arm_rq_fast_size(ocp));
    for (int32_t b = 0; b < ocp / 16; b++) {
        int32_t all = 1;
        for (int32_t c = b * 16; c < b * 16 + 16; c++) {
            const int32_t s = c < out_c ? shifts[c] : 32, t = s - 31;
            if (s < 32) all = 0;
            rshift[c] = 31 - s;
            nshift[c] = -(int64_t)s;
            rmix[c] = c % 16 >= 4 ? 31 - s : t >= 1 && t <= 31 ? (int32_t)(1u << (31 - t)) : 0;
        }
        fast[b] = all;
    }
    v->rshift = rshift;
    v->nshift = nshift;
    v->fast = fast;
    v->rmix = rmix;
}

// A whole table at `dst` (bias, multiplier, extra); returns the bytes written.
static inline size_t arm_rq_pack_table(void *dst, const int32_t *bias, const int32_t *multipliers, const int32_t *shifts,
                                       int32_t out_c, int32_t ocp) {
    int32_t *b = (int32_t *)dst, *m = b + ocp;
    for (int32_t c = 0; c < ocp; c++) {
        b[c] = c < out_c ? bias[c] : 0;
        m[c] = c < out_c ? multipliers[c] : 1 << 30;
    }
    arm_rq_view v;
    arm_rq_fill_extra(m + ocp, shifts, out_c, ocp, &v);
    return arm_rq_table_size(ocp);
}

static inline arm_rq_view arm_rq_table(const void *src, int32_t ocp) {
    arm_rq_view v;
    v.bias = (const int32_t *)src;
    v.mult = v.bias + ocp;
    v.rshift = v.mult + ocp;
    v.nshift = (const int64_t *)(v.rshift + ocp);
    v.fast = (const int32_t *)(v.nshift + ocp);
    v.rmix = (const int32_t *)((const char *)v.fast + arm_rq_fast_size(ocp));
    return v;
}

// The output stage of one op: zero point and clamp.
typedef struct {
    int16x8_t zp16;
    int32x4_t zp32;
    int8x16_t lo, hi;
} arm_out_stage;
// The conv kernels' assembly reads the zero point, act_min and act_max at these offsets.
_Static_assert(offsetof(arm_out_stage, zp16) == 0 && offsetof(arm_out_stage, lo) == 32 && offsetof(arm_out_stage, hi) == 48,
               "arm_out_stage layout");

static inline arm_out_stage arm_out(int32_t zero_point, int32_t act_min, int32_t act_max) {
    arm_out_stage s;
    s.zp16 = vdupq_n_s16((int16_t)zero_point);
    s.zp32 = vdupq_n_s32(zero_point);
    s.lo = vdupq_n_s8((int8_t)act_min);
    s.hi = vdupq_n_s8((int8_t)act_max);
    return s;
}

// Sixteen accumulators (bias included) -> sixteen int8, lane i of a_j with multiplier lane i of m_j.
static inline int8x16_t arm_rq_fast(int32x4_t a0, int32x4_t a1, int32x4_t a2, int32x4_t a3, int32x4_t m0, int32x4_t m1,
                                    int32x4_t m2, int32x4_t m3, int32x4_t r0, int32x4_t r1, int32x4_t r2, int32x4_t r3,
                                    const arm_out_stage *o) {
    a0 = vrshlq_s32(vqdmulhq_s32(a0, m0), r0);
    a1 = vrshlq_s32(vqdmulhq_s32(a1, m1), r1);
    a2 = vrshlq_s32(vqdmulhq_s32(a2, m2), r2);
    a3 = vrshlq_s32(vqdmulhq_s32(a3, m3), r3);
    int16x8_t h0 = vqmovn_high_s32(vqmovn_s32(a0), a1);
    int16x8_t h1 = vqmovn_high_s32(vqmovn_s32(a2), a3);
    h0 = vqaddq_s16(h0, o->zp16);
    h1 = vqaddq_s16(h1, o->zp16);
    const int8x16_t b = vqmovn_high_s16(vqmovn_s16(h0), h1);
    return vminq_s8(vmaxq_s8(b, o->lo), o->hi);
}

static inline int32x4_t arm_rq_slow4(int32x4_t a, int32x4_t m, int64x2_t n_lo, int64x2_t n_hi, int32x4_t zp32) {
    const int64x2_t lo = vrshlq_s64(vmull_s32(vget_low_s32(a), vget_low_s32(m)), n_lo);
    const int64x2_t hi = vrshlq_s64(vmull_high_s32(a, m), n_hi);
    return vaddq_s32(vuzp1q_s32(vreinterpretq_s32_s64(lo), vreinterpretq_s32_s64(hi)), zp32);
}

static inline int8x16_t arm_rq_narrow(int32x4_t a0, int32x4_t a1, int32x4_t a2, int32x4_t a3, const arm_out_stage *o) {
    const int16x8_t h0 = vqmovn_high_s32(vqmovn_s32(a0), a1);
    const int16x8_t h1 = vqmovn_high_s32(vqmovn_s32(a2), a3);
    const int8x16_t b = vqmovn_high_s16(vqmovn_s16(h0), h1);
    return vminq_s8(vmaxq_s8(b, o->lo), o->hi);
}

// Requantises sixteen consecutive channels [oc, oc + 16) of one pixel.
static inline __attribute__((always_inline)) int8x16_t arm_rq16(const arm_rq_view *rq, int32_t oc, int32x4_t a0, int32x4_t a1, int32x4_t a2, int32x4_t a3,
                                 const arm_out_stage *o) {
    const int32_t *m = rq->mult + oc;
    if (rq->fast[oc / 16]) {
        const int32_t *r = rq->rshift + oc;
        return arm_rq_fast(a0, a1, a2, a3, vld1q_s32(m), vld1q_s32(m + 4), vld1q_s32(m + 8), vld1q_s32(m + 12), vld1q_s32(r),
                           vld1q_s32(r + 4), vld1q_s32(r + 8), vld1q_s32(r + 12), o);
    }
    const int64_t *n = rq->nshift + oc;
    a0 = arm_rq_slow4(a0, vld1q_s32(m), vld1q_s64(n), vld1q_s64(n + 2), o->zp32);
    a1 = arm_rq_slow4(a1, vld1q_s32(m + 4), vld1q_s64(n + 4), vld1q_s64(n + 6), o->zp32);
    a2 = arm_rq_slow4(a2, vld1q_s32(m + 8), vld1q_s64(n + 8), vld1q_s64(n + 10), o->zp32);
    a3 = arm_rq_slow4(a3, vld1q_s32(m + 12), vld1q_s64(n + 12), vld1q_s64(n + 14), o->zp32);
    return arm_rq_narrow(a0, a1, a2, a3, o);
}

// The fast-form constants of one 16-channel block, loaded once for all the pixels of a tile.
typedef struct {
    int32x4_t m0, m1, m2, m3, r0, r1, r2, r3;
} arm_rq_block;

static inline arm_rq_block arm_rq_block_at(const arm_rq_view *rq, int32_t oc) {
    arm_rq_block k;
    const int32_t *m = rq->mult + oc, *r = rq->rshift + oc;
    k.m0 = vld1q_s32(m), k.m1 = vld1q_s32(m + 4), k.m2 = vld1q_s32(m + 8), k.m3 = vld1q_s32(m + 12);
    k.r0 = vld1q_s32(r), k.r1 = vld1q_s32(r + 4), k.r2 = vld1q_s32(r + 8), k.r3 = vld1q_s32(r + 12);
    return k;
}

// Stores the first n (1...16) bytes of v.
static inline void arm_store(int8_t *dst, int8x16_t v, int32_t n) {
    if (n == 16) { vst1q_s8(dst, v); return; }
    int8_t tmp[16];
    vst1q_s8(tmp, v);
    memcpy(dst, tmp, (size_t)n);
}

// Four bytes as the low lane of a d register (the rest zero), from any address.
static inline int8x8_t arm_load4(const int8_t *src) {
    uint32_t word;
    memcpy(&word, src, 4);
    return vcreate_s8((uint64_t)word);
}

// ---- Conv bands as a matrix product ---------------------------------------------------------------
// An output pixel (oy, ox) reads `runs` runs of L contiguous bytes, run r at
//   base + oy * oy_step + ox * ox_step + r * run_stride,
// whose columns are consecutive columns of the weight matrix (run r = kernel row ky, its kw * in_c
// columns (kx, ci); or one run of k4 columns of an im2col row).
typedef struct {
    const int8_t *base;
    ptrdiff_t oy_step, ox_step, run_stride;
    int32_t runs, L;
} arm_conv_input;

// Run geometry of a conv's weights: shared by the pack and the kernel.
static inline void arm_conv_runs(const sieve_conv_params *p, int32_t *runs, int32_t *L) {
    if (sieve_conv_is_direct(p)) {
        *runs = p->kernel_h;
        *L = p->kernel_w * p->in_c;
    } else {
        *runs = 1;
        *L = sieve_round_up(p->kernel_h * p->kernel_w * p->in_c, 4);
    }
}

// Column `j` of run `r` as an index into the scalar weight row (-1: a zero pad column).
static inline int32_t arm_conv_column(const sieve_conv_params *p, int32_t runs, int32_t L, int32_t r, int32_t j) {
    (void)runs;
    const int32_t k = p->kernel_h * p->kernel_w * p->in_c;
    const int32_t index = r * L + j;
    return index < k ? index : -1;
}

static inline size_t arm_conv_scratch_size(const sieve_conv_params *p) {
    if (sieve_conv_is_direct(p)) {
        return arm_round_up_size((size_t)sieve_conv_span_h(p) * (size_t)sieve_conv_span_w(p) * (size_t)p->in_c, 64);
    }
    return sieve_im2col_scratch_size(p);  // the rows [pixels][k4] first
}

// Stages the band's input (or reads it in place when the band needs no padding).
static inline arm_conv_input arm_conv_stage(const sieve_conv_params *p, void *scratch) {
    arm_conv_input in;
    if (sieve_conv_is_direct(p)) {
        const int32_t span_h = sieve_conv_span_h(p), span_w = sieve_conv_span_w(p);
        ptrdiff_t row;
        if (p->pad_top <= 0 && p->pad_left <= 0 && span_h - p->pad_top <= p->in_h && span_w - p->pad_left <= p->in_w) {
            row = (ptrdiff_t)p->in_w * p->in_c;
            in.base = p->input + (ptrdiff_t)(-p->pad_top) * row + (ptrdiff_t)(-p->pad_left) * p->in_c;
        } else {
            sieve_pad_input(p, 0, (uint8_t *)scratch);
            row = (ptrdiff_t)span_w * p->in_c;
            in.base = (const int8_t *)scratch;
        }
        in.oy_step = row * p->stride_h;
        in.ox_step = (ptrdiff_t)p->stride_w * p->in_c;
        in.run_stride = row;
        in.runs = p->kernel_h;
        in.L = p->kernel_w * p->in_c;
    } else {
        const int32_t k4 = sieve_round_up(p->kernel_h * p->kernel_w * p->in_c, 4);
        sieve_im2col(p, 0, (uint8_t *)scratch);
        in.base = (const int8_t *)scratch;
        in.oy_step = (ptrdiff_t)p->out_w * k4;
        in.ox_step = k4;
        in.run_stride = 0;
        in.runs = 1;
        in.L = k4;
    }
    return in;
}

// What a micro-kernel needs: ARM_MR pixels' input pointers and output pointers (the last valid pixel
// repeated past `npx`), and the channel block.
typedef struct {
    arm_conv_input in;
    arm_rq_view rq;
    arm_out_stage out;
    const int8_t *weights;  // channel block b at weights + b * block_bytes
    size_t block_bytes;
    int32_t out_c;
    int32_t all_fast;  // neondot only (the others leave it unset): every block fast and full (out_c % 16 == 0)
} arm_gemm;

// Computes ARM_MR pixels against channel blocks [b0, b1) of `nr` channels: one call per pixel group and
// L1 tile of blocks, so the pointers are set up once, not per block.
typedef void (*arm_tile_fn)(const arm_gemm *g, const int8_t *const *x, int8_t *const *o, int32_t npx, int32_t b0, int32_t b1);

// Output pixels in groups of ARM_MR, channel blocks of `nr`; channel blocks are tiled so a tile's
// weights stay in L1 while the pixels stream past.
static inline void arm_gemm_run(const arm_gemm *g, const sieve_conv_params *p, int32_t nr, arm_tile_fn tile) {
    const int32_t pixels = p->out_h * p->out_w;
    const int32_t blocks = (p->out_c + nr - 1) / nr;
    const int32_t tile_blocks = arm_max(1, (int32_t)(16384 / (g->block_bytes > 0 ? g->block_bytes : 1)));
    for (int32_t b0 = 0; b0 < blocks; b0 += tile_blocks) {
        const int32_t b1 = arm_min(blocks, b0 + tile_blocks);
        int32_t oy = 0, ox = 0;
        for (int32_t pix = 0; pix < pixels; pix += ARM_MR) {
            const int8_t *x[ARM_MR];
            int8_t *o[ARM_MR];
            const int32_t npx = arm_min(ARM_MR, pixels - pix);
            int32_t cy = oy, cx = ox;
            for (int32_t i = 0; i < ARM_MR; i++) {
                x[i] = g->in.base + cy * g->in.oy_step + cx * g->in.ox_step;
                o[i] = p->output + (size_t)(pix + arm_min(i, npx - 1)) * p->out_c;
                if (i + 1 < npx && ++cx == p->out_w) { cx = 0; cy++; }
            }
            ox += ARM_MR;
            while (ox >= p->out_w) { ox -= p->out_w; oy++; }
            tile(g, x, o, npx, b0, b1);
        }
    }
}

// The requantisation view of a K4-packed op (sieve_pack.h) with its extras after the weights
// (the neondot conv and fully connected layouts).
static inline arm_rq_view k4_rq(const void *packed, int32_t out_c, int32_t k, sieve_k4_view *kv) {
    *kv = sieve_k4(packed, out_c, k);
    arm_rq_view v = arm_rq_table(packed, kv->ocp);  // bias, multiplier: the K4 header
    const int32_t *extra = (const int32_t *)((const char *)packed + sieve_pack_k4_size(out_c, k));
    v.rshift = extra;
    v.nshift = (const int64_t *)(extra + kv->ocp);
    v.fast = (const int32_t *)(v.nshift + kv->ocp);
    v.rmix = (const int32_t *)((const char *)v.fast + arm_rq_fast_size(kv->ocp));
    return v;
}

#endif
