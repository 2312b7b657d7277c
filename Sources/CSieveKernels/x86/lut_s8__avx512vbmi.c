// LUT (docs/FORMAT.md) with AVX-512 VBMI, 64 bytes a step: the 256-byte table is four registers,
// `vpermt2b` looks a byte up in two of them (128 entries, the index's low 7 bits) and the index's
// top bit picks which pair, so a step is an xor, two `vpermt2b`, a `vpmovb2m` and a blend, against
// the avx2 kernel's 16 rounds of `vpshufb` per 32 bytes. Tails are masked loads and stores, so the
// kernel neither reads nor writes past a row. CONCAT runs each input's
// channels of every pixel as one row (ShuffleNet's concats of 116 channels: 64 + a masked 52).
#if defined(__x86_64__)
#include "sieve_isa.h"
#include "sieve_target.h"

// Before any target region: gcc binds each intrinsic to the target in force where it is declared.
#include <immintrin.h>

SIEVE_TARGET_BEGIN("avx512f,avx512bw,avx512vbmi")
static inline __m512i lookup(__m512i q, __m512i t0, __m512i t1, __m512i t2, __m512i t3) {
    const __m512i index = _mm512_xor_si512(q, _mm512_set1_epi8((char)0x80));  // q + 128
    const __m512i low = _mm512_permutex2var_epi8(t0, index, t1), high = _mm512_permutex2var_epi8(t2, index, t3);
    return _mm512_mask_blend_epi8(_mm512_movepi8_mask(index), low, high);
}

void sieve_lut_rows_s8__avx512vbmi(const int8_t *input, int32_t input_stride, int8_t *output, int32_t output_stride,
                                   int32_t rows, int32_t count, const int8_t *table) {
    const __m512i t0 = _mm512_loadu_si512(table), t1 = _mm512_loadu_si512(table + 64);
    const __m512i t2 = _mm512_loadu_si512(table + 128), t3 = _mm512_loadu_si512(table + 192);
    const int32_t whole = count & ~63;
    const __mmask64 tail = count & 63 ? (~(__mmask64)0 >> (64 - (count & 63))) : 0;
    for (int32_t row = 0; row < rows; row++, input += input_stride, output += output_stride) {
        for (int32_t i = 0; i < whole; i += 64)
            _mm512_storeu_si512(output + i, lookup(_mm512_loadu_si512(input + i), t0, t1, t2, t3));
        if (tail) _mm512_mask_storeu_epi8(output + whole, tail, lookup(_mm512_maskz_loadu_epi8(tail, input + whole), t0, t1, t2, t3));
    }
}
SIEVE_TARGET_END
#endif
