// Requantisation of sixteen int32 accumulators on AVX-512, exactly as sieve_requantize:
// (acc * M + 2^(s-1)) >> s in 64 bits (even and odd lanes apart), + zero point, clamp, narrow.
// Include only from a file compiled for AVX-512 F/BW.
#ifndef SIEVE_REQUANTIZE_AVX512_H
#define SIEVE_REQUANTIZE_AVX512_H

#include <immintrin.h>

#include "sieve_pack.h"

// _mm512_mul_epi32 as its one instruction, vpmuldq. clang lowers the intrinsic to a 64-bit multiply
// of sign-extended halves; once it hoists the extension of a loop-invariant operand (the
// multipliers) out of a loop, it no longer sees the pattern and emits a full 64 x 64-bit multiply,
// three vpmuludq and four shifts and adds, in its place (MobileNetV2's 112x112x16 -> 96 conv ran
// 1.7 times slower on Zen 4 for it). Every AVX-512 kernel multiplies through this.
static inline __m512i sieve_mul_epi32_avx512(__m512i a, __m512i b) {
    __m512i product;
    __asm__("vpmuldq %2, %1, %0" : "=v"(product) : "v"(a), "v"(b));
    return product;
}

static inline __m512i sieve_rq_half_avx512(__m512i acc_lo, __m512i m_lo, __m512i s_lo) {
    const __m512i one = _mm512_set1_epi64(1);
    const __m512i product = sieve_mul_epi32_avx512(acc_lo, m_lo);  // signed low 32 bits of each 64-bit lane
    const __m512i round = _mm512_sllv_epi64(one, _mm512_sub_epi64(s_lo, one));
    return _mm512_srav_epi64(_mm512_add_epi64(product, round), s_lo);
}

// Sixteen int8 results of acc with per-lane multipliers and shifts.
static inline __m128i sieve_rq16_avx512(__m512i acc, const int32_t *multipliers, const int32_t *shifts,
                                        __m512i zero_point, __m512i lo, __m512i hi) {
    const __m512i m = _mm512_loadu_si512(multipliers), s = _mm512_loadu_si512(shifts);
    const __m512i low32 = _mm512_set1_epi64(0xFFFFFFFF);
    const __m512i even = sieve_rq_half_avx512(acc, m, _mm512_and_si512(s, low32));
    const __m512i odd = sieve_rq_half_avx512(_mm512_srli_epi64(acc, 32), _mm512_srli_epi64(m, 32), _mm512_srli_epi64(s, 32));
    __m512i r = _mm512_mask_blend_epi32(0xAAAA, even, _mm512_slli_epi64(odd, 32));
    r = _mm512_add_epi32(r, zero_point);
    r = _mm512_max_epi32(_mm512_min_epi32(r, hi), lo);
    return _mm512_cvtepi32_epi8(r);
}

// The per-lane constants of a 16-channel block, precomputed at pack time (7 x 64 bytes): the odd
// lanes' multipliers, and each half's shift and rounding term as 64-bit lanes. When every lane's
// shift s is in [33, 53] (real layers' usual case) the block also holds s - 32 and
// 2^(s - 33) + zero_point * 2^(s - 32) for a cheaper exact form that adds the output zero point
// inside the shift (sieve_rq_block_wide_avx512); else high_shift is all 0.
typedef struct {
    int64_t multiplier_odd[8], shift_even[8], shift_odd[8], round_even[8], round_odd[8];
    int32_t high_shift[16], high_round[16];
} sieve_rq_block_avx512;

static inline void sieve_rq_block_fill(sieve_rq_block_avx512 *block, const int32_t *multipliers, const int32_t *shifts,
                                       int32_t zero_point) {
    int high = 1;
    for (int i = 0; i < 16; i++) high &= shifts[i] >= 33 && shifts[i] <= 53;
    for (int i = 0; i < 8; i++) {
        block->multiplier_odd[i] = multipliers[2 * i + 1];
        block->shift_even[i] = shifts[2 * i];
        block->shift_odd[i] = shifts[2 * i + 1];
        block->round_even[i] = (int64_t)1 << (shifts[2 * i] - 1);
        block->round_odd[i] = (int64_t)1 << (shifts[2 * i + 1] - 1);
    }
    for (int i = 0; i < 16; i++) {
        block->high_shift[i] = high ? shifts[i] - 32 : 0;
        block->high_round[i] = high ? (int32_t)((1u << (shifts[i] - 33)) + (uint32_t)zero_point * (1u << (shifts[i] - 32))) : 0;
    }
}

// The high 32 bits of each lane's 64-bit product, in the lane's place: the odd lanes' from `odd`,
// the even lanes' moved down from dword 1 of `even`'s quadwords by one merge-masked vpshufd.
static inline __m512i sieve_rq_high_halves(__m512i even, __m512i odd) {
    return _mm512_mask_shuffle_epi32(odd, 0x5555, even, _MM_PERM_DDBB);
}

