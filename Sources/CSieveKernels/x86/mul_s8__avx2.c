// MUL (docs/FORMAT.md) on AVX2: the scalar kernel's product and requantisation, 8 elements at a
// time in int32 lanes (the product needs 17 bits). A broadcast second input runs pixel by pixel.
#if defined(__x86_64__)
#include <string.h>
#include "sieve_isa.h"
#include "sieve_target.h"

// Before any target region: gcc binds each intrinsic to the target in force where it is declared.
#include <immintrin.h>

SIEVE_TARGET_BEGIN("avx2")
#include "requantize_uniform_avx2.h"

// y[i] for i < n from x0[i] and x1[i].
static void mul_run_avx2(const sieve_mul_params *p, const int8_t *x0, const int8_t *x1, int8_t *y, int32_t n) {
    const __m256i zp0 = _mm256_set1_epi32(p->zero_point0), zp1 = _mm256_set1_epi32(p->zero_point1);
    const __m256i zp = _mm256_set1_epi32(p->output_zero_point), lo = _mm256_set1_epi32(p->act_min), hi = _mm256_set1_epi32(p->act_max);
    const rq_uniform_avx2_consts c = rq_uniform_avx2_prepare(p->multiplier, p->shift);
    for (int32_t i = 0; i < n; i += 8) {
        const int32_t count = n - i < 8 ? n - i : 8;
        int8_t in0[8] = {0}, in1[8] = {0}, bytes[16];
        const int8_t *a8 = x0 + i, *b8 = x1 + i;
        if (count < 8) {  // the tail: never read past either input
            memcpy(in0, a8, (size_t)count);
            memcpy(in1, b8, (size_t)count);
            a8 = in0;
            b8 = in1;
        }
        const __m256i a = _mm256_sub_epi32(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)a8)), zp0);
        const __m256i b = _mm256_sub_epi32(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)b8)), zp1);
        __m256i v = _mm256_add_epi32(rq_uniform_avx2(_mm256_mullo_epi32(a, b), &c), zp);
        v = _mm256_max_epi32(_mm256_min_epi32(v, hi), lo);
        const __m256i packed = _mm256_packs_epi16(_mm256_packs_epi32(v, v), v);
        const __m128i eight = _mm_unpacklo_epi32(_mm256_castsi256_si128(packed), _mm256_extracti128_si256(packed, 1));
        if (count == 8) {  // one store; a variable-length memcpy is a library call
            _mm_storel_epi64((__m128i *)(y + i), eight);
        } else {
            _mm_storel_epi64((__m128i *)bytes, eight);
            memcpy(y + i, bytes, (size_t)count);
        }
    }
}

void sieve_mul_s8__avx2(const sieve_mul_params *p) {
    if (!p->broadcast) {
        mul_run_avx2(p, p->input0, p->input1, p->output, p->pixels * p->channels);
        return;
    }
    for (int32_t i = 0; i < p->pixels; i++) {
        const size_t at = (size_t)i * p->channels;
        mul_run_avx2(p, p->input0 + at, p->input1, p->output + at, p->channels);
    }
}
SIEVE_TARGET_END
#endif
