// Depthwise convolution (depth multiplier 1) on AVX2: vpmaddwd over pairs of taps. Input rows are
// staged padded into a ring of kernel_h rows and widened to int16 as they are loaded (vpmovsxbw
// from memory); for a pixel, 16 channels and taps t, t + 1, vpunpcklwd /
// vpunpckhwd of the two taps' int16 inputs give (x_t, x_t+1) pairs of channels 0-3, 8-11 and 4-7,
// 12-15, and vpmaddwd by the weights packed in that order, (w_t, w_t+1) as int16, adds both products
// into each channel's int32 lane: 32 MACs for 2 loads, 2 shuffles, 2 vpmaddwd, 2 vpaddd (vpmulld
// took 8 MACs per sign extension, multiply and add). An odd last tap pairs with a zero weight.
// Four pixels per weight load. Multipliers > 1 stay scalar.
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

// Packed (cp = out_c rounded up to 16, pairs = taps rounded up to 2, / 2):
//   int32 bias[cp], multiplier[cp], shift[cp]
//   int16 weights[pairs][cp / 16][2][8][2]   half 0: channels 0-3, 8-11; half 1: 4-7, 12-15
//   sieve_rq_block_avx2[cp / 8], sieve_rq32_block_avx2[cp / 16]
typedef struct {
    const int32_t *bias, *multipliers, *shifts;
    const int16_t *weights;
    const sieve_rq_block_avx2 *blocks;
    const sieve_rq32_block_avx2 *blocks32;
    int32_t cp, pairs;
} dw_view;

static dw_view dw(const void *packed, const sieve_conv_params *p) {
    dw_view v;
    v.cp = sieve_round_up(p->out_c, 16);
    v.pairs = (p->kernel_h * p->kernel_w + 1) / 2;
    v.bias = (const int32_t *)packed;
    v.multipliers = v.bias + v.cp;
    v.shifts = v.multipliers + v.cp;
    v.weights = (const int16_t *)(v.shifts + v.cp);
    v.blocks = (const sieve_rq_block_avx2 *)(v.weights + (size_t)v.pairs * v.cp * 2);
    v.blocks32 = (const sieve_rq32_block_avx2 *)(v.blocks + v.cp / 8);
    return v;
}

size_t sieve_dwconv_packed_size__avx2(const sieve_conv_params *p) {
    if (p->out_c != p->in_c) return 0;
    const size_t cp = (size_t)sieve_round_up(p->out_c, 16), pairs = (size_t)(p->kernel_h * p->kernel_w + 1) / 2;
    return cp * 3 * sizeof(int32_t) + pairs * cp * 2 * sizeof(int16_t) + cp / 8 * sizeof(sieve_rq_block_avx2) +
           cp / 16 * sizeof(sieve_rq32_block_avx2);
}

// The channel of lane i (0-7) of half h of a 16-channel block.
static inline int32_t lane_channel(int h, int i) { return (i < 4 ? i : i + 4) + 4 * h; }

void sieve_dwconv_pack__avx2(const sieve_conv_params *p, void *packed) {
    const dw_view v = dw(packed, p);
    const int32_t taps = p->kernel_h * p->kernel_w;
    int32_t *bias = (int32_t *)v.bias, *m = (int32_t *)v.multipliers, *s = (int32_t *)v.shifts;
    for (int32_t c = 0; c < v.cp; c++) {
        bias[c] = c < p->out_c ? p->bias[c] : 0;
        m[c] = c < p->out_c ? p->multipliers[c] : 1 << 30;
        s[c] = c < p->out_c ? p->shifts[c] : 31;
    }
    int16_t *w = (int16_t *)v.weights;
    for (int32_t pair = 0; pair < v.pairs; pair++) {
        for (int32_t b = 0; b < v.cp / 16; b++) {
            for (int h = 0; h < 2; h++) {
                for (int i = 0; i < 8; i++) {
                    const int32_t c = 16 * b + lane_channel(h, i);
                    for (int t = 0; t < 2; t++) {
                        const int32_t tap = 2 * pair + t;
                        *w++ = (int16_t)(c < p->out_c && tap < taps ? p->weights[(size_t)tap * p->out_c + c] : 0);
                    }
                }
            }
        }
    }
    sieve_rq_block_avx2 *blocks = (sieve_rq_block_avx2 *)v.blocks;
    for (int32_t c = 0; c < v.cp; c += 8) sieve_rq_block_avx2_fill(blocks + c / 8, v.multipliers + c, v.shifts + c);
    sieve_rq32_block_avx2 *blocks32 = (sieve_rq32_block_avx2 *)v.blocks32;
    for (int32_t b = 0; b < v.cp / 16; b++) sieve_rq32_avx2_fill(blocks32 + b, v.shifts + 16 * b, p->out_c - 16 * b);
}

