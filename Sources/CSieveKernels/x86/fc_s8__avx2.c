// Fully connected on AVX2: vpmaddwd of int16 inputs by int16 weights (the K4 layout widened at pack
// time), exact with signed inputs, no offset. A ymm accumulator holds 4 output channels x 2 partial
// sums; a 16-channel block is four of them, reduced with vphaddd at the end.
#if defined(__x86_64__)
#include <string.h>
#include "sieve_isa.h"
#include "sieve_pack.h"
#include "sieve_target.h"

// Before any target region: gcc binds each intrinsic to the target in force where it is declared.
#include <immintrin.h>

SIEVE_TARGET_BEGIN("avx2")
#include "requantize_avx2.h"

// The widened K4 layout, then two sieve_rq_block_avx2 per 16 output channels.
static size_t packed_size(int32_t out_c, int32_t k) {
    return sieve_pack_k4_s16_size(out_c, k) + (size_t)sieve_round_up(out_c, 16) / 8 * sizeof(sieve_rq_block_avx2);
}

static const sieve_rq_block_avx2 *rq_blocks(const void *packed, int32_t out_c, int32_t k) {
    return (const sieve_rq_block_avx2 *)((const uint8_t *)packed + sieve_pack_k4_s16_size(out_c, k));
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

size_t sieve_fc_packed_size__avx2(const sieve_fc_params *p) { return packed_size(p->out_c, p->k); }

void sieve_fc_pack__avx2(const sieve_fc_params *p, void *packed) {
    sieve_pack_k4_s16(p->weights, p->bias, p->multipliers, p->shifts, p->out_c, p->k, packed);
    const sieve_k4_view v = sieve_k4(packed, p->out_c, p->k);
    sieve_rq_block_avx2 *blocks = (sieve_rq_block_avx2 *)rq_blocks(packed, p->out_c, p->k);
    for (int32_t b = 0; b < v.ocp / 8; b++) sieve_rq_block_avx2_fill(blocks + b, v.multipliers + 8 * b, v.shifts + 8 * b);
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

SIEVE_TARGET_END
#endif
