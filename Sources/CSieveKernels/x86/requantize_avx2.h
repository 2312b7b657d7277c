// Requantisation of eight int32 accumulators on AVX2, exactly as sieve_requantize. AVX2 has no
// 64-bit arithmetic shift, so (p + round) >> s is computed as ((p + round + 2^63) >>> s) - 2^(63-s):
// the offset makes the value unsigned, and 2^63 >>> s = 2^(63-s) comes back off exactly.
// Include only from a file compiled for AVX2.
#ifndef SIEVE_REQUANTIZE_AVX2_H
#define SIEVE_REQUANTIZE_AVX2_H

#include <immintrin.h>
#include <string.h>

// Per-lane constants of 8 channels, precomputed at pack time (7 x 32 bytes).
typedef struct {
    int64_t multiplier_odd[4];
    int64_t shift_even[4], shift_odd[4];
    uint64_t add_even[4], add_odd[4];  // 2^(s-1) + 2^63
    int64_t sub_even[4], sub_odd[4];   // 2^(63-s)
} sieve_rq_block_avx2;

static inline void sieve_rq_block_avx2_fill(sieve_rq_block_avx2 *block, const int32_t *multipliers, const int32_t *shifts) {
    for (int i = 0; i < 4; i++) {
        const int32_t se = shifts[2 * i], so = shifts[2 * i + 1];
        block->multiplier_odd[i] = multipliers[2 * i + 1];
        block->shift_even[i] = se;
        block->shift_odd[i] = so;
        block->add_even[i] = ((uint64_t)1 << (se - 1)) + ((uint64_t)1 << 63);
        block->add_odd[i] = ((uint64_t)1 << (so - 1)) + ((uint64_t)1 << 63);
        block->sub_even[i] = (int64_t)((uint64_t)1 << (63 - se));
        block->sub_odd[i] = (int64_t)((uint64_t)1 << (63 - so));
    }
}

static inline __m256i sieve_rq_half_avx2(__m256i product, const uint64_t *add, const int64_t *shift, const int64_t *sub) {
    const __m256i biased = _mm256_add_epi64(product, _mm256_loadu_si256((const __m256i *)add));
    return _mm256_sub_epi64(_mm256_srlv_epi64(biased, _mm256_loadu_si256((const __m256i *)shift)),
                            _mm256_loadu_si256((const __m256i *)sub));
}

// Eight int8 results, in the low 8 bytes.
static inline __m128i sieve_rq8_avx2(__m256i acc, const int32_t *multipliers, const sieve_rq_block_avx2 *block,
                                     __m256i zero_point, __m256i lo, __m256i hi) {
    const __m256i m = _mm256_loadu_si256((const __m256i *)multipliers);
    const __m256i even = sieve_rq_half_avx2(_mm256_mul_epi32(acc, m), block->add_even, block->shift_even, block->sub_even);
    const __m256i odd = sieve_rq_half_avx2(
        _mm256_mul_epi32(_mm256_shuffle_epi32(acc, 0xF5), _mm256_loadu_si256((const __m256i *)block->multiplier_odd)),
        block->add_odd, block->shift_odd, block->sub_odd);
    __m256i r = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
    r = _mm256_max_epi32(_mm256_min_epi32(_mm256_add_epi32(r, zero_point), hi), lo);
    const __m256i bytes = _mm256_packs_epi16(_mm256_packs_epi32(r, r), r);  // lane 0: r0..r3 first, lane 1: r4..r7
    return _mm_unpacklo_epi32(_mm256_castsi256_si128(bytes), _mm256_extracti128_si256(bytes, 1));
}

// The 32-bit form, for channels with 33 <= s <= 62 (every real layer): as 2^(s-1) is a multiple of
// 2^32, floor((acc * M + 2^(s-1)) / 2^s) = (h + 2^(s-33)) >> (s - 32) with h = floor(acc * M / 2^32),
// the high halves of vpmuldq's products; |h| <= 2^30 and 2^(s-33) <= 2^29, so the sum fits int32,
// and so does the result (|rq| < 2^29: no wrap-around to keep). Per 16 channels:
typedef struct {
    int32_t round[16];  // 2^(s-33)
    int32_t shift[16];  // s - 32
    int32_t fast;       // every channel below out_c has 33 <= s <= 62 (the others are not stored)
    int32_t unused[15];
} sieve_rq32_block_avx2;

