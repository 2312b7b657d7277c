// Channel sums on AVX2, and the global average pool (the heads' first op) made of them: int32 sums of
// 8 channels per register; the pool's rounded mean as in channel_sums_s8__avx512.c. Exact logits
// fold the pool in as these sums.
#if defined(__x86_64__)
#include <string.h>
#include "sieve_isa.h"
#include "sieve_target.h"

// Before any target region: gcc binds each intrinsic to the target in force where it is declared.
#include <immintrin.h>

SIEVE_TARGET_BEGIN("avx2")
// The int32 sums of channels [c0, c0 + 8) over every pixel (a partial last block reads through a copy).
static inline __m256i channel_block_sum_avx2(const int8_t *input, int32_t c0, int32_t pixels, int32_t channels) {
    const int32_t n = channels - c0 < 8 ? channels - c0 : 8;
    __m256i sum = _mm256_setzero_si256();
    for (int32_t i = 0; i < pixels; i++) {
        int8_t eight[8] = {0};
        const int8_t *in = input + (size_t)i * channels + c0;
        if (n < 8) { memcpy(eight, in, (size_t)n); in = eight; }
        sum = _mm256_add_epi32(sum, _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)in)));
    }
    return sum;
}

void sieve_global_avgpool_s8__avx2(const int8_t *input, int8_t *output, int32_t pixels, int32_t channels) {
    const __m256d d = _mm256_set1_pd((double)pixels);
    const __m256i half = _mm256_set1_epi32(pixels / 2);
    for (int32_t c0 = 0; c0 < channels; c0 += 8) {
        const int32_t n = channels - c0 < 8 ? channels - c0 : 8;
        const __m256i sum = channel_block_sum_avx2(input, c0, pixels, channels);
        const __m256i negative = _mm256_cmpgt_epi32(_mm256_setzero_si256(), sum);
        const __m256i numerator = _mm256_blendv_epi8(_mm256_add_epi32(sum, half), _mm256_sub_epi32(sum, half), negative);
        const __m128i lo = _mm256_cvttpd_epi32(_mm256_div_pd(_mm256_cvtepi32_pd(_mm256_castsi256_si128(numerator)), d));
        const __m128i hi = _mm256_cvttpd_epi32(_mm256_div_pd(_mm256_cvtepi32_pd(_mm256_extracti128_si256(numerator, 1)), d));
        int32_t means[8];
        _mm_storeu_si128((__m128i *)means, lo);
        _mm_storeu_si128((__m128i *)(means + 4), hi);
        for (int32_t i = 0; i < n; i++) output[c0 + i] = (int8_t)means[i];
    }
}

void sieve_channel_sums_s8__avx2(const int8_t *input, int32_t *sums, int32_t pixels, int32_t channels) {
    for (int32_t c0 = 0; c0 < channels; c0 += 8) {
        const int32_t n = channels - c0 < 8 ? channels - c0 : 8;
        int32_t eight[8];
        _mm256_storeu_si256((__m256i *)eight, channel_block_sum_avx2(input, c0, pixels, channels));
        memcpy(sums + c0, eight, (size_t)n * sizeof(int32_t));
    }
}
SIEVE_TARGET_END
#endif
