// The one-channel conv (a grey stem) on the neon path: 16 output channels per vector, each tap's
// input byte broadcast (ld1r), taps in pairs as the depthwise kernel takes them (smull + smlal into
// int16, saddw into int32). The general conv kernel ran it as an im2col matrix product of 4 pixels x
// 4 channels, whose per-tile setup, reduction and epilogue outweighed its 9 MACs per output.
#if defined(__aarch64__)
#include <arm_neon.h>
#include "sieve_target.h"

SIEVE_TARGET_BEGIN("arch=armv8-a+simd")

#include "neon_common.h"
#include "neon_layout.h"

// Layout: header, requantisation table over C16 = out_c rounded up to 16, weights [taps][C16]
// (taps = kernel_h * kernel_w in (ky, kx) order, zero past out_c). The header's `safe`: no channel
// has -128 at both taps of a pair (see pair_overflows), else taps go one at a time.
// Scratch: the tap offsets (int32[taps], 64-byte padded), then the band padded ([span_h][span_w]).
int sieve_stem_usable__neon(const sieve_conv_params *p) { return p->groups == 1 && p->in_c == 1 && p->out_c > 0; }

static int32_t stem_taps(const sieve_conv_params *p) { return p->kernel_h * p->kernel_w; }

size_t sieve_stem_packed_size__neon(const sieve_conv_params *p) {
    const int32_t c16 = sieve_round_up(p->out_c, 16);
    return NEON_HEADER + arm_rq_table_size(c16) + arm_round_up_size((size_t)stem_taps(p) * c16, 64);
}

void sieve_stem_pack__neon(const sieve_conv_params *p, void *packed) {
    const int32_t c16 = sieve_round_up(p->out_c, 16), taps = stem_taps(p);
    neon_header *h = (neon_header *)packed;
    memset(h, 0, NEON_HEADER);
    char *table = (char *)packed + NEON_HEADER;
    arm_rq_pack_table(table, p->bias, p->multipliers, p->shifts, p->out_c, c16);
    int8_t *w = (int8_t *)(table + arm_rq_table_size(c16));
    memset(w, 0, arm_round_up_size((size_t)taps * c16, 64));
    int32_t safe = 1;
    for (int32_t oc = 0; oc < p->out_c; oc++) {
        for (int32_t t = 0; t < taps; t++) {
            w[(size_t)t * c16 + oc] = p->weights[(size_t)oc * taps + t];
            if (t % 2 == 1 && pair_overflows(p->weights[(size_t)oc * taps + t - 1], p->weights[(size_t)oc * taps + t])) safe = 0;
        }
    }
    h->safe = safe;
}

static size_t stem_offsets_size(const sieve_conv_params *p) { return arm_round_up_size((size_t)stem_taps(p) * 4, 64); }

size_t sieve_stem_scratch_size__neon(const sieve_conv_params *p) {
    return stem_offsets_size(p) + arm_round_up_size((size_t)sieve_conv_span_h(p) * (size_t)sieve_conv_span_w(p), 64);
}

// Taps t, t+1 (weights WA, WB) of one pixel (input bytes at X) into accumulators A0-A3.
#define STEM_PAIR(A0, A1, A2, A3, X, WA, WB)                                                           \
    do {                                                                                              \
        const int8x16_t xa = vld1q_dup_s8((X) + off[t]), xb = vld1q_dup_s8((X) + off[t + 1]);           \
        const int16x8_t lo = vmlal_s8(vmull_s8(vget_low_s8(xa), vget_low_s8(WA)), vget_low_s8(xb), vget_low_s8(WB)); \
        const int16x8_t hi = vmlal_high_s8(vmull_high_s8(xa, WA), xb, WB);                              \
        A0 = vaddw_s16(A0, vget_low_s16(lo)), A1 = vaddw_high_s16(A1, lo);                              \
        A2 = vaddw_s16(A2, vget_low_s16(hi)), A3 = vaddw_high_s16(A3, hi);                              \
    } while (0)

#define STEM_ONE(A0, A1, A2, A3, X, WA)                                                                \
    do {                                                                                              \
        const int8x16_t xa = vld1q_dup_s8((X) + off[t]);                                               \
        const int16x8_t lo = vmull_s8(vget_low_s8(xa), vget_low_s8(WA)), hi = vmull_high_s8(xa, WA);   \
        A0 = vaddw_s16(A0, vget_low_s16(lo)), A1 = vaddw_high_s16(A1, lo);                              \
        A2 = vaddw_s16(A2, vget_low_s16(hi)), A3 = vaddw_high_s16(A3, hi);                              \
    } while (0)

