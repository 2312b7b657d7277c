// Depthwise convolution on every AArch64 path (neon; neondot and i8mm call it): smull/smlal into
// int16 over pairs of taps, saddw into int32 (docs/KERNELS.md, "The neon layouts").
#if defined(__aarch64__)
#include <arm_neon.h>
#include "sieve_target.h"

SIEVE_TARGET_BEGIN("arch=armv8-a+simd")

#include "neon_common.h"
#include "neon_layout.h"

// ---- Depthwise conv (every AArch64 path) -----------------------------------------------------------
// Layout: header, requantisation table over C16 = out_c rounded up to 16, weights [taps][C16]
// (taps = kernel_h * kernel_w in (ky, kx) order, zero past out_c).
// Scratch: the tap offsets (int32[taps], 64-byte padded), then the band's input expanded to out_c
// channels ([span_h][span_w][C16]: channel oc holds input channel oc / multiplier, padding holds the
// zero point); a band needing no padding with multiplier 1 and out_c % 16 == 0 is read in place.
// Micro-kernel: 4 pixels of one output row x 16 channels, int32 accumulators; taps in pairs: per
// pair and pixel smull + smlal (low 8 channels), smull2 + smlal2 (high), four saddw into int32.
// A pair of -128 weights in one channel (see pair_overflows) selects the unpaired form at pack time.
static int32_t dw_taps(const sieve_conv_params *p) { return p->kernel_h * p->kernel_w; }

size_t sieve_dwconv_packed_size__neon(const sieve_conv_params *p) {
    if (p->in_c <= 0 || p->out_c % p->in_c != 0) return 0;
    const int32_t c16 = sieve_round_up(p->out_c, 16);
    return NEON_HEADER + arm_rq_table_size(c16) + arm_round_up_size((size_t)dw_taps(p) * c16, 64);
}

void sieve_dwconv_pack__neon(const sieve_conv_params *p, void *packed) {
    const int32_t c16 = sieve_round_up(p->out_c, 16), taps = dw_taps(p);
    neon_header *h = (neon_header *)packed;
    memset(h, 0, NEON_HEADER);
    char *table = (char *)packed + NEON_HEADER;
    arm_rq_pack_table(table, p->bias, p->multipliers, p->shifts, p->out_c, c16);
    int8_t *w = (int8_t *)(table + arm_rq_table_size(c16));
    memset(w, 0, arm_round_up_size((size_t)taps * c16, 64));
    int32_t safe = 1;
    for (int32_t t = 0; t < taps; t++) {
        for (int32_t oc = 0; oc < p->out_c; oc++) {
            w[(size_t)t * c16 + oc] = p->weights[(size_t)t * p->out_c + oc];
            if (t % 2 == 1 && pair_overflows(p->weights[(size_t)(t - 1) * p->out_c + oc], p->weights[(size_t)t * p->out_c + oc])) safe = 0;
        }
    }
    h->safe = safe;
}

static size_t dw_offsets_size(const sieve_conv_params *p) { return arm_round_up_size((size_t)dw_taps(p) * 4, 64); }

static int dw_in_place(const sieve_conv_params *p) {
    return p->out_c == p->in_c && p->out_c % 16 == 0 && p->pad_top <= 0 && p->pad_left <= 0 &&
           sieve_conv_span_h(p) - p->pad_top <= p->in_h && sieve_conv_span_w(p) - p->pad_left <= p->in_w;
}

// Staged input rows live in a ring of kernel_h slots (span row r in slot r % kernel_h): each row is
// staged once, an output row's kernel_h rows are in distinct slots, and the ring stays in cache
// where a whole staged band (1.2 MB for a 112x112x96 layer) did not.
static size_t dw_slot_size(const sieve_conv_params *p) {
    return arm_round_up_size((size_t)sieve_conv_span_w(p) * (size_t)sieve_round_up(p->out_c, 16), 64);
}

size_t sieve_dwconv_scratch_size__neon(const sieve_conv_params *p) { return dw_offsets_size(p) + (size_t)p->kernel_h * dw_slot_size(p); }

