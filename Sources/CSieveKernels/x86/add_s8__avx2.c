// Elementwise ADD (docs/FORMAT.md) on AVX2: the scalar kernel's three requantisations per element,
// 8 elements at a time (an input term with M = 2^30 as one shift: add_term.h), or 32 in the
// quantiser's usual case (add_blocks). The multipliers and
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

// The 32-bit form of rq(x, M, s) for s >= 33 (requantize_avx512.h argues it exact): the high
// halves of the even and odd lanes' products, one add, one shift.
typedef struct { __m256i m, round, shift; int high; } rq_high_avx2_consts;

static inline rq_high_avx2_consts rq_high_avx2_prepare(int32_t multiplier, int32_t shift) {
    rq_high_avx2_consts c;
    c.high = shift >= 33;
    c.m = _mm256_set1_epi64x(multiplier);
    c.round = _mm256_set1_epi32(c.high ? 1 << (shift - 33) : 0);
    c.shift = _mm256_set1_epi32(c.high ? shift - 32 : 0);
    return c;
}

// Odd lanes reach vpmuldq, and the halves come back, by shuffles and blends rather than shifts.
static inline __m256i rq_high_avx2(__m256i x, const rq_high_avx2_consts *c) {
    const __m256i even = _mm256_mul_epi32(x, c->m), odd = _mm256_mul_epi32(_mm256_shuffle_epi32(x, 0xF5), c->m);
    const __m256i high = _mm256_blend_epi32(_mm256_shuffle_epi32(even, 0xF5), odd, 0xAA);
    return _mm256_srav_epi32(_mm256_add_epi32(high, c->round), c->shift);
}

static inline add_term_consts add_term_prepare(int32_t multiplier, int32_t shift, int32_t left_shift) {
    add_term_consts t;
    t.plan = add_term_plan_for(multiplier, shift, left_shift);
    t.count = _mm_cvtsi32_si128(t.plan.count);
    t.round = _mm256_set1_epi32(t.plan.round);
    t.rq = rq_uniform_avx2_prepare(multiplier, shift);
    return t;
}

// The quantiser's terms in their fastest forms, fixed at compile time in the 32-output loop: a
// shift (M = 2^30), or the 32-bit requantisation (add_term_high_k).
enum { TERM_ANY, TERM_SHIFT, TERM_HIGH };

typedef struct {
    int form;
    __m128i count;
    rq_high_avx2_consts rq;
} term_fast;

static inline term_fast term_fast_prepare(const add_term_consts *t, int32_t multiplier, int32_t shift, int32_t left_shift) {
    term_fast f = {TERM_ANY, t->count, rq_high_avx2_prepare(multiplier, shift)};
    if (t->plan.mode == ADD_TERM_SHIFT_LEFT) {
        f.form = TERM_SHIFT;
    } else if (t->plan.mode == ADD_TERM_REQUANTIZE && add_term_high_k(shift, left_shift) >= 0) {
        const int32_t k = add_term_high_k(shift, left_shift);
        f.form = TERM_HIGH;
        f.count = _mm_cvtsi32_si128(left_shift + k);
        f.rq = rq_high_avx2_prepare(multiplier, shift + k);
    }
    return f;
}

static inline __attribute__((always_inline)) __m256i term_as(__m256i d, const term_fast *f, const int form) {
    return form == TERM_SHIFT ? _mm256_sll_epi32(d, f->count) : rq_high_avx2(_mm256_sll_epi32(d, f->count), &f->rq);
}

// 32 outputs a step with both terms in fast forms and the output's requantisation in the 32-bit
// one, narrowed by packs and one vpermd, clamped as bytes (act_min/act_max lie in int8). Both
// inputs are read before the store, so an output that is one of them is fine. Returns the elements done.
static inline __attribute__((always_inline)) int32_t add_blocks(const sieve_add_params *p, const term_fast *f0, const term_fast *f1,
                                                                 const rq_high_avx2_consts *c2, const int form0, const int form1) {
    const __m256i zp0 = _mm256_set1_epi32(p->zero_point0), zp1 = _mm256_set1_epi32(p->zero_point1), zp = _mm256_set1_epi32(p->output_zero_point);
    const __m256i lo8 = _mm256_set1_epi8((char)p->act_min), hi8 = _mm256_set1_epi8((char)p->act_max);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    int32_t i = 0;
    for (; i + 32 <= p->count; i += 32) {
        __m256i r[4];
        for (int q = 0; q < 4; q++) {
            const __m256i a = _mm256_sub_epi32(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(p->input0 + i + 8 * q))), zp0);
            const __m256i b = _mm256_sub_epi32(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(p->input1 + i + 8 * q))), zp1);
            r[q] = _mm256_add_epi32(rq_high_avx2(_mm256_add_epi32(term_as(a, f0, form0), term_as(b, f1, form1)), c2), zp);
        }
        const __m256i bytes = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(_mm256_packs_epi32(r[0], r[1]), _mm256_packs_epi32(r[2], r[3])), order);
        _mm256_storeu_si256((__m256i *)(p->output + i), _mm256_min_epi8(_mm256_max_epi8(bytes, lo8), hi8));
    }
    return i;
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
    const term_fast f0 = term_fast_prepare(&t0, p->multipliers[0], p->shifts[0], p->left_shift);
    const term_fast f1 = term_fast_prepare(&t1, p->multipliers[1], p->shifts[1], p->left_shift);
    const rq_high_avx2_consts h2 = rq_high_avx2_prepare(p->multipliers[2], p->shifts[2]);
    int32_t start = 0;
    if (h2.high && f0.form == TERM_SHIFT && f1.form == TERM_HIGH) start = add_blocks(p, &f0, &f1, &h2, TERM_SHIFT, TERM_HIGH);
    else if (h2.high && f0.form == TERM_HIGH && f1.form == TERM_SHIFT) start = add_blocks(p, &f0, &f1, &h2, TERM_HIGH, TERM_SHIFT);
    // The rest (every element of other ADDs) 8 at a time in the general forms.
    for (int32_t i = start; i < count; i += 8) {
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
