// Depthwise convolution (depth multiplier 1) on AVX2: vpmaddwd over pairs of horizontally adjacent
// taps. Each input row is staged once, padded, as a row of int16 *column pairs*: entry ix holds, per
// channel, (x[ix], x[ix + 1]), channels 0-7 in one 32-byte half and 8-15 in the other. Taps kx, kx + 1
// of an output pixel are then one aligned load and one vpmaddwd by (w_kx, w_kx+1) per 8 channels,
// with no shuffle in the tap loop (the shuffles, two vpunpck and two vpmovsxbw per pair of taps and
// pixel, had capped the earlier form at about half the vpmaddwd rate). An odd last tap of a row
// pairs with a zero weight. Accumulators start at the bias, stay in channel order, and are
// requantised in 32 bits (requantize_avx2.h). Staged rows live in a ring of kernel_h slots.
// Multipliers > 1 stay scalar.
#if defined(__x86_64__)
#include "sieve_isa.h"
#include "sieve_pack.h"
#include "sieve_target.h"

// Before any target region: gcc binds each intrinsic to the target in force where it is declared.
#include <immintrin.h>

SIEVE_TARGET_BEGIN("avx2")
#include <string.h>
#include "requantize_avx2.h"

#define PIXELS 4

// Packed (cp = out_c rounded up to 16, pw = kernel_w rounded up to 2, / 2):
//   int32 bias[cp], multiplier[cp], shift[cp]
//   int16 weights[kernel_h][pw][cp / 16][16 channels][2 taps]
//   sieve_rq_block_avx2[cp / 8], sieve_rq32_block_avx2[cp / 16]
typedef struct {
    const int32_t *bias, *multipliers, *shifts;
    const int16_t *weights;
    const sieve_rq_block_avx2 *blocks;
    const sieve_rq32_block_avx2 *blocks32;
    int32_t cp, pw;
} dw_view;

static dw_view dw(const void *packed, const sieve_conv_params *p) {
    dw_view v;
    v.cp = sieve_round_up(p->out_c, 16);
    v.pw = (p->kernel_w + 1) / 2;
    v.bias = (const int32_t *)packed;
    v.multipliers = v.bias + v.cp;
    v.shifts = v.multipliers + v.cp;
    v.weights = (const int16_t *)(v.shifts + v.cp);
    v.blocks = (const sieve_rq_block_avx2 *)(v.weights + (size_t)p->kernel_h * v.pw * v.cp * 2);
    v.blocks32 = (const sieve_rq32_block_avx2 *)(v.blocks + v.cp / 8);
    return v;
}

size_t sieve_dwconv_packed_size__avx2(const sieve_conv_params *p) {
    if (p->out_c != p->in_c) return 0;
    const size_t cp = (size_t)sieve_round_up(p->out_c, 16), pw = (size_t)(p->kernel_w + 1) / 2;
    return cp * 3 * sizeof(int32_t) + (size_t)p->kernel_h * pw * cp * 2 * sizeof(int16_t) + cp / 8 * sizeof(sieve_rq_block_avx2) +
           cp / 16 * sizeof(sieve_rq32_block_avx2);
}

void sieve_dwconv_pack__avx2(const sieve_conv_params *p, void *packed) {
    const dw_view v = dw(packed, p);
    int32_t *bias = (int32_t *)v.bias, *m = (int32_t *)v.multipliers, *s = (int32_t *)v.shifts;
    for (int32_t c = 0; c < v.cp; c++) {
        bias[c] = c < p->out_c ? p->bias[c] : 0;
        m[c] = c < p->out_c ? p->multipliers[c] : 1 << 30;
        s[c] = c < p->out_c ? p->shifts[c] : 31;
    }
    int16_t *w = (int16_t *)v.weights;
    for (int32_t ky = 0; ky < p->kernel_h; ky++) {
        for (int32_t k = 0; k < v.pw; k++) {
            for (int32_t c = 0; c < v.cp; c++) {
                for (int32_t t = 0; t < 2; t++) {
                    const int32_t kx = 2 * k + t;
                    *w++ = (int16_t)(c < p->out_c && kx < p->kernel_w ? p->weights[((size_t)ky * p->kernel_w + kx) * p->out_c + c] : 0);
                }
            }
        }
    }
    sieve_rq_block_avx2 *blocks = (sieve_rq_block_avx2 *)v.blocks;
    for (int32_t c = 0; c < v.cp; c += 8) sieve_rq_block_avx2_fill(blocks + c / 8, v.multipliers + c, v.shifts + c);
    sieve_rq32_block_avx2 *blocks32 = (sieve_rq32_block_avx2 *)v.blocks32;
    for (int32_t b = 0; b < v.cp / 16; b++) sieve_rq32_avx2_fill(blocks32 + b, v.shifts + 16 * b, p->out_c - 16 * b);
}

