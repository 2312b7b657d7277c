// Average pool on NEON, every AArch64 path: 16 channels at a time, widened into int16 sums (saddw;
// 256 window positions of int8 cannot overflow them), into int32 every 256 positions, then the
// scalar kernel's rounded mean. A last block of fewer than 16 channels re-does the last 16,
// overlapping the previous block: it writes the same bytes. Fewer than 16 channels take the scalar
// kernel. The global average pool is the same kernel with one window over every pixel.
#if defined(__aarch64__)
#include <arm_neon.h>
#include "sieve_target.h"

SIEVE_TARGET_BEGIN("arch=armv8-a+simd")

#include "sieve_isa.h"

// round-half-away(sum / count) for 4 int32 sums: sign(sum) * floor((|sum| + count/2) / count). The
// quotient of (a + 0.5) in double is at least 0.5/count away from an integer, far more than its
// rounding error (a < 2^31), so truncating it gives the exact floor.
static inline int32x4_t rounded_mean4(int32x4_t sum, float64x2_t reciprocal, int32x4_t half) {
    const int32x4_t a = vaddq_s32(vabsq_s32(sum), half);
    const int64x2_t a_lo = vmovl_s32(vget_low_s32(a)), a_hi = vmovl_high_s32(a);
    const float64x2_t point5 = vdupq_n_f64(0.5);
    const int64x2_t q_lo = vcvtq_s64_f64(vmulq_f64(vaddq_f64(vcvtq_f64_s64(a_lo), point5), reciprocal));
    const int64x2_t q_hi = vcvtq_s64_f64(vmulq_f64(vaddq_f64(vcvtq_f64_s64(a_hi), point5), reciprocal));
    const int32x4_t q = vcombine_s32(vmovn_s64(q_lo), vmovn_s64(q_hi));
    return vbslq_s32(vcltzq_s32(sum), vnegq_s32(q), q);
}

void sieve_avgpool_s8__neon(const sieve_pool_params *p) {
    const int32_t channels = p->channels;
    if (channels < 16) { sieve_avgpool_s8__scalar(p); return; }
    const ptrdiff_t row = (ptrdiff_t)p->in_w * channels;
    for (int32_t oy = 0; oy < p->out_h; oy++) {
        for (int32_t ox = 0; ox < p->out_w; ox++) {
            int8_t *out = p->output + ((size_t)oy * p->out_w + ox) * channels;
            const sieve_window w = sieve_pool_window(p, oy, ox);
            const int32_t cols = w.x1 - w.x0, count = (w.y1 - w.y0) * cols;
            const float64x2_t reciprocal = vdupq_n_f64(1.0 / count);
            const int32x4_t half = vdupq_n_s32(count / 2);
            const int8_t *first = p->input + (ptrdiff_t)w.y0 * row + (ptrdiff_t)w.x0 * channels;
            for (int32_t c = 0; c < channels; c += 16) {
                if (c + 16 > channels) c = channels - 16;
                int32x4_t s0 = vdupq_n_s32(0), s1 = s0, s2 = s0, s3 = s0;  // int32 sums of channels c..c+15
                int16x8_t lo = vdupq_n_s16(0), hi = lo;
                int32_t pending = 0;  // positions in lo, hi
                for (int32_t y = w.y0; y < w.y1; y++) {
                    const int8_t *in = first + (ptrdiff_t)(y - w.y0) * row + c;
                    for (int32_t x = 0; x < cols; x++, in += channels) {
                        const int8x16_t v = vld1q_s8(in);
                        lo = vaddw_s8(lo, vget_low_s8(v));
                        hi = vaddw_high_s8(hi, v);
                        if (++pending == 256) {
                            s0 = vaddw_s16(s0, vget_low_s16(lo)); s1 = vaddw_high_s16(s1, lo);
                            s2 = vaddw_s16(s2, vget_low_s16(hi)); s3 = vaddw_high_s16(s3, hi);
                            lo = hi = vdupq_n_s16(0);
                            pending = 0;
                        }
                    }
                }
                s0 = vaddw_s16(s0, vget_low_s16(lo)); s1 = vaddw_high_s16(s1, lo);
                s2 = vaddw_s16(s2, vget_low_s16(hi)); s3 = vaddw_high_s16(s3, hi);
                // Means of int8 values are int8: the narrowing changes nothing.
                const int16x8_t m01 = vcombine_s16(vmovn_s32(rounded_mean4(s0, reciprocal, half)), vmovn_s32(rounded_mean4(s1, reciprocal, half)));
                const int16x8_t m23 = vcombine_s16(vmovn_s32(rounded_mean4(s2, reciprocal, half)), vmovn_s32(rounded_mean4(s3, reciprocal, half)));
                vst1q_s8(out + c, vcombine_s8(vmovn_s16(m01), vmovn_s16(m23)));
            }
        }
    }
}

void sieve_global_avgpool_s8__neon(const int8_t *input, int8_t *output, int32_t pixels, int32_t channels) {
    sieve_pool_params p = {0};
    p.input = input;
    p.output = output;
    p.in_h = 1, p.in_w = pixels, p.channels = channels;
    p.out_h = 1, p.out_w = 1;
    p.kernel_h = 1, p.kernel_w = pixels, p.stride_h = 1, p.stride_w = 1;
    sieve_avgpool_s8__neon(&p);
}

SIEVE_TARGET_END
#endif
