// ADD (docs/FORMAT.md) on NEON, every AArch64 path: 8 elements at a time, the scalar kernel's
// arithmetic lane for lane: (x - zp) << left_shift in int32 (wrapping as the scalar's uint32 add),
// each rq in int64 (smull, add the rounding term, sshl) keeping the low 32 bits, wrapping adds.
#if defined(__aarch64__)
#include <arm_neon.h>
#include <string.h>
#include "sieve_target.h"

SIEVE_TARGET_BEGIN("arch=armv8-a+simd")

#include "sieve_isa.h"

// One rq's constants: multiplier, 2^(s-1) and -s (a right shift for sshl).
typedef struct {
    int32x2_t m;
    int64x2_t round, shift;
} add_rq;

static inline add_rq add_rq_of(int32_t multiplier, int32_t shift) {
    add_rq r = {vdup_n_s32(multiplier), vdupq_n_s64((int64_t)1 << (shift - 1)), vdupq_n_s64(-(int64_t)shift)};
    return r;
}

static inline int32x4_t add_rq_apply(int32x4_t x, add_rq r) {
    const int64x2_t low = vshlq_s64(vaddq_s64(vmull_s32(vget_low_s32(x), r.m), r.round), r.shift);
    const int64x2_t high = vshlq_s64(vaddq_s64(vmull_s32(vget_high_s32(x), r.m), r.round), r.shift);
    return vcombine_s32(vmovn_s64(low), vmovn_s64(high));
}

// Four lanes: both inputs rescaled, summed, requantised to the output, zero point, clamp.
static inline int32x4_t add_four(int16x4_t a, int16x4_t b, int32x4_t up, add_rq r0, add_rq r1, add_rq r2, int32x4_t zp,
                                 int32x4_t lo, int32x4_t hi) {
    const int32x4_t x0 = add_rq_apply(vmulq_s32(vmovl_s16(a), up), r0);
    const int32x4_t x1 = add_rq_apply(vmulq_s32(vmovl_s16(b), up), r1);
    const int32x4_t v = vaddq_s32(add_rq_apply(vaddq_s32(x0, x1), r2), zp);
    return vmaxq_s32(vminq_s32(v, hi), lo);
}

void sieve_add_s8__neon(const sieve_add_params *p) {
    const int16x8_t zp0 = vdupq_n_s16((int16_t)p->zero_point0), zp1 = vdupq_n_s16((int16_t)p->zero_point1);
    const int32x4_t zp = vdupq_n_s32(p->output_zero_point), lo = vdupq_n_s32(p->act_min), hi = vdupq_n_s32(p->act_max);
    const int32x4_t up = vdupq_n_s32((int32_t)(1u << p->left_shift));
    const add_rq r0 = add_rq_of(p->multipliers[0], p->shifts[0]), r1 = add_rq_of(p->multipliers[1], p->shifts[1]);
    const add_rq r2 = add_rq_of(p->multipliers[2], p->shifts[2]);
    for (int32_t i = 0; i < p->count; i += 8) {
        const int32_t count = p->count - i < 8 ? p->count - i : 8;
        int8_t in0[8] = {0}, in1[8] = {0}, bytes[8];
        const int8_t *a8 = p->input0 + i, *b8 = p->input1 + i;
        if (count < 8) {  // the tail: never read past either input
            memcpy(in0, a8, (size_t)count);
            memcpy(in1, b8, (size_t)count);
            a8 = in0;
            b8 = in1;
        }
        // x - zp in int16: both in [-128, 127], the difference in [-255, 255]
        const int16x8_t a = vsubq_s16(vmovl_s8(vld1_s8(a8)), zp0), b = vsubq_s16(vmovl_s8(vld1_s8(b8)), zp1);
        const int32x4_t v0 = add_four(vget_low_s16(a), vget_low_s16(b), up, r0, r1, r2, zp, lo, hi);
        const int32x4_t v1 = add_four(vget_high_s16(a), vget_high_s16(b), up, r0, r1, r2, zp, lo, hi);
        const int8x8_t out = vmovn_s16(vcombine_s16(vmovn_s32(v0), vmovn_s32(v1)));
        if (count == 8) {  // a store, not a memcpy call of a variable size
            vst1_s8(p->output + i, out);
            continue;
        }
        vst1_s8(bytes, out);
        memcpy(p->output + i, bytes, (size_t)count);
    }
}
SIEVE_TARGET_END
#endif