// Expands span row y of the band's input into row ([span_w][C16]).
static void dw_stage_row(const sieve_conv_params *p, int32_t y, int8_t *row) {
    const int32_t span_w = sieve_conv_span_w(p), c16 = sieve_round_up(p->out_c, 16);
    const int32_t mult = p->out_c / p->in_c;
    const int8_t zp = (int8_t)p->input_zero_point;
    const int32_t iy = y - p->pad_top;
    for (int32_t x = 0; x < span_w; x++) {
        const int32_t ix = x - p->pad_left;
        int8_t *out = row + (size_t)x * c16;
        if (iy < 0 || iy >= p->in_h || ix < 0 || ix >= p->in_w) {
            memset(out, zp, (size_t)p->out_c);
        } else {
            const int8_t *in = p->input + ((size_t)iy * p->in_w + ix) * p->in_c;
            if (mult == 1) {
                memcpy(out, in, (size_t)p->in_c);
            } else if (mult == 2) {
                int32_t ic = 0;
                for (; ic + 16 <= p->in_c; ic += 16) {
                    const int8x16_t v = vld1q_s8(in + ic);
                    vst1q_s8(out + 2 * ic, vzip1q_s8(v, v));
                    vst1q_s8(out + 2 * ic + 16, vzip2q_s8(v, v));
                }
                for (; ic < p->in_c; ic++) out[2 * ic] = out[2 * ic + 1] = in[ic];
            } else {
                for (int32_t oc = 0; oc < p->out_c; oc++) out[oc] = in[oc / mult];
            }
        }
        if (c16 > p->out_c) memset(out + p->out_c, 0, (size_t)(c16 - p->out_c));
    }
}

#define DW_PAIR(A0, A1, A2, A3, XP)                                                                    \
    do {                                                                                              \
        const int8x16_t xa = vld1q_s8((XP) + oa), xb = vld1q_s8((XP) + ob);                             \
        const int16x8_t lo = vmlal_s8(vmull_s8(vget_low_s8(xa), vget_low_s8(wa)), vget_low_s8(xb), vget_low_s8(wb)); \
        const int16x8_t hi = vmlal_high_s8(vmull_high_s8(xa, wa), xb, wb);                              \
        A0 = vaddw_s16(A0, vget_low_s16(lo)); A1 = vaddw_high_s16(A1, lo);                              \
        A2 = vaddw_s16(A2, vget_low_s16(hi)); A3 = vaddw_high_s16(A3, hi);                              \
    } while (0)

#define DW_ONE(A0, A1, A2, A3, XP)                                                                     \
    do {                                                                                              \
        const int8x16_t xa = vld1q_s8((XP) + oa);                                                      \
        const int16x8_t lo = vmull_s8(vget_low_s8(xa), vget_low_s8(wa)), hi = vmull_high_s8(xa, wa);   \
        A0 = vaddw_s16(A0, vget_low_s16(lo)); A1 = vaddw_high_s16(A1, lo);                              \
        A2 = vaddw_s16(A2, vget_low_s16(hi)); A3 = vaddw_high_s16(A3, hi);                              \
    } while (0)