// Scratch: a ring of kernel_h staged rows of column pairs ([span_w][cp] int16 pairs, 4 * cp bytes a
// column), then one int8 row padded by sieve_pad_input ([span_w + 1][in_c], the extra column the
// partner of the last; 64 bytes of slack for the last channel block's 16-byte loads). Input row r
// of the span lives in slot r % kernel_h, so an output row's kernel_h rows are in distinct slots and
// each row is staged once.
static size_t slot_size(const sieve_conv_params *p) { return (size_t)sieve_conv_span_w(p) * sieve_round_up(p->in_c, 16) * 4; }
static size_t bytes_size(const sieve_conv_params *p) {
    return (size_t)sieve_round_up((sieve_conv_span_w(p) + 1) * p->in_c, 64) + 64;
}

size_t sieve_dwconv_scratch_size__avx2(const sieve_conv_params *p) { return (size_t)p->kernel_h * slot_size(p) + bytes_size(p); }

// Stages span row r of the band into `pairs`. With an even horizontal stride every tap pair an
// output reads starts at an even column, so only those are made.
static void stage_row(const sieve_conv_params *p, int32_t r, int8_t *bytes, int16_t *pairs) {
    sieve_conv_params one = *p;
    const int32_t span_w = sieve_conv_span_w(p), c = p->in_c, cp = sieve_round_up(c, 16);
    one.out_h = 1, one.stride_h = 1, one.kernel_h = 1, one.pad_top = p->pad_top - r;
    one.out_w = span_w + 1, one.stride_w = 1, one.kernel_w = 1;  // the extra column: the last pair's partner
    sieve_pad_input(&one, 0, (uint8_t *)bytes);
    const int32_t step = p->stride_w % 2 == 0 ? 2 : 1;
    for (int32_t ix = 0; ix < span_w; ix += step) {
        const int8_t *x = bytes + (size_t)ix * c;
        int16_t *out = pairs + (size_t)ix * cp * 2;
        for (int32_t c0 = 0; c0 < cp; c0 += 16) {
            const __m256i a = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(x + c0)));
            const __m256i b = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(x + c + c0)));
            const __m256i lo = _mm256_unpacklo_epi16(a, b), hi = _mm256_unpackhi_epi16(a, b);  // 0-3 | 8-11, 4-7 | 12-15
            _mm256_storeu_si256((__m256i *)(out + 2 * c0), _mm256_permute2x128_si256(lo, hi, 0x20));
            _mm256_storeu_si256((__m256i *)(out + 2 * c0 + 16), _mm256_permute2x128_si256(lo, hi, 0x31));
        }
    }
}

// acc[2j], acc[2j + 1]: channels 0-7, 8-15 of pixel j. Row ky of the kernel is ring slot
// (first + ky) % kh, where the block's first pair column of the group's first pixel is `offset`
// int16 in; strides are in int16: pixel_stride from pixel to pixel, pair_stride from tap pair to tap
// pair (2 columns), w_stride from one weight pair to the next.
static inline __attribute__((always_inline)) void dw_pixels(const int8_t *ring, size_t slot, int32_t first, size_t offset, int32_t kh,
                                                           int32_t pw, size_t pixel_stride,
                                                           size_t pair_stride, const int16_t *w, size_t w_stride, __m256i bias0,
                                                           __m256i bias1, __m256i acc[2 * PIXELS], const int pixels) {
    for (int j = 0; j < pixels; j++) acc[2 * j] = bias0, acc[2 * j + 1] = bias1;
    for (int32_t ky = 0, r = first; ky < kh; ky++, r = r + 1 == kh ? 0 : r + 1) {
        const int16_t *x = (const int16_t *)(ring + (size_t)r * slot) + offset;
        for (int32_t k = 0; k < pw; k++, w += w_stride, x += pair_stride) {
            const __m256i w0 = _mm256_load_si256((const __m256i *)w);
            const __m256i w1 = _mm256_load_si256((const __m256i *)(w + 16));
            for (int j = 0; j < pixels; j++) {
                const int16_t *xj = x + (size_t)j * pixel_stride;
                acc[2 * j] = _mm256_add_epi32(acc[2 * j], _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)xj), w0));
                acc[2 * j + 1] = _mm256_add_epi32(acc[2 * j + 1], _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)(xj + 16)), w1));
            }
        }
    }
}

