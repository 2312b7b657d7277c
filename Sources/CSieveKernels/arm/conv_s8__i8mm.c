// The i8mm path: AArch64 v8.6 int8 matrix multiply (smmla: a 2x8 by 8x2 int8 product into a 2x2 int32
// tile). Conv has its own layout; depthwise conv is the neon path's, fully connected the neondot
// path's (one input row would waste half of every smmla).
#if defined(__aarch64__)
#include <arm_neon.h>
#include "sieve_target.h"

SIEVE_TARGET_BEGIN("arch=armv8.2-a+dotprod+i8mm")

#include "neon_common.h"

#define I8MM_HEADER 64

// ---- Conv -----------------------------------------------------------------------------------------
// Layout: 64-byte header (int32 block_bytes), requantisation table (ocp = out_c rounded up to 16),
// then weights in blocks of 16 output channels. A block holds, for each run r (kernel row, or the
// one im2col run) of L columns padded to L8 = round_up(L, 8), L8 / 8 steps of 128 bytes: step s is
// [8 channel pairs][2 channels][8 columns 8s...8s+7], the smmla right operand of each channel pair.
// Block bytes: runs * L8 * 16.
static size_t conv_block_bytes(int32_t runs, int32_t L) { return (size_t)runs * (size_t)sieve_round_up(L, 8) * 16; }

size_t sieve_conv_packed_size__i8mm(const sieve_conv_params *p) {
    if (p->groups != 1) return 0;
    int32_t runs, L;
    arm_conv_runs(p, &runs, &L);
    const int32_t ocp = sieve_round_up(p->out_c, 16);
    return I8MM_HEADER + arm_rq_table_size(ocp) + (size_t)(ocp / 16) * conv_block_bytes(runs, L);
}

void sieve_conv_pack__i8mm(const sieve_conv_params *p, void *packed) {
    int32_t runs, L;
    arm_conv_runs(p, &runs, &L);
    const int32_t ocp = sieve_round_up(p->out_c, 16), L8 = sieve_round_up(L, 8);
    const int32_t k = p->kernel_h * p->kernel_w * p->in_c;
    const size_t block = conv_block_bytes(runs, L);
    memset(packed, 0, I8MM_HEADER);
    *(int32_t *)packed = (int32_t)block;
    char *table = (char *)packed + I8MM_HEADER;
    arm_rq_pack_table(table, p->bias, p->multipliers, p->shifts, p->out_c, ocp);
    int8_t *w = (int8_t *)(table + arm_rq_table_size(ocp));
    memset(w, 0, (size_t)(ocp / 16) * block);
    for (int32_t oc = 0; oc < p->out_c; oc++) {
        const int8_t *row = p->weights + (size_t)oc * k;
        const int32_t c = oc % 16;
        for (int32_t r = 0; r < runs; r++) {
            int8_t *run = w + (size_t)(oc / 16) * block + (size_t)r * L8 * 16;
            for (int32_t j = 0; j < L; j++) {
                const int32_t index = arm_conv_column(p, runs, L, r, j);
                if (index >= 0) run[(j / 8) * 128 + (c / 2) * 16 + (c % 2) * 8 + j % 8] = row[index];
            }
        }
    }
}

size_t sieve_conv_scratch_size__i8mm(const sieve_conv_params *p) { return arm_conv_scratch_size(p); }

