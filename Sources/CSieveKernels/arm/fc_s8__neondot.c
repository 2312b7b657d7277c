// Fully connected on the neondot path (the i8mm path calls it too).
#if defined(__aarch64__)
#include <arm_neon.h>
#include "sieve_target.h"

SIEVE_TARGET_BEGIN("arch=armv8.2-a+dotprod")

#include "neon_common.h"

// ---- Fully connected ---------------------------------------------------------------------------------
// One input vector against 16 output channels at a time: two sets of four accumulators (even and odd
// K4 groups) so consecutive sdot do not wait on each other. The input is copied into scratch, zero
// padded to a multiple of 16 bytes, so every load is a full q register.
size_t sieve_fc_packed_size__neondot(const sieve_fc_params *p) {
    return sieve_pack_k4_size(p->out_c, p->k) + arm_rq_extra_size(sieve_round_up(p->out_c, 16));
}

void sieve_fc_pack__neondot(const sieve_fc_params *p, void *packed) {
    sieve_pack_k4(p->weights, p->bias, p->multipliers, p->shifts, p->out_c, p->k, 0, packed);
    arm_rq_view v;
    arm_rq_fill_extra((char *)packed + sieve_pack_k4_size(p->out_c, p->k), p->shifts, p->out_c, sieve_round_up(p->out_c, 16), &v);
}

size_t sieve_fc_scratch_size__neondot(const sieve_fc_params *p) { return arm_round_up_size((size_t)sieve_round_up(p->k, 16), 64); }

// Accumulators v0-v3 (even K4 groups) and v4-v7 (odd), input v24, weights v28-v31. Per 16 input
// bytes: 1 input load, 8 ldp, 16 sdot.
#define SDA(A, W, L) "sdot v" #A ".4s, v" #W ".16b, v24.4b[" #L "]\n"
#define FC_GROUP_EVEN(L) "ldp q28, q29, [x10], #32\n ldp q30, q31, [x10], #32\n" SDA(0, 28, L) SDA(1, 29, L) SDA(2, 30, L) SDA(3, 31, L)
#define FC_GROUP_ODD(L) "ldp q28, q29, [x10], #32\n ldp q30, q31, [x10], #32\n" SDA(4, 28, L) SDA(5, 29, L) SDA(6, 30, L) SDA(7, 31, L)
// The loop's groups as ldr q at immediate offsets from x10 (one add per 256 bytes): post-indexed ldp
// cost extra micro-ops and made the loop load-bound.
#define FC_AT(A0, A1, A2, A3, L, OFF0, OFF1, OFF2, OFF3)                                              \
    "ldr q28, [x10, #" #OFF0 "]\n ldr q29, [x10, #" #OFF1 "]\n"                                        \
    "ldr q30, [x10, #" #OFF2 "]\n ldr q31, [x10, #" #OFF3 "]\n"                                        \
    SDA(A0, 28, L) SDA(A1, 29, L) SDA(A2, 30, L) SDA(A3, 31, L)

void sieve_fc_s8__neondot(const sieve_fc_params *p, const void *packed, void *scratch, int32_t oc_begin, int32_t oc_end) {
    sieve_k4_view kv;
    const arm_rq_view rq = k4_rq(packed, p->out_c, p->k, &kv);
    const arm_out_stage out = arm_out(p->output_zero_point, p->act_min, p->act_max);
    int8_t *xs = (int8_t *)scratch;
    const int32_t k16 = sieve_round_up(p->k, 16), groups = kv.k4 / 4;
    memcpy(xs, p->input, (size_t)p->k);
    memset(xs + p->k, 0, (size_t)(k16 - p->k));
    const int64_t steps = groups / 4, rest = groups % 4;
    int32_t acc[16] __attribute__((aligned(16)));
    for (int32_t oc = oc_begin; oc < oc_end; oc += 16) {
        const int8_t *w = kv.weights + (size_t)(oc / 16) * kv.k4 * 16;
        __asm__ volatile(
            ".arch_extension dotprod\n"
            "ld1 {v0.4s, v1.4s, v2.4s, v3.4s}, [%[bias]]\n"
            "movi v4.4s, #0\n mov v5.16b, v4.16b\n mov v6.16b, v4.16b\n mov v7.16b, v4.16b\n"
            "mov x9, %[x]\n mov x10, %[w]\n"
            "cbz %[steps], 2f\n"
            "mov x11, %[steps]\n"
            // The loop (37 instructions) on a 256-byte boundary, the padding jumped over: it never
            // straddles a page, whose boundary would split it into two blocks for the estimator.
            "b 1f\n"
            ".p2align 8\n"
            "1:\n"
            "ldr q24, [x9], #16\n"
            FC_AT(0, 1, 2, 3, 0, 0, 16, 32, 48) FC_AT(4, 5, 6, 7, 1, 64, 80, 96, 112)
            FC_AT(0, 1, 2, 3, 2, 128, 144, 160, 176) FC_AT(4, 5, 6, 7, 3, 192, 208, 224, 240)
            "add x10, x10, #256\n"
            "subs x11, x11, #1\n"
            "b.ne 1b\n"
            "2:\n"
            "cbz %[rest], 3f\n"
            "ldr q24, [x9]\n"  // zero padded past k
            FC_GROUP_EVEN(0)
            "cmp %[rest], #1\n b.eq 3f\n"
            FC_GROUP_ODD(1)
            "cmp %[rest], #2\n b.eq 3f\n"
            FC_GROUP_EVEN(2)
            "3:\n"
            "add v0.4s, v0.4s, v4.4s\n add v1.4s, v1.4s, v5.4s\n add v2.4s, v2.4s, v6.4s\n add v3.4s, v3.4s, v7.4s\n"
            "stp q0, q1, [%[acc]]\n stp q2, q3, [%[acc], #32]\n"
            :
            : [x] "r"(xs), [w] "r"(w), [bias] "r"(rq.bias + oc), [steps] "r"(steps), [rest] "r"(rest), [acc] "r"(acc)
            : "cc", "memory", "x9", "x10", "x11", "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v24", "v28", "v29", "v30",
              "v31");
        const int8x16_t result = arm_rq16(&rq, oc, vld1q_s32(acc), vld1q_s32(acc + 4), vld1q_s32(acc + 8), vld1q_s32(acc + 12), &out);
        arm_store(p->output + oc, result, arm_min(16, oc_end - oc));
    }
}

SIEVE_TARGET_END
#endif
