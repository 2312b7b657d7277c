// Elementwise ADD (docs/FORMAT.md) on AVX-512: the scalar kernel's three requantisations per element,
// 16 elements at a time. The multipliers and shifts are the same for every element, so the 64-bit
// products need no per-lane constants.
#if defined(__x86_64__)
#include <string.h>
#include "sieve_isa.h"
#include "sieve_target.h"

// Before any target region: gcc binds each intrinsic to the target in force where it is declared.
#include <immintrin.h>

SIEVE_TARGET_BEGIN("avx512f,avx512bw,avx512vl")
// rq(x, M, s) on 16 lanes with one M and s. The lane constants are made once per op: the loop
// stores int8 outputs, which may alias anything, so constants read from the params inside it would
// be re-read and re-broadcast every iteration.
typedef struct { __m512i m, s, round; } rq_uniform_avx512_consts;

static inline rq_uniform_avx512_consts rq_uniform_avx512_prepare(int32_t multiplier, int32_t shift) {
    rq_uniform_avx512_consts c;
    c.m = _mm512_set1_epi64(multiplier);
    c.s = _mm512_set1_epi64(shift);
    c.round = _mm512_set1_epi64((int64_t)1 << (shift - 1));
    return c;
}

static inline __m512i rq_uniform_avx512(__m512i x, const rq_uniform_avx512_consts *c) {
    const __m512i even = _mm512_srav_epi64(_mm512_add_epi64(_mm512_mul_epi32(x, c->m), c->round), c->s);
    const __m512i odd = _mm512_srav_epi64(_mm512_add_epi64(_mm512_mul_epi32(_mm512_srli_epi64(x, 32), c->m), c->round), c->s);
    return _mm512_mask_blend_epi32(0xAAAA, even, _mm512_slli_epi64(odd, 32));
}

void sieve_add_s8__avx512(const sieve_add_params *p) {
    const __m512i zp0 = _mm512_set1_epi32(p->zero_point0), zp1 = _mm512_set1_epi32(p->zero_point1);
    const __m512i zp = _mm512_set1_epi32(p->output_zero_point), lo = _mm512_set1_epi32(p->act_min), hi = _mm512_set1_epi32(p->act_max);
    const rq_uniform_avx512_consts c0 = rq_uniform_avx512_prepare(p->multipliers[0], p->shifts[0]);
    const rq_uniform_avx512_consts c1 = rq_uniform_avx512_prepare(p->multipliers[1], p->shifts[1]);
    const rq_uniform_avx512_consts c2 = rq_uniform_avx512_prepare(p->multipliers[2], p->shifts[2]);
    const unsigned left_shift = (unsigned)p->left_shift;
    const int8_t *const input0 = p->input0, *const input1 = p->input1;
    int8_t *const output = p->output;
    const int32_t count = p->count;
    for (int32_t i = 0; i < count; i += 16) {
        const int32_t n = count - i < 16 ? count - i : 16;
        const __mmask16 mask = (__mmask16)((1u << n) - 1);
        const __m512i a = _mm512_sub_epi32(_mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(mask, input0 + i)), zp0);
        const __m512i b = _mm512_sub_epi32(_mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(mask, input1 + i)), zp1);
        const __m512i ra = rq_uniform_avx512(_mm512_slli_epi32(a, left_shift), &c0);
        const __m512i rb = rq_uniform_avx512(_mm512_slli_epi32(b, left_shift), &c1);
        __m512i v = _mm512_add_epi32(rq_uniform_avx512(_mm512_add_epi32(ra, rb), &c2), zp);
        v = _mm512_max_epi32(_mm512_min_epi32(v, hi), lo);
        _mm_mask_storeu_epi8(output + i, mask, _mm512_cvtepi32_epi8(v));
    }
}
SIEVE_TARGET_END
#endif
