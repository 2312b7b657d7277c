// Convolution (groups = 1) and fully connected on AVX2: vpmaddwd of int16 inputs by int16 weights
// (the K4 layout widened at pack time), exact with signed inputs, no offset. A ymm accumulator holds
// 4 output channels x 2 partial sums; a 16-channel block is four of them, reduced with vphaddd at
// the end. A tile is up to 3 output pixels x 16 channels (the 16 ymm registers allow no more).
#if defined(__x86_64__)
#include <string.h>
#include "sieve_isa.h"
#include "sieve_pack.h"
#include "sieve_target.h"

// Before any target region: gcc binds each intrinsic to the target in force where it is declared.
#include <immintrin.h>

SIEVE_TARGET_BEGIN("avx2")
#include "requantize_avx2.h"

#define MAX_TILE_PIXELS 3

static inline int32_t conv_k(const sieve_conv_params *p) { return sieve_conv_k4(p); }

// The widened K4 layout, then two sieve_rq_block_avx2 per 16 output channels.
static size_t packed_size(int32_t out_c, int32_t k) {
    return sieve_pack_k4_s16_size(out_c, k) + (size_t)sieve_round_up(out_c, 16) / 8 * sizeof(sieve_rq_block_avx2);
}

static const sieve_rq_block_avx2 *rq_blocks(const void *packed, int32_t out_c, int32_t k) {
    return (const sieve_rq_block_avx2 *)((const uint8_t *)packed + sieve_pack_k4_s16_size(out_c, k));
}

// Fills the requantisation blocks after weights already packed.
static void pack_blocks(int32_t out_c, int32_t k, void *packed) {
    const sieve_k4_view v = sieve_k4(packed, out_c, k);
    sieve_rq_block_avx2 *blocks = (sieve_rq_block_avx2 *)rq_blocks(packed, out_c, k);
    for (int32_t b = 0; b < v.ocp / 8; b++) sieve_rq_block_avx2_fill(blocks + b, v.multipliers + 8 * b, v.shifts + 8 * b);
}

// Four int8 inputs as int16, in every 64-bit lane.
static inline __m256i broadcast4(const int8_t *x) {
    int32_t four;
    memcpy(&four, x, 4);
    return _mm256_broadcastq_epi64(_mm_cvtepi8_epi16(_mm_cvtsi32_si128(four)));
}

// acc[0..3] (channel pairs of partial sums) + bias -> 16 int8 outputs (n of them stored).
static inline void finish16(const __m256i acc[4], const int32_t *bias, const int32_t *multipliers, const sieve_rq_block_avx2 *blocks,
                            const __m256i zlh[3], int8_t *out, int32_t n) {
    int8_t bytes[16];
    for (int half = 0; half < 2; half++) {
        __m256i sum = _mm256_hadd_epi32(acc[2 * half], acc[2 * half + 1]);  // channels 0 1 4 5 | 2 3 6 7
        sum = _mm256_permute4x64_epi64(sum, 0xD8);
        sum = _mm256_add_epi32(sum, _mm256_loadu_si256((const __m256i *)(bias + 8 * half)));
        _mm_storel_epi64((__m128i *)(bytes + 8 * half), sieve_rq8_avx2(sum, multipliers + 8 * half, blocks + half, zlh[0], zlh[1], zlh[2]));
    }
    memcpy(out, bytes, (size_t)n);
}

static inline __attribute__((always_inline)) void conv_tile(const sieve_conv_walk *t, const int8_t *x, const int16_t *w,
                                                            __m256i acc[MAX_TILE_PIXELS][4], const int pixels) {
    for (int j = 0; j < pixels; j++) for (int q = 0; q < 4; q++) acc[j][q] = _mm256_setzero_si256();
    for (int32_t ky = 0; ky < t->taps_h; ky++) {
        for (int32_t kx = 0; kx < t->taps_w; kx++) {
            const int8_t *xt = x + ky * t->row_stride + kx * t->tap_stride;
            const int16_t *wt = w + (size_t)(ky * t->taps_w + kx) * t->groups * 64;
            for (int32_t g = 0; g < t->groups; g++) {
                __m256i wv[4];
                for (int q = 0; q < 4; q++) wv[q] = _mm256_load_si256((const __m256i *)(wt + 64 * g + 16 * q));
                for (int j = 0; j < pixels; j++) {
                    const __m256i xb = broadcast4(xt + j * t->pixel_stride + 4 * g);
                    for (int q = 0; q < 4; q++) acc[j][q] = _mm256_add_epi32(acc[j][q], _mm256_madd_epi16(wv[q], xb));
                }
            }
        }
    }
}

static void conv_tile_any(const sieve_conv_walk *t, const int8_t *x, const int16_t *w, __m256i acc[MAX_TILE_PIXELS][4], int pixels) {
    if (pixels == 3) conv_tile(t, x, w, acc, 3);
    else if (pixels == 2) conv_tile(t, x, w, acc, 2);
    else conv_tile(t, x, w, acc, 1);
}

size_t sieve_conv_packed_size__avx2(const sieve_conv_params *p) { return packed_size(p->out_c, conv_k(p)); }

void sieve_conv_pack__avx2(const sieve_conv_params *p, void *packed) {
    sieve_pack_conv_k4(p, 0, 2, packed);
    pack_blocks(p->out_c, conv_k(p), packed);
}

size_t sieve_conv_scratch_size__avx2(const sieve_conv_params *p) {
    return sieve_conv_stage_size(p);
}

