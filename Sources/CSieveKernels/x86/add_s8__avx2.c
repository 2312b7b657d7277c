// Elementwise ADD (docs/FORMAT.md) on AVX2: the scalar kernel's three requantisations per element,
// 8 elements at a time (an input term with M = 2^30 as one shift: add_term.h). The multipliers and
// shifts are the same for every element, so the 64-bit products need no per-lane constants.
#if defined(__x86_64__)
#include <string.h>
#include "sieve_isa.h"
#include "sieve_target.h"

// Before any target region: gcc binds each intrinsic to the target in force where it is declared.
#include <immintrin.h>

SIEVE_TARGET_BEGIN("avx2")
#include "requantize_uniform_avx2.h"
#include "add_term.h"

// An input's term (add_term.h): the plan's shift, or a requantisation.
typedef struct {
    add_term_plan plan;
    __m128i count;
    __m256i round;
    rq_uniform_avx2_consts rq;
} add_term_consts;

static inline add_term_consts add_term_prepare(int32_t multiplier, int32_t shift, int32_t left_shift) {
    add_term_consts t;
    t.plan = add_term_plan_for(multiplier, shift, left_shift);
    t.count = _mm_cvtsi32_si128(t.plan.count);
    t.round = _mm256_set1_epi32(t.plan.round);
    t.rq = rq_uniform_avx2_prepare(multiplier, shift);
    return t;
}

static inline __m256i add_term(__m256i d, const add_term_consts *t) {
    switch (t->plan.mode) {
    case ADD_TERM_SHIFT_LEFT: return _mm256_sll_epi32(d, t->count);  // counts of 32 or more give 0
    case ADD_TERM_ROUND_RIGHT: return _mm256_sra_epi32(_mm256_add_epi32(d, t->round), t->count);
    case ADD_TERM_ZERO: return _mm256_setzero_si256();
    default: return rq_uniform_avx2(_mm256_sll_epi32(d, t->count), &t->rq);
    }
}

void sieve_add_s8__avx2(const sieve_add_params *p) {
    const __m256i zp0 = _mm256_set1_epi32(p->zero_point0), zp1 = _mm256_set1_epi32(p->zero_point1);
    const __m256i zp = _mm256_set1_epi32(p->output_zero_point), lo = _mm256_set1_epi32(p->act_min), hi = _mm256_set1_epi32(p->act_max);
    const add_term_consts t0 = add_term_prepare(p->multipliers[0], p->shifts[0], p->left_shift);
    const add_term_consts t1 = add_term_prepare(p->multipliers[1], p->shifts[1], p->left_shift);
    const rq_uniform_avx2_consts c2 = rq_uniform_avx2_prepare(p->multipliers[2], p->shifts[2]);
    const int8_t *const input0 = p->input0, *const input1 = p->input1;
    int8_t *const output = p->output;
    const int32_t count = p->count;
    for (int32_t i = 0; i < count; i += 8) {
        const int32_t n = count - i < 8 ? count - i : 8;
        int8_t in0[8] = {0}, in1[8] = {0}, bytes[16];
        const int8_t *a8 = input0 + i, *b8 = input1 + i;
        if (n < 8) {  // the tail through memory: never read past either input (a variable-length
            memcpy(in0, a8, (size_t)n);  // memcpy is a library call: only here, not per 8 elements)
            memcpy(in1, b8, (size_t)n);
            a8 = in0;
            b8 = in1;
        }
        const __m256i a = _mm256_sub_epi32(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)a8)), zp0);
        const __m256i b = _mm256_sub_epi32(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)b8)), zp1);
        __m256i v = _mm256_add_epi32(rq_uniform_avx2(_mm256_add_epi32(add_term(a, &t0), add_term(b, &t1)), &c2), zp);
        v = _mm256_max_epi32(_mm256_min_epi32(v, hi), lo);
        const __m256i packed = _mm256_packs_epi16(_mm256_packs_epi32(v, v), v);
        const __m128i eight = _mm_unpacklo_epi32(_mm256_castsi256_si128(packed), _mm256_extracti128_si256(packed, 1));
        if (n == 8) {
            _mm_storel_epi64((__m128i *)(output + i), eight);
        } else {
            _mm_storel_epi64((__m128i *)bytes, eight);
            memcpy(output + i, bytes, (size_t)n);
        }
    }
}
SIEVE_TARGET_END
#endif
