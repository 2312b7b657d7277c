// Depthwise convolution (depth multiplier 1) on AVX2: as the AVX-512 kernel, 8 channels per ymm.
#if defined(__x86_64__)
#include "sieve_isa.h"
#include "sieve_pack.h"
#include "sieve_target.h"

// Before any target region: gcc binds each intrinsic to the target in force where it is declared.
#include <immintrin.h>

SIEVE_TARGET_BEGIN("avx2")
#include <string.h>
#include "requantize_avx2.h"
#include "dwconv_wide.h"

#define PIXELS 4

size_t sieve_dwconv_packed_size__avx2(const sieve_conv_params *p) {
    if (p->out_c != p->in_c) return 0;
    return dw_wide_size(p) + (size_t)sieve_round_up(p->out_c, 16) / 8 * sizeof(sieve_rq_block_avx2);
}

void sieve_dwconv_pack__avx2(const sieve_conv_params *p, void *packed) {
    dw_wide_pack(p, packed);
    const dw_wide_view v = dw_wide(packed, p);
    sieve_rq_block_avx2 *blocks = (sieve_rq_block_avx2 *)v.blocks;
    for (int32_t c = 0; c < v.cp; c += 8) sieve_rq_block_avx2_fill(blocks + c / 8, v.multipliers + c, v.shifts + c);
}

size_t sieve_dwconv_scratch_size__avx2(const sieve_conv_params *p) { return dw_wide_scratch_size(p); }

static inline __attribute__((always_inline)) void dw_pixels(const sieve_conv_params *p, const int8_t *x, int32_t pixel_stride,
                                                           int32_t row_stride, const int32_t *w, int32_t cp, const int32_t *bias,
                                                           const int32_t *multipliers, const sieve_rq_block_avx2 *block,
                                                           const __m256i zlh[3], int8_t *out, int32_t n, const int pixels) {
    __m256i acc[PIXELS];
    for (int j = 0; j < pixels; j++) acc[j] = _mm256_loadu_si256((const __m256i *)bias);
    for (int32_t ky = 0; ky < p->kernel_h; ky++) {
        for (int32_t kx = 0; kx < p->kernel_w; kx++) {
            const __m256i wv = _mm256_loadu_si256((const __m256i *)(w + (size_t)(ky * p->kernel_w + kx) * cp));
            const int8_t *xt = x + (size_t)ky * row_stride + (size_t)kx * p->in_c;
            for (int j = 0; j < pixels; j++) {
                const __m256i xv = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(xt + (size_t)j * pixel_stride)));
                acc[j] = _mm256_add_epi32(acc[j], _mm256_mullo_epi32(xv, wv));
            }
        }
    }
    for (int j = 0; j < pixels; j++) {
        int8_t bytes[16];
        _mm_storel_epi64((__m128i *)bytes, sieve_rq8_avx2(acc[j], multipliers, block, zlh[0], zlh[1], zlh[2]));
        memcpy(out + (size_t)j * p->out_c, bytes, (size_t)n);
    }
}

void sieve_dwconv_s8__avx2(const sieve_conv_params *p, const void *packed, void *scratch) {
    sieve_pad_input(p, 0, (uint8_t *)scratch);
    const int8_t *staged = (const int8_t *)scratch;
    const int32_t c = p->in_c;
    const dw_wide_view v = dw_wide(packed, p);
    const int32_t cp = v.cp;
    const int32_t row_stride = sieve_conv_span_w(p) * c, pixel_stride = p->stride_w * c;
    const int32_t *w = v.weights, *bias = v.bias, *multipliers = v.multipliers;
    const sieve_rq_block_avx2 *blocks = (const sieve_rq_block_avx2 *)v.blocks;
    const __m256i zlh[3] = {_mm256_set1_epi32(p->output_zero_point), _mm256_set1_epi32(p->act_min), _mm256_set1_epi32(p->act_max)};
    for (int32_t oy = 0; oy < p->out_h; oy++) {
        const int8_t *x_row = staged + (size_t)oy * p->stride_h * row_stride;
        int8_t *out_row = p->output + (size_t)oy * p->out_w * c;
        for (int32_t c0 = 0; c0 < c; c0 += 8) {
            const int32_t n = c - c0 >= 8 ? 8 : c - c0;
            int32_t ox = 0;
            for (; ox + PIXELS <= p->out_w; ox += PIXELS) {
                dw_pixels(p, x_row + (size_t)ox * pixel_stride + c0, pixel_stride, row_stride, w + c0, cp, bias + c0, multipliers + c0,
                          blocks + c0 / 8, zlh, out_row + (size_t)ox * c + c0, n, PIXELS);
            }
            for (; ox < p->out_w; ox++) {
                dw_pixels(p, x_row + (size_t)ox * pixel_stride + c0, pixel_stride, row_stride, w + c0, cp, bias + c0, multipliers + c0,
                          blocks + c0 / 8, zlh, out_row + (size_t)ox * c + c0, n, 1);
            }
        }
    }
}

SIEVE_TARGET_END
#endif
