// rq(x, M, s) on 8 int32 lanes that share one multiplier and shift (ADD, MUL), exactly as
// sieve_requantize, low 32 bits kept; the arithmetic shift as in requantize_avx2.h.
// Include only from a file compiled for AVX2.
#ifndef SIEVE_REQUANTIZE_UNIFORM_AVX2_H
#define SIEVE_REQUANTIZE_UNIFORM_AVX2_H

#include <immintrin.h>
#include <stdint.h>

// The lane constants of one (multiplier, shift), made once per op: the loops store int8 outputs,
// which may alias anything, so constants read from the params inside a loop are re-read and
// re-broadcast every iteration.
typedef struct { __m256i m, s, add, sub; } rq_uniform_avx2_consts;

static inline rq_uniform_avx2_consts rq_uniform_avx2_prepare(int32_t multiplier, int32_t shift) {
    rq_uniform_avx2_consts c;
    c.m = _mm256_set1_epi64x(multiplier);
    c.s = _mm256_set1_epi64x(shift);
    c.add = _mm256_set1_epi64x((int64_t)(((uint64_t)1 << (shift - 1)) + ((uint64_t)1 << 63)));
    c.sub = _mm256_set1_epi64x((int64_t)((uint64_t)1 << (63 - shift)));
    return c;
}

static inline __m256i rq_uniform_avx2(__m256i x, const rq_uniform_avx2_consts *c) {
    const __m256i even = _mm256_sub_epi64(_mm256_srlv_epi64(_mm256_add_epi64(_mm256_mul_epi32(x, c->m), c->add), c->s), c->sub);
    const __m256i odd = _mm256_sub_epi64(_mm256_srlv_epi64(_mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64(x, 32), c->m), c->add), c->s), c->sub);
    return _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
}

#endif
