// Fully connected on AVX2: vpmaddwd of int16 inputs by int8 weights widened in the loop. Each
// weight is read once per call, so the op streams its weights from L3 (VGG-S's classifier: 295 KB,
// which do not stay in L2 between frames): they stay int8 in memory, packed per 16 output channels
// as [k4 / 2][16][2] (pairs of k for 16 channels in 32 bytes), and vpmovsxbw widens 8 channels' pairs
// at a time; the input is widened to int16 once per call and each pair is one vpbroadcastd from
// memory. vpmaddwd leaves complete int32 sums per channel (no reduction); two accumulator chains
// per 8 channels. Requantisation as in the conv kernel (requantize_avx2.h). Ops whose weights allow it
// take the u8 x s8 route of fc_s8__avx2_u8.c instead (the entry points at the end decide).
#if defined(__x86_64__)
#include <string.h>
#include "sieve_isa.h"
#include "sieve_pack.h"
#include "sieve_target.h"

// Before any target region: gcc binds each intrinsic to the target in force where it is declared.
#include <immintrin.h>

SIEVE_TARGET_BEGIN("avx2")
#include "requantize_avx2.h"

// The K4 header and int8 weights (sieve_pack_k4_size bytes, the weights reordered as above), then
// a sieve_rq_block_avx2 per 8 output channels and a sieve_rq32_block_avx2 per 16.
static size_t s16_packed_size(const sieve_fc_params *p) {
    const size_t ocp = (size_t)sieve_round_up(p->out_c, 16);
    return sieve_pack_k4_size(p->out_c, p->k) + ocp / 8 * sizeof(sieve_rq_block_avx2) + ocp / 16 * sizeof(sieve_rq32_block_avx2);
}

static const sieve_rq_block_avx2 *rq_blocks(const void *packed, const sieve_fc_params *p) {
    return (const sieve_rq_block_avx2 *)((const uint8_t *)packed + sieve_pack_k4_size(p->out_c, p->k));
}

static const sieve_rq32_block_avx2 *rq32_blocks(const void *packed, const sieve_fc_params *p) {
    return (const sieve_rq32_block_avx2 *)(rq_blocks(packed, p) + sieve_round_up(p->out_c, 16) / 8);
}

static void s16_pack(const sieve_fc_params *p, void *packed) {
    sieve_pack_k4(p->weights, p->bias, p->multipliers, p->shifts, p->out_c, p->k, 0, packed);
    const sieve_k4_view v = sieve_k4(packed, p->out_c, p->k);
    sieve_pack_pairs_avx2(&v, sizeof(int8_t), (sieve_rq_block_avx2 *)rq_blocks(packed, p), (sieve_rq32_block_avx2 *)rq32_blocks(packed, p), p->out_c);
}

// The input as int16, zero padded to k4.
static size_t s16_scratch_size(const sieve_fc_params *p) { return (size_t)sieve_round_up(p->k, 16) * 2 + 64; }

static void s16_fc(const sieve_fc_params *p, const void *packed, void *scratch, int32_t oc_begin, int32_t oc_end) {
    const sieve_k4_view v = sieve_k4(packed, p->out_c, p->k);
    const sieve_rq_block_avx2 *blocks = rq_blocks(packed, p);
    const sieve_rq32_block_avx2 *blocks32 = rq32_blocks(packed, p);
    int16_t *x = (int16_t *)scratch;
    int32_t i = 0;
    for (; i + 16 <= p->k; i += 16) {
        _mm256_store_si256((__m256i *)(x + i), _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(p->input + i))));
    }
    for (; i < p->k; i++) x[i] = p->input[i];
    for (; i < v.k4; i++) x[i] = 0;
    const sieve_rq_out_avx2 o = sieve_rq_out_avx2_init(p->output_zero_point, p->act_min, p->act_max);
    for (int32_t oc = oc_begin; oc < oc_end; oc += 16) {
        const int8_t *w = v.weights + (size_t)oc * v.k4;
        __m256i a0 = _mm256_loadu_si256((const __m256i *)(v.bias + oc)), a1 = _mm256_loadu_si256((const __m256i *)(v.bias + oc + 8));
        __m256i a2 = _mm256_setzero_si256(), a3 = _mm256_setzero_si256();
        for (int32_t g = 0; g < v.k4 / 4; g++) {  // two pairs of k
            const __m256i x0 = _mm256_set1_epi32(*(const int32_t *)(x + 4 * g));
            const __m256i x1 = _mm256_set1_epi32(*(const int32_t *)(x + 4 * g + 2));
            const int8_t *wg = w + 64 * g;
            a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(_mm256_cvtepi8_epi16(_mm_load_si128((const __m128i *)wg)), x0));
            a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(_mm256_cvtepi8_epi16(_mm_load_si128((const __m128i *)(wg + 16))), x0));
            a2 = _mm256_add_epi32(a2, _mm256_madd_epi16(_mm256_cvtepi8_epi16(_mm_load_si128((const __m128i *)(wg + 32))), x1));
            a3 = _mm256_add_epi32(a3, _mm256_madd_epi16(_mm256_cvtepi8_epi16(_mm_load_si128((const __m128i *)(wg + 48))), x1));
        }
        a0 = _mm256_add_epi32(a0, a2);
        a1 = _mm256_add_epi32(a1, a3);
        const int32_t n = oc_end - oc < 16 ? oc_end - oc : 16;
        const sieve_rq16_avx2 rq = sieve_rq16_avx2_load(v.multipliers + oc, blocks + oc / 8, blocks32 + oc / 16);
        sieve_rq16_avx2_store(&rq, &o, a0, a1, p->output + oc, n);
    }
}

// The path's entry points: as the conv's (conv_s8__avx2.c), a 64-byte header whose first int32
// records the route the pack chose (1: u8 x s8), then that route's packing.
#define ROUTE_HEADER 64

size_t sieve_fc_packed_size__avx2(const sieve_fc_params *p) {
    return ROUTE_HEADER + (sieve_fc_u8_fits__avx2(p) ? sieve_fc_u8_packed_size__avx2(p) : s16_packed_size(p));
}

void sieve_fc_pack__avx2(const sieve_fc_params *p, void *packed) {
    const int32_t u8 = sieve_fc_u8_fits__avx2(p);
    memset(packed, 0, ROUTE_HEADER);
    memcpy(packed, &u8, sizeof u8);
    if (u8) sieve_fc_u8_pack__avx2(p, (uint8_t *)packed + ROUTE_HEADER);
    else s16_pack(p, (uint8_t *)packed + ROUTE_HEADER);
}

size_t sieve_fc_scratch_size__avx2(const sieve_fc_params *p) {
    return sieve_fc_u8_fits__avx2(p) ? sieve_fc_u8_scratch_size__avx2(p) : s16_scratch_size(p);
}

void sieve_fc_s8__avx2(const sieve_fc_params *p, const void *packed, void *scratch, int32_t oc_begin, int32_t oc_end) {
    if (sieve_conv_route__avx2(packed) == SIEVE_ROUTE_U8) sieve_fc_u8_s8__avx2(p, (const uint8_t *)packed + ROUTE_HEADER, scratch, oc_begin, oc_end);
    else s16_fc(p, (const uint8_t *)packed + ROUTE_HEADER, scratch, oc_begin, oc_end);
}

SIEVE_TARGET_END
#endif