// Scratch: the tap offsets (int32, one more for the odd tap's partner), then a ring of kernel_h
// staged input rows (int8, padded; 64 bytes of slack each for the last channel block's 16-byte
// loads). Input row r of the span lives in slot r % kernel_h, so an output row's kernel_h rows are
// in distinct slots and each row is staged once. The ring stays in L1/L2 where a whole staged band
// (and its int16 copy) of a 112x112x96 layer spilled to memory.
static size_t offsets_size(const sieve_conv_params *p) { return (size_t)sieve_round_up((p->kernel_h * p->kernel_w + 1) * 4, 64); }
static size_t slot_size(const sieve_conv_params *p) { return (size_t)sieve_round_up(sieve_conv_span_w(p) * p->in_c, 64) + 64; }

size_t sieve_dwconv_scratch_size__avx2(const sieve_conv_params *p) { return offsets_size(p) + (size_t)p->kernel_h * slot_size(p); }

// Stages span row r of the band, padded with the zero point, into buffer `row`.
static void stage_row(const sieve_conv_params *p, int32_t r, int8_t *row) {
    sieve_conv_params one = *p;
    one.out_h = 1, one.stride_h = 1, one.kernel_h = 1, one.pad_top = p->pad_top - r;
    sieve_pad_input(&one, 0, (uint8_t *)row);
}

static inline __attribute__((always_inline)) void dw_pixels(const int8_t *x, const int32_t *offsets, int32_t pixel_stride,
                                                           const int16_t *w, int32_t pairs, int32_t pair_stride, __m256i acc[2 * PIXELS],
                                                           const int pixels) {
    for (int j = 0; j < 2 * pixels; j++) acc[j] = _mm256_setzero_si256();
    for (int32_t pair = 0; pair < pairs; pair++) {
        const __m256i w0 = _mm256_load_si256((const __m256i *)(w + (size_t)pair * pair_stride));
        const __m256i w1 = _mm256_load_si256((const __m256i *)(w + (size_t)pair * pair_stride + 16));
        const int8_t *x0 = x + offsets[2 * pair], *x1 = x + offsets[2 * pair + 1];
        for (int j = 0; j < pixels; j++) {
            // vpmovsxbw from memory: one instruction, as the load of a pre-widened int16 copy was.
            const __m256i a = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(x0 + (size_t)j * pixel_stride)));
            const __m256i b = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(x1 + (size_t)j * pixel_stride)));
            acc[2 * j] = _mm256_add_epi32(acc[2 * j], _mm256_madd_epi16(_mm256_unpacklo_epi16(a, b), w0));
            acc[2 * j + 1] = _mm256_add_epi32(acc[2 * j + 1], _mm256_madd_epi16(_mm256_unpackhi_epi16(a, b), w1));
        }
    }
}

