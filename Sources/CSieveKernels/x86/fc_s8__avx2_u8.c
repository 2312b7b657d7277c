// Fully connected on AVX2, the u8 x s8 route (as conv_s8__avx2_u8.c): the input staged once as u8
// (x + 128, the bias less 128 x row sum), the int8 weights in the K4 layout read as they are (no
// vpmovsxbw), vpmaddubsw then vpmaddwd by ones: per 4 k and 16 channels 2 loads, 2 vpmaddubsw,
// 2 vpmaddwd, 2 vpaddd, half the int16 route's work. Exact only when every pair of weights fits
// vpmaddubsw's saturating int16 sum (sieve_fc_u8_fits__avx2, checked at pack time; fc_s8__avx2.c
// keeps the int16 route for the others). Two accumulator chains per 8 channels.
#if defined(__x86_64__)
#include <string.h>
#include "sieve_isa.h"
#include "sieve_pack.h"
#include "sieve_target.h"

// Before any target region: gcc binds each intrinsic to the target in force where it is declared.
#include <immintrin.h>

SIEVE_TARGET_BEGIN("avx2")
#include "requantize_avx2.h"

int sieve_fc_u8_fits__avx2(const sieve_fc_params *p) {
    for (int32_t oc = 0; oc < p->out_c; oc++) {
        const int8_t *w = p->weights + (size_t)oc * p->k;
        for (int32_t i = 0; i < p->k; i += 2) {  // pairs (2i, 2i + 1) of the K4 row; past k a zero
            const int32_t w0 = w[i], w1 = i + 1 < p->k ? w[i + 1] : 0;
            const int32_t pos = (w0 > 0 ? w0 : 0) + (w1 > 0 ? w1 : 0), neg = (w0 < 0 ? w0 : 0) + (w1 < 0 ? w1 : 0);
            if (255 * pos > 32767 || 255 * neg < -32768) return 0;
        }
    }
    return 1;
}

// The K4 layout (int8 weights as sieve_pack_k4 writes them), a sieve_rq_block_avx2 per 8 output
// channels and a sieve_rq32_block_avx2 per 16.
size_t sieve_fc_u8_packed_size__avx2(const sieve_fc_params *p) {
    const size_t ocp = (size_t)sieve_round_up(p->out_c, 16);
    return sieve_pack_k4_size(p->out_c, p->k) + ocp / 8 * sizeof(sieve_rq_block_avx2) + ocp / 16 * sizeof(sieve_rq32_block_avx2);
}

static const sieve_rq_block_avx2 *rq_blocks(const void *packed, const sieve_fc_params *p) {
    return (const sieve_rq_block_avx2 *)((const uint8_t *)packed + sieve_pack_k4_size(p->out_c, p->k));
}

static const sieve_rq32_block_avx2 *rq32_blocks(const void *packed, const sieve_fc_params *p) {
    return (const sieve_rq32_block_avx2 *)(rq_blocks(packed, p) + sieve_round_up(p->out_c, 16) / 8);
}

void sieve_fc_u8_pack__avx2(const sieve_fc_params *p, void *packed) {
    sieve_pack_k4(p->weights, p->bias, p->multipliers, p->shifts, p->out_c, p->k, 128, packed);
    const sieve_k4_view v = sieve_k4(packed, p->out_c, p->k);
    sieve_rq_block_avx2 *blocks = (sieve_rq_block_avx2 *)rq_blocks(packed, p);
    sieve_rq32_block_avx2 *blocks32 = (sieve_rq32_block_avx2 *)rq32_blocks(packed, p);
    for (int32_t b = 0; b < v.ocp / 8; b++) sieve_rq_block_avx2_fill(blocks + b, v.multipliers + 8 * b, v.shifts + 8 * b);
    for (int32_t b = 0; b < v.ocp / 16; b++) sieve_rq32_avx2_fill(blocks32 + b, v.shifts + 16 * b, p->out_c - 16 * b);
}