// Two pixels at a time (x0, x1: their windows' first bytes), sharing each weight load; the two
// pixels' chains interleave, which the in-order A53 needs. Returns the requantised bytes of both.
static inline __attribute__((always_inline)) void stem_two(const int8_t *x0, const int8_t *x1, const int8_t *wc, int32_t c16,
                                                           int32_t taps, const int32_t *off, int32x4_t b0, int32x4_t b1,
                                                           int32x4_t b2, int32x4_t b3, int32x4_t *r0, int32x4_t *r1,
                                                           const int PAIRED) {
    int32x4_t a0 = b0, a1 = b1, a2 = b2, a3 = b3, c0 = b0, c1 = b1, c2 = b2, c3 = b3;
    int32_t t = 0;
    if (PAIRED) {
        for (; t + 2 <= taps; t += 2) {
            const int8x16_t wa = vld1q_s8(wc + (size_t)t * c16), wb = vld1q_s8(wc + (size_t)(t + 1) * c16);
            STEM_PAIR(a0, a1, a2, a3, x0, wa, wb);
            STEM_PAIR(c0, c1, c2, c3, x1, wa, wb);
        }
    }
    for (; t < taps; t++) {
        const int8x16_t wa = vld1q_s8(wc + (size_t)t * c16);
        STEM_ONE(a0, a1, a2, a3, x0, wa);
        STEM_ONE(c0, c1, c2, c3, x1, wa);
    }
    r0[0] = a0, r0[1] = a1, r0[2] = a2, r0[3] = a3;
    r1[0] = c0, r1[1] = c1, r1[2] = c2, r1[3] = c3;
}

static inline __attribute__((always_inline)) void stem_rows(const sieve_conv_params *p, const arm_rq_view *rq, const int8_t *w,
                                                            const int8_t *band, const int32_t *off, const int PAIRED) {
    const int32_t c16 = sieve_round_up(p->out_c, 16), taps = stem_taps(p), span_w = sieve_conv_span_w(p);
    const arm_out_stage out = arm_out(p->output_zero_point, p->act_min, p->act_max);
    const int32_t pixels = p->out_h * p->out_w;
    for (int32_t cb = 0; cb < p->out_c; cb += 16) {
        const int32x4_t b0 = vld1q_s32(rq->bias + cb), b1 = vld1q_s32(rq->bias + cb + 4);
        const int32x4_t b2 = vld1q_s32(rq->bias + cb + 8), b3 = vld1q_s32(rq->bias + cb + 12);
        const int32_t nch = arm_min(16, p->out_c - cb), fast = rq->fast[cb / 16];
        const arm_rq_block k = arm_rq_block_at(rq, cb);
        const int8_t *wc = w + cb;
        int32_t oy = 0, ox = 0;  // of pixel `pix`
        for (int32_t pix = 0; pix < pixels; pix += 2) {
            // the second pixel: the next one (maybe on the next row), or the first again at the end
            const int32_t oy1 = ox + 1 < p->out_w ? oy : oy + 1, ox1 = ox + 1 < p->out_w ? ox + 1 : 0;
            const int two = pix + 1 < pixels;
            const int8_t *x0 = band + (ptrdiff_t)oy * p->stride_h * span_w + (ptrdiff_t)ox * p->stride_w;
            const int8_t *x1 = two ? band + (ptrdiff_t)oy1 * p->stride_h * span_w + (ptrdiff_t)ox1 * p->stride_w : x0;
            int32x4_t r0[4], r1[4];
            stem_two(x0, x1, wc, c16, taps, off, b0, b1, b2, b3, r0, r1, PAIRED);
            int8_t *o0 = p->output + (size_t)pix * p->out_c + cb;
            if (fast && nch == 16) {
                vst1q_s8(o0, arm_rq_fast(r0[0], r0[1], r0[2], r0[3], k.m0, k.m1, k.m2, k.m3, k.r0, k.r1, k.r2, k.r3, &out));
                if (two) vst1q_s8(o0 + p->out_c, arm_rq_fast(r1[0], r1[1], r1[2], r1[3], k.m0, k.m1, k.m2, k.m3, k.r0, k.r1, k.r2, k.r3, &out));
            } else {
                arm_store(o0, arm_rq16(rq, cb, r0[0], r0[1], r0[2], r0[3], &out), nch);
                if (two) arm_store(o0 + p->out_c, arm_rq16(rq, cb, r1[0], r1[1], r1[2], r1[3], &out), nch);
            }
            if (two) oy = oy1, ox = ox1;
            if (++ox == p->out_w) ox = 0, oy++;
        }
    }
}

void sieve_stem_s8__neon(const sieve_conv_params *p, const void *packed, void *scratch) {
    if (p->out_h <= 0 || p->out_w <= 0) return;
    const neon_header *h = (const neon_header *)packed;
    const int32_t c16 = sieve_round_up(p->out_c, 16), span_w = sieve_conv_span_w(p);
    const char *table = (const char *)packed + NEON_HEADER;
    const arm_rq_view rq = arm_rq_table(table, c16);
    const int8_t *w = (const int8_t *)(table + arm_rq_table_size(c16));
    int32_t *off = (int32_t *)scratch;
    int8_t *band = (int8_t *)scratch + stem_offsets_size(p);
    sieve_pad_input(p, 0, (uint8_t *)band);
    for (int32_t ky = 0, t = 0; ky < p->kernel_h; ky++) {
        for (int32_t kx = 0; kx < p->kernel_w; kx++, t++) off[t] = ky * span_w + kx;
    }
    if (h->safe) stem_rows(p, &rq, w, band, off, 1);
    else stem_rows(p, &rq, w, band, off, 0);
}

SIEVE_TARGET_END
#endif
