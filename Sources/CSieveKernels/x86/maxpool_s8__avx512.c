// Max pool on AVX-512: a byte max over the window, 64 channels at a time. When an input row fits
// in ROW_BYTES the pool is separable: each output row first takes the max of its window's input
// rows over the whole row at once (every load a full 64 bytes but the row's last), into a buffer
// on the stack, then each output pixel the max of its window's columns there. Straight from the
// input, a block narrower than 64 channels was a masked load per tap, slow when it crosses a cache
// line on Intel cores: ShuffleNetV2's 3x3 pool of 112x112x24 took 67-88 us, 39-48 separable.
#if defined(__x86_64__)
#include <string.h>
#include "sieve_isa.h"
#include "sieve_target.h"

// Before any target region: gcc binds each intrinsic to the target in force where it is declared.
#include <immintrin.h>

SIEVE_TARGET_BEGIN("avx512f,avx512bw,avx512vl,avx512dq")
#include "store_avx512.h"
#define ROW_BYTES 8192  // ResNet's 112x112x64 pool, ShuffleNet's 112x112x24, VGG's 224x224x32

static void maxpool_separable(const sieve_pool_params *p) {
    const int32_t channels = p->channels, row = p->in_w * p->channels;
    _Alignas(64) int8_t columns[ROW_BYTES + 64];  // + 64: a pixel's block may load past the row
    const __mmask64 row_tail = row % 64 ? ~(__mmask64)0 >> (64 - row % 64) : ~(__mmask64)0;
    for (int32_t oy = 0; oy < p->out_h; oy++) {
        const sieve_window rows = sieve_pool_window(p, oy, 0);
        const int8_t *top = p->input + (size_t)rows.y0 * row;
        for (int32_t i = 0; i < row; i += 64) {
            const int whole = i + 64 <= row;
            __m512i best = whole ? _mm512_loadu_si512(top + i) : _mm512_maskz_loadu_epi8(row_tail, top + i);
            for (int32_t y = rows.y0 + 1; y < rows.y1; y++) {
                const int8_t *in = p->input + (size_t)y * row + i;
                best = _mm512_max_epi8(best, whole ? _mm512_loadu_si512(in) : _mm512_maskz_loadu_epi8(row_tail, in));
            }
            _mm512_store_si512(columns + i, best);
        }
        for (int32_t ox = 0; ox < p->out_w; ox++) {
            const sieve_window w = sieve_pool_window(p, oy, ox);
            int8_t *out = p->output + ((size_t)oy * p->out_w + ox) * channels;
            for (int32_t c0 = 0; c0 < channels; c0 += 64) {
                const int32_t n = channels - c0 < 64 ? channels - c0 : 64;
                __m512i best = _mm512_loadu_si512(columns + w.x0 * channels + c0);
                for (int32_t x = w.x0 + 1; x < w.x1; x++) best = _mm512_max_epi8(best, _mm512_loadu_si512(columns + x * channels + c0));
                sieve_store64_avx512(out + c0, n == 64 ? ~(__mmask64)0 : ~(__mmask64)0 >> (64 - n), best);
            }
        }
    }
}

void sieve_maxpool_s8__avx512(const sieve_pool_params *p) {
    if ((int64_t)p->in_w * p->channels <= ROW_BYTES) {
        maxpool_separable(p);
        return;
    }
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
                        // A plain load for a whole block (masked loads cost more on AMD Zen 5).
                        best = _mm512_max_epi8(best, n == 64 ? _mm512_loadu_si512(in) : _mm512_maskz_loadu_epi8(mask, in));
                    }
                }
                sieve_store64_avx512(out + c0, mask, best);
            }
        }
    }
}
SIEVE_TARGET_END
#endif