// Micro-kernel: 4 pixels (2 pairs) x 16 channels (8 pairs), sixteen 2x2 accumulators, pixel pair q
// and channel pair j in v(8q+j) = [p(2q)c(2j), p(2q)c(2j+1), p(2q+1)c(2j), p(2q+1)c(2j+1)].
// Inline assembly, so gcc and clang emit the same loop. Per 16 columns of a run: 4 input loads
// (v24-v27), 4 zip1/zip2 on 64-bit lanes (each pixel pair's columns 0-7 in v20/v21, 8-15 in
// v22/v23), 8 ldp of weights (v28-v31), 32 smmla. Chunks of 8 (and of 4, the weights' other 4 zero):
// d (s) loads, 2 zip1, 16 smmla.
#define MM(A, X, W) "smmla v" #A ".4s, v" #X ".16b, v" #W ".16b\n"
#define MM_STEP(P0, P1)                                                                              \
    "ldp q28, q29, [x13], #32\n ldp q30, q31, [x13], #32\n"                                          \
    MM(0, P0, 28) MM(8, P1, 28) MM(1, P0, 29) MM(9, P1, 29) MM(2, P0, 30) MM(10, P1, 30) MM(3, P0, 31) MM(11, P1, 31) \
    "ldp q28, q29, [x13], #32\n ldp q30, q31, [x13], #32\n"                                          \
    MM(4, P0, 28) MM(12, P1, 28) MM(5, P0, 29) MM(13, P1, 29) MM(6, P0, 30) MM(14, P1, 30) MM(7, P0, 31) MM(15, P1, 31)

static inline int32x4_t zip_lo(int32x4_t a, int32x4_t b) {
    return vreinterpretq_s32_s64(vzip1q_s64(vreinterpretq_s64_s32(a), vreinterpretq_s64_s32(b)));
}
static inline int32x4_t zip_hi(int32x4_t a, int32x4_t b) {
    return vreinterpretq_s32_s64(vzip2q_s64(vreinterpretq_s64_s32(a), vreinterpretq_s64_s32(b)));
}

