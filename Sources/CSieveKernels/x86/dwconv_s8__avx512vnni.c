// Depthwise convolution (depth multiplier 1) on AVX-512: the band is staged padded, weights are
// widened to int32 at pack time, and each output pixel accumulates 16 channels per zmm with
// vpmulld, four pixels at a time so every weight load serves four. Multipliers > 1 stay scalar.
#if defined(__x86_64__)
#include "sieve_isa.h"
#include "sieve_pack.h"
#include "sieve_target.h"

// Before any target region: gcc binds each intrinsic to the target in force where it is declared.
#include <immintrin.h>

SIEVE_TARGET_BEGIN("avx512f,avx512bw,avx512vl,avx512vnni")
#include "requantize_avx512.h"
#include "dwconv_wide.h"

#define PIXELS 4

size_t sieve_dwconv_packed_size__avx512vnni(const sieve_conv_params *p) {
    if (p->out_c != p->in_c) return 0;
    return dw_wide_size(p) + (size_t)sieve_round_up(p->out_c, 16) / 16 * sizeof(sieve_rq_block_avx512);
}

void sieve_dwconv_pack__avx512vnni(const sieve_conv_params *p, void *packed) {
    dw_wide_pack(p, packed);
    const dw_wide_view v = dw_wide(packed, p);
    sieve_rq_block_avx512 *blocks = (sieve_rq_block_avx512 *)v.blocks;
    for (int32_t c = 0; c < v.cp; c += 16) sieve_rq_block_fill(blocks + c / 16, v.multipliers + c, v.shifts + c);
}

size_t sieve_dwconv_scratch_size__avx512vnni(const sieve_conv_params *p) { return dw_wide_scratch_size(p); }

static inline __attribute__((always_inline)) void dw_pixels(const sieve_conv_params *p, const int8_t *x, int32_t pixel_stride,
                                                           int32_t row_stride, const int32_t *w, int32_t cp, const int32_t *bias,
                                                           const int32_t *multipliers, const sieve_rq_block_avx512 *block,
                                                           const __m512i zlh[3], int8_t *out, __mmask16 mask, const int pixels) {
    __m512i acc[PIXELS];
    for (int j = 0; j < pixels; j++) acc[j] = _mm512_loadu_si512(bias);
    for (int32_t ky = 0; ky < p->kernel_h; ky++) {
        for (int32_t kx = 0; kx < p->kernel_w; kx++) {
            const __m512i wv = _mm512_loadu_si512(w + (size_t)(ky * p->kernel_w + kx) * cp);
            const int8_t *xt = x + (size_t)ky * row_stride + (size_t)kx * p->in_c;
            for (int j = 0; j < pixels; j++) {
                const __m512i xv = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(xt + (size_t)j * pixel_stride)));
                acc[j] = _mm512_add_epi32(acc[j], _mm512_mullo_epi32(xv, wv));
            }
        }
    }
    for (int j = 0; j < pixels; j++) {
        _mm_mask_storeu_epi8(out + (size_t)j * p->out_c, mask, sieve_rq16_block_avx512(acc[j], multipliers, block, zlh[0], zlh[1], zlh[2]));
    }
}

void sieve_dwconv_s8__avx512vnni(const sieve_conv_params *p, const void *packed, void *scratch) {
    sieve_pad_input(p, 0, (uint8_t *)scratch);
    const int8_t *staged = (const int8_t *)scratch;
    const int32_t c = p->in_c;
    const dw_wide_view v = dw_wide(packed, p);
    const int32_t cp = v.cp;
    const int32_t row_stride = sieve_conv_span_w(p) * c, pixel_stride = p->stride_w * c;
    const int32_t *w = v.weights, *bias = v.bias, *multipliers = v.multipliers;
    const sieve_rq_block_avx512 *blocks = (const sieve_rq_block_avx512 *)v.blocks;
    const __m512i zlh[3] = {_mm512_set1_epi32(p->output_zero_point), _mm512_set1_epi32(p->act_min), _mm512_set1_epi32(p->act_max)};
    for (int32_t oy = 0; oy < p->out_h; oy++) {
        const int8_t *x_row = staged + (size_t)oy * p->stride_h * row_stride;
        int8_t *out_row = p->output + (size_t)oy * p->out_w * c;
        for (int32_t c0 = 0; c0 < c; c0 += 16) {
            const __mmask16 mask = c - c0 >= 16 ? 0xFFFF : (__mmask16)((1u << (c - c0)) - 1);
            int32_t ox = 0;
            for (; ox + PIXELS <= p->out_w; ox += PIXELS) {
                dw_pixels(p, x_row + (size_t)ox * pixel_stride + c0, pixel_stride, row_stride, w + c0, cp, bias + c0, multipliers + c0,
                          blocks + c0 / 16, zlh, out_row + (size_t)ox * c + c0, mask, PIXELS);
            }
            for (; ox < p->out_w; ox++) {
                dw_pixels(p, x_row + (size_t)ox * pixel_stride + c0, pixel_stride, row_stride, w + c0, cp, bias + c0, multipliers + c0,
                          blocks + c0 / 16, zlh, out_row + (size_t)ox * c + c0, mask, 1);
            }
        }
    }
}

SIEVE_TARGET_END
#endif