void sieve_dwconv_s8__avx2(const sieve_conv_params *p, const void *packed, void *scratch) {
    const dw_view v = dw(packed, p);
    const int32_t c = p->in_c, taps = p->kernel_h * p->kernel_w, kh = p->kernel_h;
    const int32_t pixel_stride = p->stride_w * c;
    const size_t slot = slot_size(p);
    int32_t *offsets = (int32_t *)scratch;
    int8_t *ring = (int8_t *)scratch + offsets_size(p);
    int32_t staged = 0;  // span rows below this are staged
    const __m256i zlh[3] = {_mm256_set1_epi32(p->output_zero_point), _mm256_set1_epi32(p->act_min), _mm256_set1_epi32(p->act_max)};
    const __m256i zp16 = _mm256_set1_epi16((int16_t)p->output_zero_point);
    const __m256i lo8 = _mm256_set1_epi8((int8_t)p->act_min), hi8 = _mm256_set1_epi8((int8_t)p->act_max);
    const int32_t pair_stride = v.cp * 2;
    for (int32_t oy = 0; oy < p->out_h; oy++) {
        const int32_t top = oy * p->stride_h;
        if (staged < top) staged = top;
        for (; staged < top + kh; staged++) stage_row(p, staged, ring + (size_t)(staged % kh) * slot);
        for (int32_t t = 0; t < taps; t++) offsets[t] = (int32_t)((size_t)((top + t / p->kernel_w) % kh) * slot) + (t % p->kernel_w) * c;
        offsets[taps] = offsets[0];  // the odd tap's partner: any valid input, its weight is 0
        const int8_t *x_row = ring;
        int8_t *out_row = p->output + (size_t)oy * p->out_w * c;
        for (int32_t c0 = 0; c0 < c; c0 += 16) {
            const int32_t n = c - c0 >= 16 ? 16 : c - c0;
            const int16_t *w = v.weights + (size_t)c0 * 2;
            const __m256i bias0 = _mm256_loadu_si256((const __m256i *)(v.bias + c0));
            const __m256i bias1 = _mm256_loadu_si256((const __m256i *)(v.bias + c0 + 8));
            const sieve_rq32_block_avx2 *q = v.blocks32 + c0 / 16;
            for (int32_t ox = 0; ox < p->out_w; ox += PIXELS) {
                const int pixels = p->out_w - ox < PIXELS ? p->out_w - ox : PIXELS;
                __m256i acc[2 * PIXELS];
                const int8_t *xp = x_row + (size_t)ox * pixel_stride + c0;
                if (pixels == PIXELS) dw_pixels(xp, offsets, pixel_stride, w, v.pairs, pair_stride, acc, PIXELS);
                else if (pixels == 3) dw_pixels(xp, offsets, pixel_stride, w, v.pairs, pair_stride, acc, 3);
                else if (pixels == 2) dw_pixels(xp, offsets, pixel_stride, w, v.pairs, pair_stride, acc, 2);
                else dw_pixels(xp, offsets, pixel_stride, w, v.pairs, pair_stride, acc, 1);
                for (int j = 0; j < pixels; j++) {
                    // Lanes: acc[2j] channels 0-3 | 8-11, acc[2j+1] channels 4-7 | 12-15.
                    const __m256i r0 = _mm256_add_epi32(_mm256_permute2x128_si256(acc[2 * j], acc[2 * j + 1], 0x20), bias0);
                    const __m256i r1 = _mm256_add_epi32(_mm256_permute2x128_si256(acc[2 * j], acc[2 * j + 1], 0x31), bias1);
                    int8_t *out = out_row + (size_t)(ox + j) * c + c0;
                    if (q->fast) {
                        const __m256i m0 = _mm256_loadu_si256((const __m256i *)(v.multipliers + c0));
                        const __m256i m1 = _mm256_loadu_si256((const __m256i *)(v.multipliers + c0 + 8));
                        const __m256i s0 = sieve_rq32_avx2(r0, m0, sieve_odd_lanes(m0), _mm256_load_si256((const __m256i *)q->round),
                                                           _mm256_load_si256((const __m256i *)q->shift));
                        const __m256i s1 = sieve_rq32_avx2(r1, m1, sieve_odd_lanes(m1), _mm256_load_si256((const __m256i *)(q->round + 8)),
                                                           _mm256_load_si256((const __m256i *)(q->shift + 8)));
                        sieve_store_n_avx2(out, sieve_narrow16_avx2(s0, s1, zp16, lo8, hi8), n);
                    } else {
                        const __m128i lo = sieve_rq8_avx2(r0, v.multipliers + c0, v.blocks + c0 / 8, zlh[0], zlh[1], zlh[2]);
                        const __m128i hi = sieve_rq8_avx2(r1, v.multipliers + c0 + 8, v.blocks + c0 / 8 + 1, zlh[0], zlh[1], zlh[2]);
                        sieve_store_n_avx2(out, _mm_unpacklo_epi64(lo, hi), n);
                    }
                }
            }
        }
    }
}

SIEVE_TARGET_END
#endif