// ring: NULL when the input is read in place (base, row_stride, off fixed), else the staging ring
// (off recomputed per output row, rows staged as they are first needed).
static inline __attribute__((always_inline)) void dw_rows(const sieve_conv_params *p, const arm_rq_view *rq, const int8_t *w,
                                                          const int8_t *base, ptrdiff_t row_stride, ptrdiff_t px_stride,
                                                          int32_t *off, int8_t *ring, const int PAIRED) {
    const int32_t c16 = sieve_round_up(p->out_c, 16), taps = dw_taps(p), kh = p->kernel_h;
    const arm_out_stage out = arm_out(p->output_zero_point, p->act_min, p->act_max);
    const ptrdiff_t ox_step = px_stride * p->stride_w, slot = ring != NULL ? (ptrdiff_t)dw_slot_size(p) : 0;
    int32_t staged = 0;  // span rows below this are in the ring
    for (int32_t oy = 0; oy < p->out_h; oy++) {
        const int8_t *xrow = base + (ptrdiff_t)oy * p->stride_h * row_stride;
        if (ring != NULL) {
            const int32_t top = oy * p->stride_h;
            if (staged < top) staged = top;
            for (; staged < top + kh; staged++) dw_stage_row(p, staged, ring + (staged % kh) * slot);
            for (int32_t ky = 0, t = 0; ky < kh; ky++) {
                for (int32_t kx = 0; kx < p->kernel_w; kx++, t++) off[t] = (int32_t)(((top + ky) % kh) * slot + kx * px_stride);
            }
            xrow = ring;
        }
        int8_t *orow = p->output + (size_t)oy * p->out_w * p->out_c;
        for (int32_t cb = 0; cb < p->out_c; cb += 16) {
            const int32x4_t b0 = vld1q_s32(rq->bias + cb), b1 = vld1q_s32(rq->bias + cb + 4);
            const int32x4_t b2 = vld1q_s32(rq->bias + cb + 8), b3 = vld1q_s32(rq->bias + cb + 12);
            const int32_t nch = arm_min(16, p->out_c - cb);
            for (int32_t ox = 0; ox < p->out_w; ox += 4) {
                const int32_t npx = arm_min(4, p->out_w - ox);
                const int8_t *x0 = xrow + ox * ox_step + cb;
                const int8_t *x1 = xrow + (ox + arm_min(1, npx - 1)) * ox_step + cb;
                const int8_t *x2 = xrow + (ox + arm_min(2, npx - 1)) * ox_step + cb;
                const int8_t *x3 = xrow + (ox + arm_min(3, npx - 1)) * ox_step + cb;
                int32x4_t a00 = b0, a01 = b1, a02 = b2, a03 = b3, a10 = b0, a11 = b1, a12 = b2, a13 = b3;
                int32x4_t a20 = b0, a21 = b1, a22 = b2, a23 = b3, a30 = b0, a31 = b1, a32 = b2, a33 = b3;
                const int8_t *wt = w + cb;
                int32_t t = 0;
                if (PAIRED) {
                    for (; t + 2 <= taps; t += 2) {
                        const int8x16_t wa = vld1q_s8(wt), wb = vld1q_s8(wt + c16);
                        wt += 2 * c16;
                        const ptrdiff_t oa = off[t], ob = off[t + 1];
                        DW_PAIR(a00, a01, a02, a03, x0);
                        DW_PAIR(a10, a11, a12, a13, x1);
                        DW_PAIR(a20, a21, a22, a23, x2);
                        DW_PAIR(a30, a31, a32, a33, x3);
                    }
                }
                for (; t < taps; t++) {
                    const int8x16_t wa = vld1q_s8(wt);
                    wt += c16;
                    const ptrdiff_t oa = off[t];
                    DW_ONE(a00, a01, a02, a03, x0);
                    DW_ONE(a10, a11, a12, a13, x1);
                    DW_ONE(a20, a21, a22, a23, x2);
                    DW_ONE(a30, a31, a32, a33, x3);
                }
                int8_t *o = orow + (size_t)ox * p->out_c + cb;
                arm_store(o, arm_rq16(rq, cb, a00, a01, a02, a03, &out), nch);
                if (npx > 1) arm_store(o + p->out_c, arm_rq16(rq, cb, a10, a11, a12, a13, &out), nch);
                if (npx > 2) arm_store(o + 2 * p->out_c, arm_rq16(rq, cb, a20, a21, a22, a23, &out), nch);
                if (npx > 3) arm_store(o + 3 * p->out_c, arm_rq16(rq, cb, a30, a31, a32, a33, &out), nch);
            }
        }
    }
}

void sieve_dwconv_s8__neon(const sieve_conv_params *p, const void *packed, void *scratch) {
    if (p->out_h <= 0 || p->out_w <= 0) return;
    const neon_header *h = (const neon_header *)packed;
    const int32_t c16 = sieve_round_up(p->out_c, 16);
    const char *table = (const char *)packed + NEON_HEADER;
    const arm_rq_view rq = arm_rq_table(table, c16);
    const int8_t *w = (const int8_t *)(table + arm_rq_table_size(c16));
    int32_t *off = (int32_t *)scratch;
    const int8_t *base;
    int8_t *ring = NULL;
    ptrdiff_t row_stride, px_stride;
    if (dw_in_place(p)) {
        px_stride = p->in_c;
        row_stride = (ptrdiff_t)p->in_w * p->in_c;
        base = p->input + (ptrdiff_t)(-p->pad_top) * row_stride + (ptrdiff_t)(-p->pad_left) * px_stride;
        for (int32_t ky = 0, t = 0; ky < p->kernel_h; ky++) {
            for (int32_t kx = 0; kx < p->kernel_w; kx++, t++) off[t] = (int32_t)(ky * row_stride + kx * px_stride);
        }
    } else {
        ring = (int8_t *)scratch + dw_offsets_size(p);
        px_stride = c16;
        row_stride = 0;
        base = ring;
    }
    if (h->safe) dw_rows(p, &rq, w, base, row_stride, px_stride, off, ring, 1);
    else dw_rows(p, &rq, w, base, row_stride, px_stride, off, ring, 0);
}

SIEVE_TARGET_END
#endif
