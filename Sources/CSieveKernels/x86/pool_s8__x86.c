// Pools on AVX-512 and AVX2. Max pool: a byte max over the window, 64 (32) channels at a time.
// Global average pool (the heads' first op) and the channel sums exact logits fold it into: int32
// sums of 16 (8) channels per register; the pool then takes the
// scalar kernel's rounded mean, (sum +- count/2) / count truncated, computed as a double division:
// exact, since |sum| < 2^53 keeps the quotient's error below 1/count.
#if defined(__x86_64__)
#include <string.h>
#include "sieve_kernels.h"
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

void sieve_maxpool_s8__avx512(const sieve_pool_params *p) {
    for (int32_t oy = 0; oy < p->out_h; oy++) {
        for (int32_t ox = 0; ox < p->out_w; ox++) {
            int8_t *out = p->output + ((size_t)oy * p->out_w + ox) * p->channels;
            for (int32_t c0 = 0; c0 < p->channels; c0 += 64) {
                const int32_t n = p->channels - c0 < 64 ? p->channels - c0 : 64;
                const __mmask64 mask = n == 64 ? ~(__mmask64)0 : (((__mmask64)1 << n) - 1);
                __m512i best = _mm512_set1_epi8(-128);
                for (int32_t ky = 0; ky < p->kernel_h; ky++) {
                    const int32_t iy = oy * p->stride_h - p->pad_top + ky;
                    if (iy < 0 || iy >= p->in_h) continue;
                    for (int32_t kx = 0; kx < p->kernel_w; kx++) {
                        const int32_t ix = ox * p->stride_w - p->pad_left + kx;
                        if (ix < 0 || ix >= p->in_w) continue;
                        const int8_t *in = p->input + ((size_t)iy * p->in_w + ix) * p->channels + c0;
                        best = _mm512_max_epi8(best, _mm512_maskz_loadu_epi8(mask, in));
                    }
                }
                _mm512_mask_storeu_epi8(out + c0, mask, best);
            }
        }
    }
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