static inline void sieve_rq32_avx2_fill(sieve_rq32_block_avx2 *block, const int32_t *shifts, int32_t channels) {
    block->fast = 1;
    for (int i = 0; i < 15; i++) block->unused[i] = 0;
    for (int i = 0; i < 16; i++) {
        int32_t s = shifts[i];
        if (i < channels && (s < 33 || s > 62)) block->fast = 0;
        if (s < 33 || s > 62) s = 33;
        block->round[i] = (int32_t)1 << (s - 33);
        block->shift[i] = s - 32;
    }
}

// Eight requantised int32 (before the zero point) of acc; m_odd = sieve_odd_lanes(multipliers).
// (Shuffles, not 64-bit shifts, move the odd lanes: after a shift clang knows the high halves are
// zero and rewrites vpmuldq as an unsigned multiply with a sign correction, five instructions.)
static inline __m256i sieve_odd_lanes(__m256i x) { return _mm256_shuffle_epi32(x, 0xF5); }

static inline __m256i sieve_rq32_avx2(__m256i acc, __m256i m, __m256i m_odd, __m256i round, __m256i shift) {
    const __m256i even = _mm256_mul_epi32(acc, m);
    const __m256i odd = _mm256_mul_epi32(sieve_odd_lanes(acc), m_odd);
    const __m256i high = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
    return _mm256_srav_epi32(_mm256_add_epi32(high, round), shift);
}

// 16 int8 outputs of sieve_rq32_avx2's r0 (channels 0-7) and r1 (8-15): saturating narrowings to
// int16, + zero point (int16, saturating), to int8, then the clamp. Exact: |r| < 2^29 so r + zp is
// the scalar's int32 sum, saturation is monotone and [lo, hi] lies inside int8, so clamping the
// saturated value equals clamping the exact one. zp16: zero point in every int16, lo8/hi8: bytes.
static inline __m128i sieve_narrow16_avx2(__m256i r0, __m256i r1, __m256i zp16, __m256i lo8, __m256i hi8) {
    const __m256i h = _mm256_adds_epi16(_mm256_packs_epi32(r0, r1), zp16);  // r0 0-3, r1 0-3 | r0 4-7, r1 4-7
    __m256i b = _mm256_packs_epi16(h, h);
    b = _mm256_min_epi8(_mm256_max_epi8(b, lo8), hi8);
    b = _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 1, 5, 0, 4, 1, 5));
    return _mm256_castsi256_si128(b);
}

// The first n (1-16) bytes of r to out: one store for 16, else through memory (no over-write).
static inline void sieve_store_n_avx2(int8_t *out, __m128i r, int32_t n) {
    if (n == 16) {
        _mm_storeu_si128((__m128i *)out, r);
    } else {
        int8_t bytes[16];
        _mm_storeu_si128((__m128i *)bytes, r);
        memcpy(out, bytes, (size_t)n);
    }
}

// An op's output zero point and clamp, in the lanes each form reads.
typedef struct {
    __m256i zlh[3];           // zero point, act_min, act_max in every int32 lane (the 64-bit form)
    __m256i zp16, lo8, hi8;   // zero point in every int16, act_min and act_max in every byte (the 32-bit form)
} sieve_rq_out_avx2;

static inline sieve_rq_out_avx2 sieve_rq_out_avx2_init(int32_t zero_point, int32_t act_min, int32_t act_max) {
    const sieve_rq_out_avx2 o = {{_mm256_set1_epi32(zero_point), _mm256_set1_epi32(act_min), _mm256_set1_epi32(act_max)},
                                 _mm256_set1_epi16((int16_t)zero_point), _mm256_set1_epi8((int8_t)act_min), _mm256_set1_epi8((int8_t)act_max)};
    return o;
}

