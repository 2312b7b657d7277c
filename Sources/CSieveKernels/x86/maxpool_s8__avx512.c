// Max pool on AVX-512: a byte max over the window, 64 channels at a time.
#if defined(__x86_64__)
#include <string.h>
#include "sieve_isa.h"
#include "sieve_target.h"

// Before any target region: gcc binds each intrinsic to the target in force where it is declared.
#include <immintrin.h>

SIEVE_TARGET_BEGIN("avx512f,avx512bw,avx512vl,avx512dq")
#include "store_avx512.h"
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
