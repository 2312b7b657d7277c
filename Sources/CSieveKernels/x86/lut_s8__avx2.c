// LUT (docs/FORMAT.md) on AVX2: 32 bytes per step, the 256-byte table as 16 vpshufb tables of 16.
// Step k looks up every lane with index - 16k saturated into 0x70...0x7F when it lies in [0, 15]
// and into 0x80...0xFF (vpshufb writes 0) otherwise, so the 16 results OR together. Rows of a strided
// 2-D block share the loaded tables: CONCAT runs each input's channels of every pixel as one row.
// A row's tail is its last 32 bytes looked up again (some written twice, with the same bytes: the
// output never overlaps the input), not a copy through the stack.
#if defined(__x86_64__)
#include <string.h>
#include "sieve_isa.h"
#include "sieve_target.h"

#include <immintrin.h>

SIEVE_TARGET_BEGIN("avx2")
void sieve_lut_rows_s8__avx2(const int8_t *input, int32_t input_stride, int8_t *output, int32_t output_stride,
                             int32_t rows, int32_t count, const int8_t *table) {
    __m256i tables[16];
    for (int k = 0; k < 16; k++) tables[k] = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(table + 16 * k)));
    const __m256i bias = _mm256_set1_epi8((char)0x80), step = _mm256_set1_epi8(16), lift = _mm256_set1_epi8(0x70);
    for (int32_t row = 0; row < rows; row++, input += input_stride, output += output_stride)
    for (int32_t i = 0; i < count; i += 32) {
        int32_t n = count - i < 32 ? count - i : 32;
        if (n < 32 && count >= 32) {  // the tail: the row's last 32 bytes again (above)
            i = count - 32;
            n = 32;
        }
        int8_t in[32] = {0}, out[32];
        const int8_t *src = input + i;
        if (n < 32) {  // a row shorter than a step: never read past the input
            memcpy(in, src, (size_t)n);
            src = in;
        }
        __m256i index = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)src), bias);  // q + 128
        __m256i r = _mm256_setzero_si256();
        for (int k = 0; k < 16; k++) {
            r = _mm256_or_si256(r, _mm256_shuffle_epi8(tables[k], _mm256_adds_epu8(index, lift)));
            index = _mm256_sub_epi8(index, step);
        }
        if (n == 32) {
            _mm256_storeu_si256((__m256i *)(output + i), r);
        } else {
            _mm256_storeu_si256((__m256i *)out, r);
            memcpy(output + i, out, (size_t)n);
        }
    }
}
SIEVE_TARGET_END
#endif
