// Elementwise ADD (docs/FORMAT.md) on AVX-512: the scalar kernel's three requantisations per element,
// 16 elements at a time, each in its cheapest exact form (a shift for an input term with M = 2^30,
// the 32-bit form for s >= 33). The multipliers and shifts are the same for every element, so the
// 64-bit products need no per-lane constants.
#if defined(__x86_64__)
#include <string.h>
#include "sieve_isa.h"
#include "sieve_target.h"

// Before any target region: gcc binds each intrinsic to the target in force where it is declared.
#include <immintrin.h>

SIEVE_TARGET_BEGIN("avx512f,avx512bw,avx512vl")
#include "add_term.h"
#include "requantize_avx512.h"
#include "store_avx512.h"
// rq(x, M, s) on 16 lanes with one M and s. The lane constants are made once per op: the loop
// stores int8 outputs, which may alias anything, so constants read from the params inside it would
// be re-read and re-broadcast every iteration.
typedef struct { __m512i m, s, round, high_round, high_shift; int high; } rq_uniform_avx512_consts;

static inline rq_uniform_avx512_consts rq_uniform_avx512_prepare(int32_t multiplier, int32_t shift) {
    rq_uniform_avx512_consts c;
    c.m = _mm512_set1_epi64(multiplier);
    c.s = _mm512_set1_epi64(shift);
    c.round = _mm512_set1_epi64((int64_t)1 << (shift - 1));
    // With s >= 33 the 32-bit form of requantize_avx512.h: ((x * M) >> 32) + 2^(s-33), >> (s - 32).
    c.high = shift >= 33;
    c.high_round = _mm512_set1_epi32(c.high ? 1 << (shift - 33) : 0);
    c.high_shift = _mm512_set1_epi32(c.high ? shift - 32 : 0);
    return c;
}

// The odd lanes reach vpmuldq and the halves come back together by vpshufd, not by shifts (one a
// cycle on Zen 5, beside one multiply a cycle and 1.5 shuffles): with the shifts halved and the
// forms fixed per loop (add_blocks), 0.156 -> 0.127 ns an element on Zen 5 under clang -O3.
static inline __m512i rq_uniform_avx512(__m512i x, const rq_uniform_avx512_consts *c) {
    const __m512i even = sieve_mul_epi32_avx512(x, c->m), odd = sieve_mul_epi32_avx512(_mm512_shuffle_epi32(x, _MM_PERM_DDBB), c->m);
    if (c->high) return _mm512_srav_epi32(_mm512_add_epi32(sieve_rq_high_halves(even, odd), c->high_round), c->high_shift);
    const __m512i e = _mm512_srav_epi64(_mm512_add_epi64(even, c->round), c->s);
    const __m512i o = _mm512_srav_epi64(_mm512_add_epi64(odd, c->round), c->s);
    return _mm512_mask_shuffle_epi32(e, 0xAAAA, o, _MM_PERM_CCAA);  // each odd lane: o's low dword
}

// An input's term (add_term.h): the plan's shift, or a requantisation.
typedef struct {
    add_term_plan plan;
    __m128i count;
    __m512i round;
    rq_uniform_avx512_consts rq;
} add_term_consts;

static inline add_term_consts add_term_prepare(int32_t multiplier, int32_t shift, int32_t left_shift) {
    add_term_consts t;
    t.plan = add_term_plan_for(multiplier, shift, left_shift);
    // The quantiser's terms have s >= 31 and L = 20: shifted 1-2 bits further, the 32-bit form (add_term.h).
    const int32_t k = add_term_high_k(shift, left_shift);
    if (t.plan.mode == ADD_TERM_REQUANTIZE && k > 0) {
        t.plan.count = left_shift + k;
        shift += k;
    }
    t.count = _mm_cvtsi32_si128(t.plan.count);
    t.round = _mm512_set1_epi32(t.plan.round);
    t.rq = rq_uniform_avx512_prepare(multiplier, shift);
    return t;
}

static inline __m512i add_term(__m512i d, const add_term_consts *t) {
    switch (t->plan.mode) {
    case ADD_TERM_SHIFT_LEFT: return _mm512_sll_epi32(d, t->count);  // counts of 32 or more give 0
    case ADD_TERM_ROUND_RIGHT: return _mm512_sra_epi32(_mm512_add_epi32(d, t->round), t->count);
    case ADD_TERM_ZERO: return _mm512_setzero_si512();
    default: return rq_uniform_avx512(_mm512_sll_epi32(d, t->count), &t->rq);
    }
}

// The op's constants, made once (see rq_uniform_avx512_consts).
typedef struct {
    __m512i zp0, zp1, zp;
    add_term_consts t0, t1;
    rq_uniform_avx512_consts c2;
} add_consts;

// A term's form fixed at compile time, so the loop below has no test per vector: the quantiser's
// ADDs are a shift and a 32-bit-form requantisation (the input of the larger scale has M = 2^30).
enum { TERM_ANY, TERM_SHIFT, TERM_HIGH };