static inline __attribute__((always_inline)) void mm_block(const arm_gemm *g, const int8_t *const *x, int8_t *const *o,
                                                           int32_t npx, int32_t oc) {
    const int8_t *w = g->weights + (size_t)(oc / 16) * g->block_bytes;
    int32_t acc[64] __attribute__((aligned(16)));
    const int64_t runs = g->in.runs, steps = g->in.L / 16, L = g->in.L, stride = g->in.run_stride;
    __asm__ volatile(
        ".arch_extension i8mm\n"
        "movi v0.4s, #0\n mov v1.16b, v0.16b\n mov v2.16b, v0.16b\n mov v3.16b, v0.16b\n"
        "mov v4.16b, v0.16b\n mov v5.16b, v0.16b\n mov v6.16b, v0.16b\n mov v7.16b, v0.16b\n"
        "mov v8.16b, v0.16b\n mov v9.16b, v0.16b\n mov v10.16b, v0.16b\n mov v11.16b, v0.16b\n"
        "mov v12.16b, v0.16b\n mov v13.16b, v0.16b\n mov v14.16b, v0.16b\n mov v15.16b, v0.16b\n"
        "mov x9, %[x0]\n mov x10, %[x1]\n mov x11, %[x2]\n mov x12, %[x3]\n"
        "mov x13, %[w]\n mov x14, %[runs]\n"
        "1:\n"
        "mov x4, x9\n mov x5, x10\n mov x6, x11\n mov x7, x12\n"
        "add x9, x9, %[stride]\n add x10, x10, %[stride]\n add x11, x11, %[stride]\n add x12, x12, %[stride]\n"
        "cbz %[steps], 3f\n"
        "mov x15, %[steps]\n"
        "2:\n"
        "ldr q24, [x4], #16\n ldr q25, [x5], #16\n ldr q26, [x6], #16\n ldr q27, [x7], #16\n"
        "zip1 v20.2d, v24.2d, v25.2d\n zip1 v21.2d, v26.2d, v27.2d\n"
        "zip2 v22.2d, v24.2d, v25.2d\n zip2 v23.2d, v26.2d, v27.2d\n"
        MM_STEP(20, 21) MM_STEP(22, 23)
        "subs x15, x15, #1\n"
        "b.ne 2b\n"
        "3:\n"
        "tbz %[L], #3, 4f\n"
        "ldr d24, [x4], #8\n ldr d25, [x5], #8\n ldr d26, [x6], #8\n ldr d27, [x7], #8\n"
        "zip1 v20.2d, v24.2d, v25.2d\n zip1 v21.2d, v26.2d, v27.2d\n"
        MM_STEP(20, 21)
        "4:\n"
        "tbz %[L], #2, 5f\n"
        "ldr s24, [x4]\n ldr s25, [x5]\n ldr s26, [x6]\n ldr s27, [x7]\n"
        "zip1 v20.2d, v24.2d, v25.2d\n zip1 v21.2d, v26.2d, v27.2d\n"
        MM_STEP(20, 21)
        "5:\n"
        "subs x14, x14, #1\n"
        "b.ne 1b\n"
        "stp q0, q1, [%[acc]]\n stp q2, q3, [%[acc], #32]\n stp q4, q5, [%[acc], #64]\n stp q6, q7, [%[acc], #96]\n"
        "stp q8, q9, [%[acc], #128]\n stp q10, q11, [%[acc], #160]\n stp q12, q13, [%[acc], #192]\n stp q14, q15, [%[acc], #224]\n"
        :
        : [x0] "r"(x[0]), [x1] "r"(x[1]), [x2] "r"(x[2]), [x3] "r"(x[3]), [w] "r"(w), [runs] "r"(runs), [steps] "r"(steps),
          [L] "r"(L), [stride] "r"(stride), [acc] "r"(acc)
        : "cc", "memory", "x4", "x5", "x6", "x7", "x9", "x10", "x11", "x12", "x13", "x14", "x15", "v0", "v1", "v2", "v3",
          "v4", "v5", "v6", "v7", "v8", "v9", "v10", "v11", "v12", "v13", "v14", "v15", "v20", "v21", "v22", "v23", "v24",
          "v25", "v26", "v27", "v28", "v29", "v30", "v31");
    const int32_t *bias = g->rq.bias + oc;
    const int32x4_t b0 = vld1q_s32(bias), b1 = vld1q_s32(bias + 4), b2 = vld1q_s32(bias + 8), b3 = vld1q_s32(bias + 12);
    const int32_t nch = arm_min(16, g->out_c - oc);
    for (int32_t q = 0; q < 2; q++) {
        const int32_t *a = acc + 32 * q;  // pixel pair q: channel pairs 0-7
        const int32x4_t c0 = vld1q_s32(a), c1 = vld1q_s32(a + 4), c2 = vld1q_s32(a + 8), c3 = vld1q_s32(a + 12);
        const int32x4_t c4 = vld1q_s32(a + 16), c5 = vld1q_s32(a + 20), c6 = vld1q_s32(a + 24), c7 = vld1q_s32(a + 28);
        if (2 * q < npx)
            arm_store(o[2 * q] + oc, arm_rq16(&g->rq, oc, vaddq_s32(zip_lo(c0, c1), b0), vaddq_s32(zip_lo(c2, c3), b1),
                                              vaddq_s32(zip_lo(c4, c5), b2), vaddq_s32(zip_lo(c6, c7), b3), &g->out), nch);
        if (2 * q + 1 < npx)
            arm_store(o[2 * q + 1] + oc, arm_rq16(&g->rq, oc, vaddq_s32(zip_hi(c0, c1), b0), vaddq_s32(zip_hi(c2, c3), b1),
                                                  vaddq_s32(zip_hi(c4, c5), b2), vaddq_s32(zip_hi(c6, c7), b3), &g->out), nch);
    }
}

static void mm_tile(const arm_gemm *g, const int8_t *const *x, int8_t *const *o, int32_t npx, int32_t b0, int32_t b1) {
    for (int32_t b = b0; b < b1; b++) mm_block(g, x, o, npx, b * 16);
}

void sieve_conv_s8__i8mm(const sieve_conv_params *p, const void *packed, void *scratch) {
    if (p->out_h <= 0 || p->out_w <= 0) return;
    const int32_t ocp = sieve_round_up(p->out_c, 16);
    const char *table = (const char *)packed + I8MM_HEADER;
    arm_gemm g;
    g.rq = arm_rq_table(table, ocp);
    g.in = arm_conv_stage(p, scratch);
    g.out = arm_out(p->output_zero_point, p->act_min, p->act_max);
    g.weights = (const int8_t *)(table + arm_rq_table_size(ocp));
    g.block_bytes = (size_t)*(const int32_t *)packed;
    g.out_c = p->out_c;
    arm_gemm_run(&g, p, 16, mm_tile);
}

SIEVE_TARGET_END
#endif