// The requantisation of 16 channels. A conv's driver loads it once per 16 channels and keeps the
// 32-bit form's constants in registers across its pixels; the 64-bit form (rare: no real layer
// takes it) reads its tables from memory.
typedef struct {
    __m256i m0, m1, m_odd0, m_odd1, round0, round1, shift0, shift1;
    const int32_t *multipliers;
    const sieve_rq_block_avx2 *blocks;
    int32_t fast;
} sieve_rq16_avx2;

static inline sieve_rq16_avx2 sieve_rq16_avx2_load(const int32_t *multipliers, const sieve_rq_block_avx2 *blocks, const sieve_rq32_block_avx2 *q) {
    sieve_rq16_avx2 c;
    c.m0 = _mm256_loadu_si256((const __m256i *)multipliers);
    c.m1 = _mm256_loadu_si256((const __m256i *)(multipliers + 8));
    c.m_odd0 = sieve_odd_lanes(c.m0);
    c.m_odd1 = sieve_odd_lanes(c.m1);
    c.round0 = _mm256_load_si256((const __m256i *)q->round);
    c.round1 = _mm256_load_si256((const __m256i *)(q->round + 8));
    c.shift0 = _mm256_load_si256((const __m256i *)q->shift);
    c.shift1 = _mm256_load_si256((const __m256i *)(q->shift + 8));
    c.multipliers = multipliers;
    c.blocks = blocks;
    c.fast = q->fast;
    return c;
}

// One pixel's 16 accumulators (a0: channels 0-7, a1: 8-15) requantised, the first n stored to out.
static inline __attribute__((always_inline)) void sieve_rq16_avx2_store(const sieve_rq16_avx2 *c, const sieve_rq_out_avx2 *o,
                                                                        __m256i a0, __m256i a1, int8_t *out, int32_t n) {
    if (c->fast) {
        const __m256i r0 = sieve_rq32_avx2(a0, c->m0, c->m_odd0, c->round0, c->shift0);
        const __m256i r1 = sieve_rq32_avx2(a1, c->m1, c->m_odd1, c->round1, c->shift1);
        sieve_store_n_avx2(out, sieve_narrow16_avx2(r0, r1, o->zp16, o->lo8, o->hi8), n);
    } else {
        const __m128i lo = sieve_rq8_avx2(a0, c->multipliers, c->blocks, o->zlh[0], o->zlh[1], o->zlh[2]);
        const __m128i hi = sieve_rq8_avx2(a1, c->multipliers + 8, c->blocks + 1, o->zlh[0], o->zlh[1], o->zlh[2]);
        sieve_store_n_avx2(out, _mm_unpacklo_epi64(lo, hi), n);
    }
}

// Pack time, shared by the conv and fully connected layouts: K4 weight blocks ([16 channels][4
// columns] per 4 columns) reordered to [2][16][2], pairs of columns for 16 channels as vpmaddwd
// reads them (elements of `size` bytes: int8 or int16), then both requantisation tables filled.
static inline void sieve_pack_pairs_avx2(const sieve_k4_view *v, size_t size, sieve_rq_block_avx2 *blocks,
                                         sieve_rq32_block_avx2 *blocks32, int32_t out_c) {
    uint8_t *w = (uint8_t *)v->weights, k4[64 * sizeof(int16_t)];
    for (size_t g = 0; g < (size_t)v->ocp / 16 * (v->k4 / 4); g++) {
        uint8_t *block = w + 64 * size * g;
        memcpy(k4, block, 64 * size);
        for (int c = 0; c < 16; c++) {
            for (int t = 0; t < 4; t++) memcpy(block + ((t / 2) * 32 + c * 2 + t % 2) * size, k4 + (c * 4 + t) * size, size);
        }
    }
    for (int32_t b = 0; b < v->ocp / 8; b++) sieve_rq_block_avx2_fill(blocks + b, v->multipliers + 8 * b, v->shifts + 8 * b);
    for (int32_t b = 0; b < v->ocp / 16; b++) sieve_rq32_avx2_fill(blocks32 + b, v->shifts + 16 * b, out_c - 16 * b);
}

#endif
