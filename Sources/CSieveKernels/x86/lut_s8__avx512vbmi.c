// LUT (docs/FORMAT.md) with AVX-512 VBMI, 64 bytes a step: the 256-byte table is four registers,
// `vpermt2b` looks a byte up in two of them (128 entries, the index's low 7 bits) and the index's
// top bit picks which pair, so a step is an xor, two `vpermt2b`, a `vpmovb2m` and a blend, against
// the avx2 kernel's 16 rounds of `vpshufb` per 32 bytes. Tails are masked loads and stores, so the
// kernel neither reads nor writes past a row. CONCAT runs each input's
// channels of every pixel as one row (ShuffleNet's concats of 116 channels: 64 + a masked 52).
// The grouped LUT does this once per table group and keeps each lane's own group's answer.
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

// Each lane's group comes from the map extended past its end (ext[i] = map[i mod channels]): the
// 64 lanes of a step starting at channel o are ext[o ... o + 63], whatever the channel count.
// `groups` is a constant where it is inlined for 2, 3 or 4 tables, which then stay in registers.
static inline __attribute__((always_inline)) void grouped_steps(const sieve_lut_grouped_params *p, const uint8_t *ext, int32_t groups) {
    __m512i t[SIEVE_LUT_MAX_GROUPS][4];
    for (int32_t g = 0; g < groups; g++)
        for (int k = 0; k < 4; k++) t[g][k] = _mm512_loadu_si512(p->tables + 256 * g + 64 * k);
    const int32_t channels = p->channels;
    const int64_t count = (int64_t)p->pixels * channels;
    const int32_t advance = 64 % channels;
    int32_t channel = 0;  // the channel of the step's first lane
    for (int64_t i = 0; i < count; i += 64) {
        const __mmask64 lanes = count - i >= 64 ? ~(__mmask64)0 : ~(__mmask64)0 >> (64 - (count - i));
        const __m512i index = _mm512_xor_si512(_mm512_maskz_loadu_epi8(lanes, p->input + i), _mm512_set1_epi8((char)0x80));
        const __mmask64 upper = _mm512_movepi8_mask(index);
        const __m512i group = _mm512_loadu_si512(ext + channel);
        __m512i r = _mm512_setzero_si512();
        for (int32_t g = 0; g < groups; g++) {
            const __m512i low = _mm512_permutex2var_epi8(t[g][0], index, t[g][1]);
            const __m512i high = _mm512_permutex2var_epi8(t[g][2], index, t[g][3]);
            r = _mm512_mask_mov_epi8(r, _mm512_cmpeq_epi8_mask(group, _mm512_set1_epi8((char)g)), _mm512_mask_blend_epi8(upper, low, high));
        }
        _mm512_mask_storeu_epi8(p->output + i, lanes, r);
        channel += advance;
        if (channel >= channels) channel -= channels;
    }
}

void sieve_lut_grouped_s8__avx512vbmi(const sieve_lut_grouped_params *p) {
    uint8_t ext[SIEVE_LUT_GROUPED_MAX_CHANNELS + 64];
    for (int32_t i = 0; i < p->channels + 64; i++) ext[i] = p->map[i % p->channels];
    switch (p->groups) {
    case 2: grouped_steps(p, ext, 2); break;
    case 3: grouped_steps(p, ext, 3); break;
    case 4: grouped_steps(p, ext, 4); break;
    default: grouped_steps(p, ext, p->groups); break;
    }
}
SIEVE_TARGET_END
#endif