// The input as u8, padded to k4 (the padding meets zero weights).
size_t sieve_fc_u8_scratch_size__avx2(const sieve_fc_params *p) { return (size_t)sieve_round_up(p->k, 32) + 64; }

void sieve_fc_u8_s8__avx2(const sieve_fc_params *p, const void *packed, void *scratch, int32_t oc_begin, int32_t oc_end) {
    const sieve_k4_view v = sieve_k4(packed, p->out_c, p->k);
    const sieve_rq_block_avx2 *blocks = rq_blocks(packed, p);
    const sieve_rq32_block_avx2 *blocks32 = rq32_blocks(packed, p);
    uint8_t *x = (uint8_t *)scratch;
    const __m256i flip = _mm256_set1_epi8((char)0x80);
    int32_t i = 0;
    for (; i + 32 <= p->k; i += 32) {
        _mm256_store_si256((__m256i *)(x + i), _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(p->input + i)), flip));
    }
    for (; i < p->k; i++) x[i] = (uint8_t)(p->input[i] ^ 0x80);
    for (; i < v.k4; i++) x[i] = 0;
    const __m256i ones = _mm256_set1_epi16(1);
    const sieve_rq_out_avx2 o = sieve_rq_out_avx2_init(p->output_zero_point, p->act_min, p->act_max);
    const int32_t groups = v.k4 / 4;
    for (int32_t oc = oc_begin; oc < oc_end; oc += 16) {
        const int8_t *w = v.weights + (size_t)oc * v.k4;
        __m256i a0 = _mm256_loadu_si256((const __m256i *)(v.bias + oc)), a1 = _mm256_loadu_si256((const __m256i *)(v.bias + oc + 8));
        __m256i a2 = _mm256_setzero_si256(), a3 = _mm256_setzero_si256();
        int32_t g = 0;
        for (; g + 2 <= groups; g += 2) {  // two groups of 4 k, one per accumulator chain
            int32_t four0, four1;
            memcpy(&four0, x + 4 * g, 4);
            memcpy(&four1, x + 4 * g + 4, 4);
            const __m256i x0 = _mm256_set1_epi32(four0), x1 = _mm256_set1_epi32(four1);
            const int8_t *wg = w + 64 * g;
            a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(_mm256_maddubs_epi16(x0, _mm256_load_si256((const __m256i *)wg)), ones));
            a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(_mm256_maddubs_epi16(x0, _mm256_load_si256((const __m256i *)(wg + 32))), ones));
            a2 = _mm256_add_epi32(a2, _mm256_madd_epi16(_mm256_maddubs_epi16(x1, _mm256_load_si256((const __m256i *)(wg + 64))), ones));
            a3 = _mm256_add_epi32(a3, _mm256_madd_epi16(_mm256_maddubs_epi16(x1, _mm256_load_si256((const __m256i *)(wg + 96))), ones));
        }
        if (g < groups) {
            int32_t four;
            memcpy(&four, x + 4 * g, 4);
            const __m256i x0 = _mm256_set1_epi32(four);
            const int8_t *wg = w + 64 * g;
            a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(_mm256_maddubs_epi16(x0, _mm256_load_si256((const __m256i *)wg)), ones));
            a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(_mm256_maddubs_epi16(x0, _mm256_load_si256((const __m256i *)(wg + 32))), ones));
        }
        a0 = _mm256_add_epi32(a0, a2);
        a1 = _mm256_add_epi32(a1, a3);
        const int32_t n = oc_end - oc < 16 ? oc_end - oc : 16;
        const sieve_rq16_avx2 rq = sieve_rq16_avx2_load(v.multipliers + oc, blocks + oc / 8, blocks32 + oc / 16);
        sieve_rq16_avx2_store(&rq, &o, a0, a1, p->output + oc, n);
    }
}

SIEVE_TARGET_END
#endif