static inline __attribute__((always_inline)) __m512i add_term_as(__m512i d, const add_term_consts *t, const int form) {
    if (form == TERM_SHIFT) return _mm512_sll_epi32(d, t->count);
    if (form == TERM_HIGH) {
        const __m512i x = _mm512_sll_epi32(d, t->count);
        const __m512i even = sieve_mul_epi32_avx512(x, t->rq.m), odd = sieve_mul_epi32_avx512(_mm512_shuffle_epi32(x, _MM_PERM_DDBB), t->rq.m);
        return _mm512_srav_epi32(_mm512_add_epi32(sieve_rq_high_halves(even, odd), t->rq.high_round), t->rq.high_shift);
    }
    return add_term(d, t);
}

static inline int term_form(const add_term_consts *t) {
    if (t->plan.mode == ADD_TERM_SHIFT_LEFT) return TERM_SHIFT;
    return t->plan.mode == ADD_TERM_REQUANTIZE && t->rq.high ? TERM_HIGH : TERM_ANY;
}

// Sixteen outputs as int32, the output zero point added, not clamped.
static inline __attribute__((always_inline)) __m512i add16(const add_consts *c, __m128i x0, __m128i x1, const int form0, const int form1) {
    const __m512i a = _mm512_sub_epi32(_mm512_cvtepi8_epi32(x0), c->zp0);
    const __m512i b = _mm512_sub_epi32(_mm512_cvtepi8_epi32(x1), c->zp1);
    return _mm512_add_epi32(rq_uniform_avx512(_mm512_add_epi32(add_term_as(a, &c->t0, form0), add_term_as(b, &c->t1, form1)), &c->c2), c->zp);
}

// 64 outputs a step narrowed together, then clamped as bytes (act_min/act_max lie in int8, so
// saturating first is exact). Both inputs are read before the store, so an output that is one of
// the inputs is fine. Returns the elements done.
static inline __attribute__((always_inline)) int32_t add_blocks(const sieve_add_params *p, const add_consts *c, const int form0, const int form1) {
    const int8_t *const input0 = p->input0, *const input1 = p->input1;
    int8_t *const output = p->output;
    const __m512i lo8 = _mm512_set1_epi8((char)p->act_min), hi8 = _mm512_set1_epi8((char)p->act_max);
    int32_t i = 0;
    for (; i + 64 <= p->count; i += 64) {
        __m512i r[4];
        for (int q = 0; q < 4; q++)
            r[q] = add16(c, _mm_loadu_si128((const __m128i *)(input0 + i + 16 * q)), _mm_loadu_si128((const __m128i *)(input1 + i + 16 * q)),
                         form0, form1);
        const __m512i bytes = sieve_narrow64_avx512(r[0], r[1], r[2], r[3]);
        _mm512_storeu_si512(output + i, _mm512_min_epi8(_mm512_max_epi8(bytes, lo8), hi8));
    }
    return i;
}

void sieve_add_s8__avx512(const sieve_add_params *p) {
    const add_consts c = {_mm512_set1_epi32(p->zero_point0), _mm512_set1_epi32(p->zero_point1), _mm512_set1_epi32(p->output_zero_point),
                          add_term_prepare(p->multipliers[0], p->shifts[0], p->left_shift),
                          add_term_prepare(p->multipliers[1], p->shifts[1], p->left_shift),
                          rq_uniform_avx512_prepare(p->multipliers[2], p->shifts[2])};
    const int form0 = term_form(&c.t0), form1 = term_form(&c.t1);
    int32_t i;
    if (form0 == TERM_SHIFT && form1 == TERM_HIGH) i = add_blocks(p, &c, TERM_SHIFT, TERM_HIGH);
    else if (form0 == TERM_HIGH && form1 == TERM_SHIFT) i = add_blocks(p, &c, TERM_HIGH, TERM_SHIFT);
    else i = add_blocks(p, &c, TERM_ANY, TERM_ANY);
    const int8_t *const input0 = p->input0, *const input1 = p->input1;
    const int32_t count = p->count;
    const __m512i lo = _mm512_set1_epi32(p->act_min), hi = _mm512_set1_epi32(p->act_max);
    for (; i < count; i += 16) {
        const int32_t n = count - i < 16 ? count - i : 16;
        const __mmask16 mask = (__mmask16)((1u << n) - 1);
        const __m512i v = add16(&c, _mm_maskz_loadu_epi8(mask, input0 + i), _mm_maskz_loadu_epi8(mask, input1 + i), TERM_ANY, TERM_ANY);
        sieve_store16_avx512(p->output + i, mask, _mm512_cvtepi32_epi8(_mm512_max_epi32(_mm512_min_epi32(v, hi), lo)));
    }
}
SIEVE_TARGET_END
#endif
