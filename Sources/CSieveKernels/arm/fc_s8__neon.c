// Fully connected on the neon path: smull/smlal2 into int16, sadalp into int32 (docs/KERNELS.md).
#if defined(__aarch64__)
#include <arm_neon.h>
#include "sieve_target.h"

SIEVE_TARGET_BEGIN("arch=armv8-a+simd")

#include "neon_common.h"
#include "neon_layout.h"

// ---- Fully connected ---------------------------------------------------------------------------------
// Layout: header, requantisation table, weights [ocp / 16][k16 / 16][16 channels][16 columns]
// (k16 = k rounded up to 16, zero padded). The input is copied into scratch, zero padded to k16.
// Per 16 columns: one input load, 16 weight loads, per channel smull + smlal2 + sadalp.
size_t sieve_fc_packed_size__neon(const sieve_fc_params *p) {
    const int32_t ocp = sieve_round_up(p->out_c, 16);
    return NEON_HEADER + arm_rq_table_size(ocp) + (size_t)ocp * (size_t)sieve_round_up(p->k, 16);
}

void sieve_fc_pack__neon(const sieve_fc_params *p, void *packed) {
    const int32_t ocp = sieve_round_up(p->out_c, 16), k16 = sieve_round_up(p->k, 16);
    neon_header *h = (neon_header *)packed;
    memset(h, 0, NEON_HEADER);
    char *table = (char *)packed + NEON_HEADER;
    arm_rq_pack_table(table, p->bias, p->multipliers, p->shifts, p->out_c, ocp);
    int8_t *w = (int8_t *)(table + arm_rq_table_size(ocp));
    memset(w, 0, (size_t)ocp * k16);
    int32_t safe = 1;
    for (int32_t oc = 0; oc < p->out_c; oc++) {
        const int8_t *row = p->weights + (size_t)oc * p->k;
        for (int32_t i = 0; i < p->k; i++) {
            w[(((size_t)(oc / 16) * (k16 / 16) + i / 16) * 16 + oc % 16) * 16 + i % 16] = row[i];
            if (i % 16 >= 8 && pair_overflows(row[i - 8], row[i])) safe = 0;
        }
    }
    h->safe = safe;
}

size_t sieve_fc_scratch_size__neon(const sieve_fc_params *p) { return arm_round_up_size((size_t)sieve_round_up(p->k, 16), 64); }

// 16 channels: accumulators v0-v15, input v24, weights 4 channels at a time in v28-v31, loaded at
// immediate offsets from x10 (one add per step): post-indexed loads chained on x10 made the loop
// wait on each write-back (48 cycles an iteration in llvm-mca's A57 model, 32 for the multiplies).
#define FC_ROUND_PAIRED(A0, A1, A2, A3, T0, T1, T2, T3, OFF0, OFF1)                                  \
    "ldp q28, q29, [x10, #" #OFF0 "]\n ldp q30, q31, [x10, #" #OFF1 "]\n"                             \
    ML(T0, 24, 28) ML(T1, 24, 29) ML(T2, 24, 30) ML(T3, 24, 31)                                      \
    MLA2(T0, 24, 28) MLA2(T1, 24, 29) MLA2(T2, 24, 30) MLA2(T3, 24, 31)                              \
    PADAL(A0, T0) PADAL(A1, T1) PADAL(A2, T2) PADAL(A3, T3)
#define FC_ROUND_UNPAIRED(A0, A1, A2, A3, OFF0, OFF1)                                                \
    "ldp q28, q29, [x10, #" #OFF0 "]\n ldp q30, q31, [x10, #" #OFF1 "]\n"                             \
    UNPAIRED_PIXEL(24, A0, A1, A2, A3)
#define FC_PAIRED_STEP                                                                                \
    FC_ROUND_PAIRED(0, 1, 2, 3, 16, 17, 18, 19, 0, 32) FC_ROUND_PAIRED(4, 5, 6, 7, 20, 21, 22, 23, 64, 96) \
    FC_ROUND_PAIRED(8, 9, 10, 11, 16, 17, 18, 19, 128, 160) FC_ROUND_PAIRED(12, 13, 14, 15, 20, 21, 22, 23, 192, 224)
#define FC_UNPAIRED_STEP                                                                              \
    FC_ROUND_UNPAIRED(0, 1, 2, 3, 0, 32) FC_ROUND_UNPAIRED(4, 5, 6, 7, 64, 96)                         \
    FC_ROUND_UNPAIRED(8, 9, 10, 11, 128, 160) FC_ROUND_UNPAIRED(12, 13, 14, 15, 192, 224)