// A block's short-multiplier form (sieve_rq_short_lane) when all sixteen lanes qualify, else
// shift[0] == 0: (acc * m + 2^(s'-1)) >> s' in 32-bit lanes, one vpmulld where the 32-bit form
// above takes two vpmuldq and a shuffle. |acc * m + round| < 2^31, so nothing wraps; the zero
// point is left to the caller (sieve_narrow64_zp_avx512 adds it to the int16 halves).
typedef struct {
    int32_t multiplier[16], round[16], shift[16];
} sieve_rq_short_avx512;

static inline void sieve_rq_short_fill(sieve_rq_short_avx512 *block, const int32_t *multipliers, const int32_t *shifts,
                                       const int64_t *bounds) {
    int all = 1;
    for (int i = 0; i < 16; i++) {
        int32_t m = 0, s = 0;
        all &= sieve_rq_short_lane(multipliers[i], shifts[i], bounds[i], &m, &s);
        block->multiplier[i] = m;
        block->shift[i] = s;
        block->round[i] = s > 0 ? (int32_t)(1u << (s - 1)) : 0;
    }
    if (!all)
        for (int i = 0; i < 16; i++) block->multiplier[i] = block->shift[i] = block->round[i] = 0;
}

static inline __m512i sieve_rq_short_apply_avx512(__m512i acc, __m512i multiplier, __m512i round, __m512i shift) {
    return _mm512_srav_epi32(_mm512_add_epi32(_mm512_mullo_epi32(acc, multiplier), round), shift);
}

// A block's 32-bit-form constants (high_shift set) in registers, for a caller that requantises many
// accumulators with them: loaded once, not once per vector.
typedef struct {
    __m512i multiplier, multiplier_odd, round, shift;
} sieve_rq_high_regs;

static inline sieve_rq_high_regs sieve_rq_high_load(const int32_t *multipliers, const sieve_rq_block_avx512 *block) {
    const sieve_rq_high_regs r = {_mm512_loadu_si512(multipliers), _mm512_load_si512(block->multiplier_odd),
                                  _mm512_load_si512(block->high_round), _mm512_load_si512(block->high_shift)};
    return r;
}

// sieve_rq_block_wide_avx512's 32-bit form with the constants in registers (zero point included).
static inline __m512i sieve_rq_high_avx512(__m512i acc, const sieve_rq_high_regs *c) {
    const __m512i even = sieve_mul_epi32_avx512(acc, c->multiplier);
    const __m512i odd = sieve_mul_epi32_avx512(_mm512_srli_epi64(acc, 32), c->multiplier_odd);
    return _mm512_srav_epi32(_mm512_add_epi32(sieve_rq_high_halves(even, odd), c->round), c->shift);
}

// As sieve_rq16_avx512 with the block's constants, before the clamp: sixteen int32 results with the
// zero point added (for a caller that narrows several vectors at once with saturating packs).
static inline __m512i sieve_rq_block_wide_avx512(__m512i acc, const int32_t *multipliers, const sieve_rq_block_avx512 *block,
                                                 __m512i zero_point) {
    const __m512i even = sieve_mul_epi32_avx512(acc, _mm512_loadu_si512(multipliers));
    const __m512i odd = sieve_mul_epi32_avx512(_mm512_srli_epi64(acc, 32), _mm512_load_si512(block->multiplier_odd));
    if (block->high_shift[0] != 0) {
        // With P = acc * M and s >= 33: (P + 2^(s-1)) >> s == ((P >> 32) + 2^(s-33)) >> (s - 32)
        // exactly (the low 32 bits of P cannot carry into the result), and adding zp * 2^(s-32)
        // before the shift adds zp after it. In 32-bit lanes: |P >> 32| <= 2^30, 2^(s-33) <= 2^20
        // and |zp * 2^(s-32)| <= 2^28 for s <= 53, so the sum cannot wrap. The high halves of the
        // even and odd products, then one 32-bit add and shift.
        return _mm512_srav_epi32(_mm512_add_epi32(sieve_rq_high_halves(even, odd), _mm512_load_si512(block->high_round)),
                                 _mm512_load_si512(block->high_shift));
    }
    const __m512i e = _mm512_srav_epi64(_mm512_add_epi64(even, _mm512_load_si512(block->round_even)), _mm512_load_si512(block->shift_even));
    const __m512i o = _mm512_srav_epi64(_mm512_add_epi64(odd, _mm512_load_si512(block->round_odd)), _mm512_load_si512(block->shift_odd));
    const __m512i r = _mm512_mask_blend_epi32(0xAAAA, e, _mm512_slli_epi64(o, 32));
    return _mm512_add_epi32(r, zero_point);
}

#endif