void sieve_dwconv_s8__avx2(const sieve_conv_params *p, const void *packed, void *scratch) {
    const dw_view v = dw(packed, p);
    const int32_t c = p->in_c, kh = p->kernel_h, cp = v.cp;
    const size_t slot = slot_size(p);
    int8_t *bytes = (int8_t *)scratch + (size_t)kh * slot;
    const int8_t *ring = (const int8_t *)scratch;
    int32_t staged = 0;  // span rows below this are staged
    const __m256i zlh[3] = {_mm256_set1_epi32(p->output_zero_point), _mm256_set1_epi32(p->act_min), _mm256_set1_epi32(p->act_max)};
    const __m256i zp16 = _mm256_set1_epi16((int16_t)p->output_zero_point);
    const __m256i lo8 = _mm256_set1_epi8((int8_t)p->act_min), hi8 = _mm256_set1_epi8((int8_t)p->act_max);
    const size_t pixel_stride = (size_t)p->stride_w * cp * 2, pair_stride = (size_t)cp * 4, w_stride = (size_t)cp * 2;
    for (int32_t oy = 0; oy < p->out_h; oy++) {
        const int32_t top = oy * p->stride_h;
        if (staged < top) staged = top;
        for (; staged < top + kh; staged++) stage_row(p, staged, bytes, (int16_t *)((int8_t *)scratch + (size_t)(staged % kh) * slot));
        int8_t *out_row = p->output + (size_t)oy * p->out_w * c;
        for (int32_t c0 = 0; c0 < c; c0 += 16) {
            const int32_t n = c - c0 >= 16 ? 16 : c - c0;
            const int16_t *w = v.weights + (size_t)c0 * 2;
            const __m256i bias0 = _mm256_loadu_si256((const __m256i *)(v.bias + c0));
            const __m256i bias1 = _mm256_loadu_si256((const __m256i *)(v.bias + c0 + 8));
            const sieve_rq32_block_avx2 *q = v.blocks32 + c0 / 16;
            for (int32_t ox = 0; ox < p->out_w; ox += PIXELS) {
                const int pixels = p->out_w - ox < PIXELS ? p->out_w - ox : PIXELS;
                const size_t offset = (size_t)ox * pixel_stride + 2 * (size_t)c0;
                __m256i acc[2 * PIXELS];
                if (pixels == PIXELS) dw_pixels(ring, slot, top % kh, offset, kh, v.pw, pixel_stride, pair_stride, w, w_stride, bias0, bias1, acc, PIXELS);
                else if (pixels == 3) dw_pixels(ring, slot, top % kh, offset, kh, v.pw, pixel_stride, pair_stride, w, w_stride, bias0, bias1, acc, 3);
                else if (pixels == 2) dw_pixels(ring, slot, top % kh, offset, kh, v.pw, pixel_stride, pair_stride, w, w_stride, bias0, bias1, acc, 2);
                else dw_pixels(ring, slot, top % kh, offset, kh, v.pw, pixel_stride, pair_stride, w, w_stride, bias0, bias1, acc, 1);
                for (int j = 0; j < pixels; j++) {
                    int8_t *out = out_row + (size_t)(ox + j) * c + c0;
                    if (q->fast) {
                        const __m256i m0 = _mm256_loadu_si256((const __m256i *)(v.multipliers + c0));
                        const __m256i m1 = _mm256_loadu_si256((const __m256i *)(v.multipliers + c0 + 8));
                        const __m256i s0 = sieve_rq32_avx2(acc[2 * j], m0, sieve_odd_lanes(m0), _mm256_load_si256((const __m256i *)q->round),
                                                           _mm256_load_si256((const __m256i *)q->shift));
                        const __m256i s1 = sieve_rq32_avx2(acc[2 * j + 1], m1, sieve_odd_lanes(m1),
                                                           _mm256_load_si256((const __m256i *)(q->round + 8)),
                                                           _mm256_load_si256((const __m256i *)(q->shift + 8)));
                        sieve_store_n_avx2(out, sieve_narrow16_avx2(s0, s1, zp16, lo8, hi8), n);
                    } else {
                        const __m128i lo = sieve_rq8_avx2(acc[2 * j], v.multipliers + c0, v.blocks + c0 / 8, zlh[0], zlh[1], zlh[2]);
                        const __m128i hi = sieve_rq8_avx2(acc[2 * j + 1], v.multipliers + c0 + 8, v.blocks + c0 / 8 + 1, zlh[0], zlh[1], zlh[2]);
                        sieve_store_n_avx2(out, _mm_unpacklo_epi64(lo, hi), n);
                    }
                }
            }
        }
    }
}

SIEVE_TARGET_END
#endif
