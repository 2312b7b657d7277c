// Max pool on NEON, every AArch64 path: a byte max over the window (smax), 16 channels at a time.
// A tail of 8...15 channels re-does the last 16 (or 8) overlapping the previous block: max is
// idempotent, so the overlap writes the same bytes; fewer than 8 channels take the scalar loop.
#if defined(__aarch64__)
#include <arm_neon.h>
#include "sieve_target.h"

SIEVE_TARGET_BEGIN("arch=armv8-a+simd")

#include "sieve_isa.h"

void sieve_maxpool_s8__neon(const sieve_pool_params *p) {
    const int32_t channels = p->channels;
    const ptrdiff_t row = (ptrdiff_t)p->in_w * channels;
    if (p->kernel_h == 2 && p->kernel_w == 2 && p->stride_h == 2 && p->stride_w == 2 && p->pad_top == 0 && p->pad_left == 0 &&
        2 * p->out_h <= p->in_h && 2 * p->out_w <= p->in_w && channels % 16 == 0) {
        // 2x2/2 without padding: every window whole, the pointers stepped along each output row.
        int8_t *out = p->output;
        for (int32_t oy = 0; oy < p->out_h; oy++) {
            const int8_t *a = p->input + (ptrdiff_t)(2 * oy) * row;
            for (int32_t ox = 0; ox < p->out_w; ox++, a += 2 * channels, out += channels)
                for (int32_t k = 0; k < channels; k += 16)
                    vst1q_s8(out + k, vmaxq_s8(vmaxq_s8(vld1q_s8(a + k), vld1q_s8(a + channels + k)),
                                               vmaxq_s8(vld1q_s8(a + row + k), vld1q_s8(a + row + channels + k))));
        }
        return;
    }
    for (int32_t oy = 0; oy < p->out_h; oy++) {
        for (int32_t ox = 0; ox < p->out_w; ox++) {
            int8_t *out = p->output + ((size_t)oy * p->out_w + ox) * channels;
            const sieve_window w = sieve_pool_window(p, oy, ox);
            const int8_t *first = p->input + (ptrdiff_t)w.y0 * row + (ptrdiff_t)w.x0 * channels;
            if (w.y1 - w.y0 == 2 && w.x1 - w.x0 == 2 && channels % 16 == 0) {
                // A whole 2x2 window (the common 2x2/2 pool): four loads and a max tree per 16
                // channels, no running max (its smax chain bounded the loop above).
                const int8_t *a = first, *b = first + channels, *d = first + row, *e = first + row + channels;
                for (int32_t k = 0; k < channels; k += 16)
                    vst1q_s8(out + k, vmaxq_s8(vmaxq_s8(vld1q_s8(a + k), vld1q_s8(b + k)), vmaxq_s8(vld1q_s8(d + k), vld1q_s8(e + k))));
                continue;
            }
            int32_t c = 0;
            for (; c < channels; c += 16) {
                if (c + 16 > channels) {
                    if (channels < 16) break;
                    c = channels - 16;
                }
                int8x16_t best = vdupq_n_s8(-128);
                for (const int8_t *r = first; r < first + (w.y1 - w.y0) * row; r += row)
                    for (int32_t x = 0; x < w.x1 - w.x0; x++) best = vmaxq_s8(best, vld1q_s8(r + (ptrdiff_t)x * channels + c));
                vst1q_s8(out + c, best);
            }
            if (channels >= 16) continue;
            if (channels >= 8) {
                for (c = 0; c < channels; c += 8) {
                    if (c + 8 > channels) c = channels - 8;
                    int8x8_t best = vdup_n_s8(-128);
                    for (const int8_t *r = first; r < first + (w.y1 - w.y0) * row; r += row)
                        for (int32_t x = 0; x < w.x1 - w.x0; x++) best = vmax_s8(best, vld1_s8(r + (ptrdiff_t)x * channels + c));
                    vst1_s8(out + c, best);
                }
                continue;
            }
            for (c = 0; c < channels; c++) {
                int8_t best = -128;
                for (const int8_t *r = first; r < first + (w.y1 - w.y0) * row; r += row)
                    for (int32_t x = 0; x < w.x1 - w.x0; x++) best = r[(ptrdiff_t)x * channels + c] > best ? r[(ptrdiff_t)x * channels + c] : best;
                out[c] = best;
            }
        }
    }
}

SIEVE_TARGET_END
#endif
