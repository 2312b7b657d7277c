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

// The fast form when every rq has M > 0 and 31 <= s <= 62. s >= 32: neon_common.h's derivation
// (sqdmulh, then a rounding shift by 31 - s, equals floor((x * M + 2^(s-1)) / 2^s), in 30 bits).
// s = 31 (the quantiser's larger input: M / 2^s = 1/2): sqrdmulh is (2 x M + 2^31) >> 32, the same
// rq exactly (no saturation: M > 0); ROUND31 picks it.
static inline int32x4_t add_rq_fast(int32x4_t x, int32x4_t m, int32x4_t r, const int ROUND31) {
    return ROUND31 ? vqrdmulhq_s32(x, m) : vrshlq_s32(vqdmulhq_s32(x, m), r);
}

// Also 0 <= left_shift <= 30, so that (x - zp) << left_shift (sshl, no multiply) is the scalar's
// wrapping (x - zp) * 2^left_shift.
static int add_is_fast(const sieve_add_params *p) {
    for (int k = 0; k < 3; k++)
        if (p->multipliers[k] <= 0 || p->shifts[k] < 31 || p->shifts[k] > 62) return 0;
    return p->left_shift >= 0 && p->left_shift <= 30;
}

// Eight elements of the fast form.
static inline __attribute__((always_inline)) int8x8_t add_eight(const int8_t *a8, const int8_t *b8, int16x8_t zp0, int16x8_t zp1,
                                                                int32x4_t zp, int32x4_t lo, int32x4_t hi, int32x4_t up, int32x4_t m0,
                                                                int32x4_t m1, int32x4_t m2, int32x4_t r0, int32x4_t r1, int32x4_t r2,
                                                                const int E0, const int E1, const int E2) {
    const int16x8_t a = vsubq_s16(vmovl_s8(vld1_s8(a8)), zp0), b = vsubq_s16(vmovl_s8(vld1_s8(b8)), zp1);
    int32x4_t v[2];
    for (int h = 0; h < 2; h++) {
        const int16x4_t ah = h ? vget_high_s16(a) : vget_low_s16(a), bh = h ? vget_high_s16(b) : vget_low_s16(b);
        const int32x4_t x0 = add_rq_fast(vshlq_s32(vmovl_s16(ah), up), m0, r0, E0);
        const int32x4_t x1 = add_rq_fast(vshlq_s32(vmovl_s16(bh), up), m1, r1, E1);
        v[h] = vmaxq_s32(vminq_s32(vaddq_s32(add_rq_fast(vaddq_s32(x0, x1), m2, r2, E2), zp), hi), lo);
    }
    return vmovn_s16(vcombine_s16(vmovn_s32(v[0]), vmovn_s32(v[1])));
}

// E0, E1, E2: rq k has s = 31 (one form per rq, chosen once per call rather than both computed and
// selected per lane).
static inline __attribute__((always_inline)) void add_run_fast_form(const sieve_add_params *p, const int E0, const int E1,
                                                                     const int E2) {
    const int16x8_t zp0 = vdupq_n_s16((int16_t)p->zero_point0), zp1 = vdupq_n_s16((int16_t)p->zero_point1);
    const int32x4_t zp = vdupq_n_s32(p->output_zero_point), lo = vdupq_n_s32(p->act_min), hi = vdupq_n_s32(p->act_max);
    const int32x4_t up = vdupq_n_s32(p->left_shift);
    const int32x4_t m0 = vdupq_n_s32(p->multipliers[0]), m1 = vdupq_n_s32(p->multipliers[1]), m2 = vdupq_n_s32(p->multipliers[2]);
    const int32x4_t r0 = vdupq_n_s32(31 - p->shifts[0]), r1 = vdupq_n_s32(31 - p->shifts[1]), r2 = vdupq_n_s32(31 - p->shifts[2]);
    // Whole groups of 8 straight from the inputs, then the tail through copies (never reading past
    // either input): the loop carries no tail test.
    int32_t i = 0;
    for (; i + 8 <= p->count; i += 8) {
        vst1_s8(p->output + i, add_eight(p->input0 + i, p->input1 + i, zp0, zp1, zp, lo, hi, up, m0, m1, m2, r0, r1, r2, E0, E1, E2));
    }
    if (i < p->count) {
        const size_t count = (size_t)(p->count - i);
        int8_t in0[8] = {0}, in1[8] = {0}, bytes[8];
        memcpy(in0, p->input0 + i, count);
        memcpy(in1, p->input1 + i, count);
        vst1_s8(bytes, add_eight(in0, in1, zp0, zp1, zp, lo, hi, up, m0, m1, m2, r0, r1, r2, E0, E1, E2));
        memcpy(p->output + i, bytes, count);
    }
}

static void add_run_fast(const sieve_add_params *p) {
    const int e0 = p->shifts[0] == 31, e1 = p->shifts[1] == 31, e2 = p->shifts[2] == 31;
    switch (e0 * 4 + e1 * 2 + e2) {
    case 0: add_run_fast_form(p, 0, 0, 0); break;
    case 1: add_run_fast_form(p, 0, 0, 1); break;
    case 2: add_run_fast_form(p, 0, 1, 0); break;
    case 3: add_run_fast_form(p, 0, 1, 1); break;
    case 4: add_run_fast_form(p, 1, 0, 0); break;
    case 5: add_run_fast_form(p, 1, 0, 1); break;
    case 6: add_run_fast_form(p, 1, 1, 0); break;
    default: add_run_fast_form(p, 1, 1, 1); break;
    }
}

void sieve_add_s8__neon(const sieve_add_params *p) {
    if (add_is_fast(p)) {
        add_run_fast(p);
        return;
    }
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