#define FC_ASM(STEP)                                                                                  \
    __asm__ volatile(                                                                                 \
        "movi v0.4s, #0\n mov v1.16b, v0.16b\n mov v2.16b, v0.16b\n mov v3.16b, v0.16b\n"           \
        "mov v4.16b, v0.16b\n mov v5.16b, v0.16b\n mov v6.16b, v0.16b\n mov v7.16b, v0.16b\n"       \
        "mov v8.16b, v0.16b\n mov v9.16b, v0.16b\n mov v10.16b, v0.16b\n mov v11.16b, v0.16b\n"     \
        "mov v12.16b, v0.16b\n mov v13.16b, v0.16b\n mov v14.16b, v0.16b\n mov v15.16b, v0.16b\n"   \
        "mov x9, %[x]\n mov x10, %[w]\n mov x11, %[steps]\n"                                         \
        "1:\n"                                                                                        \
        "ldr q24, [x9], #16\n"                                                                        \
        STEP                                                                                          \
        "add x10, x10, #256\n"                                                                        \
        "subs x11, x11, #1\n"                                                                         \
        "b.ne 1b\n"                                                                                   \
        "stp q0, q1, [%[acc]]\n stp q2, q3, [%[acc], #32]\n stp q4, q5, [%[acc], #64]\n stp q6, q7, [%[acc], #96]\n" \
        "stp q8, q9, [%[acc], #128]\n stp q10, q11, [%[acc], #160]\n stp q12, q13, [%[acc], #192]\n stp q14, q15, [%[acc], #224]\n" \
        :                                                                                             \
        : [x] "r"(xs), [w] "r"(w), [steps] "r"(steps), [acc] "r"(acc)                                 \
        : "cc", "memory", "x9", "x10", "x11", "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9", "v10", "v11", \
          "v12", "v13", "v14", "v15", "v16", "v17", "v18", "v19", "v20", "v21", "v22", "v23", "v24", "v28", "v29", "v30", "v31")

static inline __attribute__((always_inline)) void fc_blocks(const sieve_fc_params *p, const arm_rq_view *rq, const int8_t *weights,
                                                            const int8_t *xs, int32_t oc_begin, int32_t oc_end, const int SAFE) {
    const arm_out_stage out = arm_out(p->output_zero_point, p->act_min, p->act_max);
    const int32_t k16 = sieve_round_up(p->k, 16);
    const int64_t steps = k16 / 16;
    int32_t acc[64] __attribute__((aligned(16)));
    for (int32_t oc = oc_begin; oc < oc_end; oc += 16) {
        const int8_t *w = weights + (size_t)oc * k16;
        if (SAFE) FC_ASM(FC_PAIRED_STEP);
        else FC_ASM(FC_UNPAIRED_STEP);
        const int32x4_t s0 = vaddq_s32(neon_reduce4(vld1q_s32(acc), vld1q_s32(acc + 4), vld1q_s32(acc + 8), vld1q_s32(acc + 12)),
                                       vld1q_s32(rq->bias + oc));
        const int32x4_t s1 = vaddq_s32(neon_reduce4(vld1q_s32(acc + 16), vld1q_s32(acc + 20), vld1q_s32(acc + 24), vld1q_s32(acc + 28)),
                                       vld1q_s32(rq->bias + oc + 4));
        const int32x4_t s2 = vaddq_s32(neon_reduce4(vld1q_s32(acc + 32), vld1q_s32(acc + 36), vld1q_s32(acc + 40), vld1q_s32(acc + 44)),
                                       vld1q_s32(rq->bias + oc + 8));
        const int32x4_t s3 = vaddq_s32(neon_reduce4(vld1q_s32(acc + 48), vld1q_s32(acc + 52), vld1q_s32(acc + 56), vld1q_s32(acc + 60)),
                                       vld1q_s32(rq->bias + oc + 12));
        arm_store(p->output + oc, arm_rq16(rq, oc, s0, s1, s2, s3, &out), arm_min(16, oc_end - oc));
    }
}

void sieve_fc_s8__neon(const sieve_fc_params *p, const void *packed, void *scratch, int32_t oc_begin, int32_t oc_end) {
    const neon_header *h = (const neon_header *)packed;
    const int32_t ocp = sieve_round_up(p->out_c, 16), k16 = sieve_round_up(p->k, 16);
    const char *table = (const char *)packed + NEON_HEADER;
    const arm_rq_view rq = arm_rq_table(table, ocp);
    const int8_t *w = (const int8_t *)(table + arm_rq_table_size(ocp));
    int8_t *xs = (int8_t *)scratch;
    memcpy(xs, p->input, (size_t)p->k);
    memset(xs + p->k, 0, (size_t)(k16 - p->k));
    if (h->safe) fc_blocks(p, &rq, w, xs, oc_begin, oc_end, 1);
    else fc_blocks(p, &rq, w, xs, oc_begin, oc_end, 0);
}

SIEVE_TARGET_END
#endif
