// Narrowing to bytes, and byte stores of whole or partial vectors, on AVX-512. A masked store costs several plain stores on
// AMD Zen 4/5 (MobileNetV2's 112x112x16 -> 96 conv ran 1.5 times slower with every store masked),
// so a full vector takes the plain store and only a tail is masked.
// Include only from a file compiled for AVX-512 F/BW/VL.
#ifndef SIEVE_STORE_AVX512_H
#define SIEVE_STORE_AVX512_H

#include <immintrin.h>

// Four vectors of 16 int32 lanes as 64 saturated bytes in order (a's 16, b's, c's, d's):
// vpackssdw and vpacksswb work per 128-bit lane, one vpermd puts the 4-byte groups back.
// Cheaper than a vpmovdb per vector (two shuffle uops each).
static inline __m512i sieve_narrow64_avx512(__m512i a, __m512i b, __m512i c, __m512i d) {
    const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    return _mm512_permutexvar_epi32(order, _mm512_packs_epi16(_mm512_packs_epi32(a, b), _mm512_packs_epi32(c, d)));
}

// sieve_narrow64_avx512 with a zero point added to the int16 halves (saturating): exact for a
// result clamped to int8 afterwards, since a lane saturated at either step is already past int8.
static inline __m512i sieve_narrow64_zp_avx512(__m512i a, __m512i b, __m512i c, __m512i d, __m512i zero_point16) {
    const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    const __m512i ab = _mm512_adds_epi16(_mm512_packs_epi32(a, b), zero_point16);
    const __m512i cd = _mm512_adds_epi16(_mm512_packs_epi32(c, d), zero_point16);
    return _mm512_permutexvar_epi32(order, _mm512_packs_epi16(ab, cd));
}

static inline void sieve_store64_avx512(void *at, __mmask64 mask, __m512i bytes) {
    if (mask == ~(__mmask64)0) _mm512_storeu_si512(at, bytes);
    else _mm512_mask_storeu_epi8(at, mask, bytes);
}

static inline void sieve_store32_avx512(void *at, __mmask32 mask, __m256i bytes) {
    if (mask == ~(__mmask32)0) _mm256_storeu_si256((__m256i *)at, bytes);
    else _mm256_mask_storeu_epi8(at, mask, bytes);
}

static inline void sieve_store16_avx512(void *at, __mmask16 mask, __m128i bytes) {
    if (mask == (__mmask16)0xFFFF) _mm_storeu_si128((__m128i *)at, bytes);
    else _mm_mask_storeu_epi8(at, mask, bytes);
}

#endif
