// Channel sums on AVX-512, and the global average pool (the heads' first op) made of them: int32 sums
// of 16 channels per register. The pool then takes the scalar kernel's rounded mean,
// (sum +- count/2) / count truncated, computed as a double division: exact, since |sum| < 2^53 keeps
// the quotient's error below 1/count. Exact logits fold the pool in as these sums.
#if defined(__x86_64__)
#include <string.h>
#include "sieve_isa.h"
#include "sieve_target.h"

// Before any target region: gcc binds each intrinsic to the target in force where it is declared.
#include <immintrin.h>

SIEVE_TARGET_BEGIN("avx512f,avx512bw,avx512vl,avx512dq")
static inline __m512i rounded_mean_avx512(__m512i sum, int32_t count) {
    const __m512i half = _mm512_set1_epi32(count / 2);
    const __mmask16 negative = _mm512_cmplt_epi32_mask(sum, _mm512_setzero_si512());
    const __m512i numerator = _mm512_mask_sub_epi32(_mm512_add_epi32(sum, half), negative, sum, half);
    const __m512d d = _mm512_set1_pd((double)count);
    const __m256i lo = _mm512_cvttpd_epi32(_mm512_div_pd(_mm512_cvtepi32_pd(_mm512_castsi512_si256(numerator)), d));
    const __m256i hi = _mm512_cvttpd_epi32(_mm512_div_pd(_mm512_cvtepi32_pd(_mm512_extracti64x4_epi64(numerator, 1)), d));
    return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

// The int32 sums of one block of up to 16 channels over every pixel, four pixels in flight so
// the adds do not wait on each other.
static inline __m512i channel_block_sum_avx512(const int8_t *input, __mmask16 mask, int32_t pixels, int32_t channels) {
    __m512i sum[4] = {_mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512()};
    int32_t i = 0;
    for (; i + 4 <= pixels; i += 4) {
        for (int u = 0; u < 4; u++) {
            const __m128i x = _mm_maskz_loadu_epi8(mask, input + (size_t)(i + u) * channels);
            sum[u] = _mm512_add_epi32(sum[u], _mm512_cvtepi8_epi32(x));
        }
    }
    for (; i < pixels; i++) sum[0] = _mm512_add_epi32(sum[0], _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(mask, input + (size_t)i * channels)));
    return _mm512_add_epi32(_mm512_add_epi32(sum[0], sum[1]), _mm512_add_epi32(sum[2], sum[3]));
}

static inline __mmask16 channel_block_mask(int32_t channels, int32_t c0) {
    return channels - c0 >= 16 ? 0xFFFF : (__mmask16)((1u << (channels - c0)) - 1);
}

void sieve_global_avgpool_s8__avx512(const int8_t *input, int8_t *output, int32_t pixels, int32_t channels) {
    for (int32_t c0 = 0; c0 < channels; c0 += 16) {
        const __mmask16 mask = channel_block_mask(channels, c0);
        const __m512i total = channel_block_sum_avx512(input + c0, mask, pixels, channels);
        _mm_mask_storeu_epi8(output + c0, mask, _mm512_cvtepi32_epi8(rounded_mean_avx512(total, pixels)));
    }
}

void sieve_channel_sums_s8__avx512(const int8_t *input, int32_t *sums, int32_t pixels, int32_t channels) {
    for (int32_t c0 = 0; c0 < channels; c0 += 16) {
        const __mmask16 mask = channel_block_mask(channels, c0);
        _mm512_mask_storeu_epi32(sums + c0, mask, channel_block_sum_avx512(input + c0, mask, pixels, channels));
    }
}
SIEVE_TARGET_END
#endif