void sieve_conv_s8__avx2(const sieve_conv_params *p, const void *packed, void *scratch) {
    const int32_t k = conv_k(p);
    const sieve_k4_view v = sieve_k4(packed, p->out_c, k);
    const int16_t *weights = (const int16_t *)v.weights;
    const sieve_rq_block_avx2 *blocks = rq_blocks(packed, p->out_c, k);
    const int8_t *staged = (const int8_t *)scratch;
    const sieve_conv_walk t = sieve_conv_stage(p, 0, (uint8_t *)scratch);
    const __m256i zlh[3] = {_mm256_set1_epi32(p->output_zero_point), _mm256_set1_epi32(p->act_min), _mm256_set1_epi32(p->act_max)};
    for (int32_t oy = 0; oy < p->out_h; oy++) {
        const int8_t *x_row = staged + (size_t)oy * t.pixel_row_stride;
        int8_t *out_row = p->output + (size_t)oy * p->out_w * p->out_c;
        for (int32_t oc = 0; oc < v.ocp; oc += 16) {
            const int32_t n = p->out_c - oc < 16 ? p->out_c - oc : 16;
            for (int32_t ox = 0; ox < p->out_w; ox += MAX_TILE_PIXELS) {
                const int pixels = p->out_w - ox < MAX_TILE_PIXELS ? p->out_w - ox : MAX_TILE_PIXELS;
                __m256i acc[MAX_TILE_PIXELS][4];
                conv_tile_any(&t, x_row + (size_t)ox * t.pixel_stride, weights + (size_t)oc * v.k4, acc, pixels);
                for (int j = 0; j < pixels; j++) {
                    finish16(acc[j], v.bias + oc, v.multipliers + oc, blocks + oc / 8, zlh, out_row + (size_t)(ox + j) * p->out_c + oc, n);
                }
            }
        }
    }
}

size_t sieve_fc_packed_size__avx2(const sieve_fc_params *p) { return packed_size(p->out_c, p->k); }

void sieve_fc_pack__avx2(const sieve_fc_params *p, void *packed) {
    sieve_pack_k4_s16(p->weights, p->bias, p->multipliers, p->shifts, p->out_c, p->k, packed);
    pack_blocks(p->out_c, p->k, packed);
}

size_t sieve_fc_scratch_size__avx2(const sieve_fc_params *p) { return (size_t)sieve_round_up(p->k, 4); }

void sieve_fc_s8__avx2(const sieve_fc_params *p, const void *packed, void *scratch, int32_t oc_begin, int32_t oc_end) {
    const sieve_k4_view v = sieve_k4(packed, p->out_c, p->k);
    const int16_t *weights = (const int16_t *)v.weights;
    const sieve_rq_block_avx2 *blocks = rq_blocks(packed, p->out_c, p->k);
    int8_t *x = (int8_t *)scratch;
    memcpy(x, p->input, (size_t)p->k);
    for (int32_t i = p->k; i < v.k4; i++) x[i] = 0;
    const __m256i zlh[3] = {_mm256_set1_epi32(p->output_zero_point), _mm256_set1_epi32(p->act_min), _mm256_set1_epi32(p->act_max)};
    for (int32_t oc = oc_begin; oc < oc_end; oc += 16) {
        const int16_t *w = weights + (size_t)oc * v.k4;
        __m256i acc[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256()};
        for (int32_t g = 0; g < v.k4 / 4; g++) {
            const __m256i xb = broadcast4(x + 4 * g);
            for (int q = 0; q < 4; q++) {
                acc[q] = _mm256_add_epi32(acc[q], _mm256_madd_epi16(_mm256_load_si256((const __m256i *)(w + 64 * g + 16 * q)), xb));
            }
        }
        const int32_t n = oc_end - oc < 16 ? oc_end - oc : 16;
        finish16(acc, v.bias + oc, v.multipliers + oc, blocks + oc / 8, zlh, p->output + oc, n);
    }
}

// 32 vpmaddwd + vpaddd pairs (ymm, 16 MACs each) per iteration, on registers only. In assembly:
// in C the compiler would compute the loop-invariant product once. Products go to ymm8-13 in
// turn, sums to ymm0-7.
#define MADD(t, a) "vpmaddwd %%ymm14, %%ymm15, %%ymm" #t "\n\t" "vpaddd %%ymm" #t ", %%ymm" #a ", %%ymm" #a "\n\t"
uint64_t sieve_peak_macs__avx2(uint64_t iterations) {
    for (uint64_t n = 0; n < iterations; n++) {
        __asm__ volatile(
            MADD(8, 0) MADD(9, 1) MADD(10, 2) MADD(11, 3) MADD(12, 4) MADD(13, 5) MADD(8, 6) MADD(9, 7)
            MADD(10, 0) MADD(11, 1) MADD(12, 2) MADD(13, 3) MADD(8, 4) MADD(9, 5) MADD(10, 6) MADD(11, 7)
            MADD(12, 0) MADD(13, 1) MADD(8, 2) MADD(9, 3) MADD(10, 4) MADD(11, 5) MADD(12, 6) MADD(13, 7)
            MADD(8, 0) MADD(9, 1) MADD(10, 2) MADD(11, 3) MADD(12, 4) MADD(13, 5) MADD(8, 6) MADD(9, 7)
            :
            :
            : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13");
    }
    return iterations * 32 * 16;
}
#undef MADD

SIEVE_TARGET_END
#endif
