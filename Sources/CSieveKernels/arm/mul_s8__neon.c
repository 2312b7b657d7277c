// MUL (docs/FORMAT.md) on NEON, every AArch64 path: 8 elements at a time, the zero points taken
// off in int16, the product widened to int32 (smull), rq in int64 (smull, add, sshl), low 32 bits kept.
#if defined(__aarch64__)
#include <arm_neon.h>
#include <string.h>
#include "sieve_target.h"

SIEVE_TARGET_BEGIN("arch=armv8-a+simd")

#include "sieve_isa.h"

static inline int32x4_t mul_rq_neon(int32x4_t x, int32x2_t m, int64x2_t round, int64x2_t shift) {
    const int64x2_t low = vshlq_s64(vaddq_s64(vmull_s32(vget_low_s32(x), m), round), shift);
    const int64x2_t high = vshlq_s64(vaddq_s64(vmull_s32(vget_high_s32(x), m), round), shift);
    return vcombine_s32(vmovn_s64(low), vmovn_s64(high));
}

static void mul_run_neon(const sieve_mul_params *p, const int8_t *x0, const int8_t *x1, int8_t *y, int32_t n) {
    const int16x8_t zp0 = vdupq_n_s16((int16_t)p->zero_point0), zp1 = vdupq_n_s16((int16_t)p->zero_point1);
    const int32x4_t zp = vdupq_n_s32(p->output_zero_point), lo = vdupq_n_s32(p->act_min), hi = vdupq_n_s32(p->act_max);
    const int32x2_t m = vdup_n_s32(p->multiplier);
    const int64x2_t round = vdupq_n_s64((int64_t)1 << (p->shift - 1)), shift = vdupq_n_s64(-(int64_t)p->shift);
    for (int32_t i = 0; i < n; i += 8) {
        const int32_t count = n - i < 8 ? n - i : 8;
        int8_t in0[8] = {0}, in1[8] = {0}, bytes[8];
        const int8_t *a8 = x0 + i, *b8 = x1 + i;
        if (count < 8) {  // the tail: never read past either input
            memcpy(in0, a8, (size_t)count);
            memcpy(in1, b8, (size_t)count);
            a8 = in0;
            b8 = in1;
        }
        const int16x8_t a = vsubq_s16(vmovl_s8(vld1_s8(a8)), zp0), b = vsubq_s16(vmovl_s8(vld1_s8(b8)), zp1);
        int32x4_t v0 = vaddq_s32(mul_rq_neon(vmull_s16(vget_low_s16(a), vget_low_s16(b)), m, round, shift), zp);
        int32x4_t v1 = vaddq_s32(mul_rq_neon(vmull_s16(vget_high_s16(a), vget_high_s16(b)), m, round, shift), zp);
        v0 = vmaxq_s32(vminq_s32(v0, hi), lo);
        v1 = vmaxq_s32(vminq_s32(v1, hi), lo);
        const int8x8_t eight = vmovn_s16(vcombine_s16(vmovn_s32(v0), vmovn_s32(v1)));
        if (count == 8) {  // one store; a variable-length memcpy is a library call
            vst1_s8(y + i, eight);
        } else {
            vst1_s8(bytes, eight);
            memcpy(y + i, bytes, (size_t)count);
        }
    }
}

void sieve_mul_s8__neon(const sieve_mul_params *p) {
    if (!p->broadcast) {
        mul_run_neon(p, p->input0, p->input1, p->output, p->pixels * p->channels);
        return;
    }
    for (int32_t i = 0; i < p->pixels; i++) {
        const size_t at = (size_t)i * p->channels;
        mul_run_neon(p, p->input0 + at, p->input1, p->output + at, p->channels);
    }
}
SIEVE_TARGET_END
#endif
