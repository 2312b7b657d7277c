// Average pool on AVX2 (also taken by the avx512vnni path): 16 channels at a time, summed in int16
// (256 window positions of int8 cannot overflow it), widened to int32 every 256 positions, then the
// scalar kernel's rounded mean. A last block of fewer than 16 channels re-does the last 16,
// overlapping the previous block: it writes the same bytes. Fewer than 16 channels take the scalar kernel.
#if defined(__x86_64__)
#include "sieve_isa.h"
#include "sieve_target.h"

// Before any target region: gcc binds each intrinsic to the target in force where it is declared.
#include <immintrin.h>

SIEVE_TARGET_BEGIN("avx2")
// round-half-away(sum / count) for 4 int32 sums: sign(sum) * floor((|sum| + count/2) / count). The
// quotient of (a + 0.5) in double is at least 0.5/count away from an integer, far more than its
// rounding error (a < 2^31), so truncating it gives the exact floor.
static inline __m128i rounded_mean4(__m128i sum, __m256d reciprocal, __m128i half) {
    const __m128i a = _mm_add_epi32(_mm_abs_epi32(sum), half);
    const __m256d q = _mm256_mul_pd(_mm256_add_pd(_mm256_cvtepi32_pd(a), _mm256_set1_pd(0.5)), reciprocal);
    return _mm_sign_epi32(_mm256_cvttpd_epi32(q), sum);
}

void sieve_avgpool_s8__avx2(const sieve_pool_params *p) {
    const int32_t channels = p->channels;
    if (channels < 16) { sieve_avgpool_s8__scalar(p); return; }
    const ptrdiff_t row = (ptrdiff_t)p->in_w * channels;
    for (int32_t oy = 0; oy < p->out_h; oy++) {
        for (int32_t ox = 0; ox < p->out_w; ox++) {
            int8_t *out = p->output + ((size_t)oy * p->out_w + ox) * channels;
            const sieve_window w = sieve_pool_window(p, oy, ox);
            const int32_t cols = w.x1 - w.x0, count = (w.y1 - w.y0) * cols;
            const __m256d reciprocal = _mm256_set1_pd(1.0 / count);
            const __m128i half = _mm_set1_epi32(count / 2);
            const int8_t *first = p->input + (ptrdiff_t)w.y0 * row + (ptrdiff_t)w.x0 * channels;
            for (int32_t c = 0; c < channels; c += 16) {
                if (c + 16 > channels) c = channels - 16;
                __m256i lo = _mm256_setzero_si256(), hi = _mm256_setzero_si256();  // int32 sums of channels c..c+7, c+8..c+15
                __m256i sum16 = _mm256_setzero_si256();
                int32_t pending = 0;  // positions in sum16
                for (int32_t y = w.y0; y < w.y1; y++) {
                    const int8_t *in = first + (ptrdiff_t)(y - w.y0) * row + c;
                    for (int32_t x = 0; x < cols; x++, in += channels) {
                        sum16 = _mm256_add_epi16(sum16, _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)in)));
                        if (++pending == 256) {
                            lo = _mm256_add_epi32(lo, _mm256_cvtepi16_epi32(_mm256_castsi256_si128(sum16)));
                            hi = _mm256_add_epi32(hi, _mm256_cvtepi16_epi32(_mm256_extracti128_si256(sum16, 1)));
                            sum16 = _mm256_setzero_si256();
                            pending = 0;
                        }
                    }
                }
                lo = _mm256_add_epi32(lo, _mm256_cvtepi16_epi32(_mm256_castsi256_si128(sum16)));
                hi = _mm256_add_epi32(hi, _mm256_cvtepi16_epi32(_mm256_extracti128_si256(sum16, 1)));
                const __m128i m0 = rounded_mean4(_mm256_castsi256_si128(lo), reciprocal, half);
                const __m128i m1 = rounded_mean4(_mm256_extracti128_si256(lo, 1), reciprocal, half);
                const __m128i m2 = rounded_mean4(_mm256_castsi256_si128(hi), reciprocal, half);
                const __m128i m3 = rounded_mean4(_mm256_extracti128_si256(hi, 1), reciprocal, half);
                // Means of int8 values are int8: the saturating packs change nothing.
                _mm_storeu_si128((__m128i *)(out + c), _mm_packs_epi16(_mm_packs_epi32(m0, m1), _mm_packs_epi32(m2, m3)));
            }
        }
    }
}
SIEVE_TARGET_END
#endif
