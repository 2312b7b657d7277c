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

// Micro-kernel: 4 pixels (2 pairs) x 16 channels (8 pairs), sixteen 2x2 accumulators
// acc(q, j) = [p(2q)c(2j), p(2q)c(2j+1), p(2q+1)c(2j), p(2q+1)c(2j+1)].
// Per 16 columns: 4 input loads, 4 zip (pixel pairs' 8-column halves), 16 weight loads, 32 smmla.
#define MM_STEP(P0, P1)                                                                                \
    do {                                                                                              \
        const int8x16_t w0 = vld1q_s8(w), w1 = vld1q_s8(w + 16), w2 = vld1q_s8(w + 32), w3 = vld1q_s8(w + 48); \
        const int8x16_t w4 = vld1q_s8(w + 64), w5 = vld1q_s8(w + 80), w6 = vld1q_s8(w + 96), w7 = vld1q_s8(w + 112); \
        w += 128;                                                                                     \
        a00 = vmmlaq_s32(a00, P0, w0); a01 = vmmlaq_s32(a01, P0, w1); a02 = vmmlaq_s32(a02, P0, w2); a03 = vmmlaq_s32(a03, P0, w3); \
        a04 = vmmlaq_s32(a04, P0, w4); a05 = vmmlaq_s32(a05, P0, w5); a06 = vmmlaq_s32(a06, P0, w6); a07 = vmmlaq_s32(a07, P0, w7); \
        a10 = vmmlaq_s32(a10, P1, w0); a11 = vmmlaq_s32(a11, P1, w1); a12 = vmmlaq_s32(a12, P1, w2); a13 = vmmlaq_s32(a13, P1, w3); \
        a14 = vmmlaq_s32(a14, P1, w4); a15 = vmmlaq_s32(a15, P1, w5); a16 = vmmlaq_s32(a16, P1, w6); a17 = vmmlaq_s32(a17, P1, w7); \
    } while (0)

static inline int32x4_t zip_lo(int32x4_t a, int32x4_t b) {
    return vreinterpretq_s32_s64(vzip1q_s64(vreinterpretq_s64_s32(a), vreinterpretq_s64_s32(b)));
}
static inline int32x4_t zip_hi(int32x4_t a, int32x4_t b) {
    return vreinterpretq_s32_s64(vzip2q_s64(vreinterpretq_s64_s32(a), vreinterpretq_s64_s32(b)));
}
static inline int8x16_t pair_lo(int8x16_t a, int8x16_t b) {
    return vreinterpretq_s8_s64(vzip1q_s64(vreinterpretq_s64_s8(a), vreinterpretq_s64_s8(b)));
}
static inline int8x16_t pair_hi(int8x16_t a, int8x16_t b) {
    return vreinterpretq_s8_s64(vzip2q_s64(vreinterpretq_s64_s8(a), vreinterpretq_s64_s8(b)));
}

static void mm_tile(const arm_gemm *g, const int8_t *const *x, int8_t *const *o, int32_t npx, int32_t oc) {
    const int8_t *w = g->weights + (size_t)(oc / 16) * g->block_bytes;
    int32x4_t a00 = vdupq_n_s32(0), a01 = a00, a02 = a00, a03 = a00, a04 = a00, a05 = a00, a06 = a00, a07 = a00;
    int32x4_t a10 = a00, a11 = a00, a12 = a00, a13 = a00, a14 = a00, a15 = a00, a16 = a00, a17 = a00;
    const int8_t *x0 = x[0], *x1 = x[1], *x2 = x[2], *x3 = x[3];
    const int32_t L = g->in.L;
    const ptrdiff_t run_stride = g->in.run_stride;
    for (int32_t r = 0; r < g->in.runs; r++) {
        int32_t j = 0;
        for (; j + 16 <= L; j += 16) {
            const int8x16_t v0 = vld1q_s8(x0 + j), v1 = vld1q_s8(x1 + j), v2 = vld1q_s8(x2 + j), v3 = vld1q_s8(x3 + j);
            const int8x16_t p0 = pair_lo(v0, v1), p1 = pair_lo(v2, v3);
            MM_STEP(p0, p1);
            const int8x16_t q0 = pair_hi(v0, v1), q1 = pair_hi(v2, v3);
            MM_STEP(q0, q1);
        }
        if (j + 8 <= L) {
            const int8x16_t p0 = vcombine_s8(vld1_s8(x0 + j), vld1_s8(x1 + j)), p1 = vcombine_s8(vld1_s8(x2 + j), vld1_s8(x3 + j));
            MM_STEP(p0, p1);
            j += 8;
        }
        if (j < L) {  // 4 columns; the weights' other 4 are zero
            const int8x16_t p0 = vcombine_s8(arm_load4(x0 + j), arm_load4(x1 + j)), p1 = vcombine_s8(arm_load4(x2 + j), arm_load4(x3 + j));
            MM_STEP(p0, p1);
        }
        x0 += run_stride; x1 += run_stride; x2 += run_stride; x3 += run_stride;
    }
    const int32_t *bias = g->rq.bias + oc;
    const int32x4_t b0 = vld1q_s32(bias), b1 = vld1q_s32(bias + 4), b2 = vld1q_s32(bias + 8), b3 = vld1q_s32(bias + 12);
    const int32_t nch = arm_min(16, g->out_c - oc);
    arm_store(o[0] + oc, arm_rq16(&g->rq, oc, vaddq_s32(zip_lo(a00, a01), b0), vaddq_s32(zip_lo(a02, a03), b1),
                                  vaddq_s32(zip_lo(a04, a05), b2), vaddq_s32(zip_lo(a06, a07), b3), &g->out), nch);
    if (npx > 1)
        arm_store(o[1] + oc, arm_rq16(&g->rq, oc, vaddq_s32(zip_hi(a00, a01), b0), vaddq_s32(zip_hi(a02, a03), b1),
                                      vaddq_s32(zip_hi(a04, a05), b2), vaddq_s32(zip_hi(a06, a07), b3), &g->out), nch);
    if (npx > 2)
        arm_store(o[2] + oc, arm_rq16(&g->rq, oc, vaddq_s32(zip_lo(a10, a11), b0), vaddq_s32(zip_lo(a12, a13), b1),
                                      vaddq_s32(zip_lo(a14, a15), b2), vaddq_s32(zip_lo(a16, a17), b3), &g->out), nch);
    if (npx > 3)
        arm_store(o[3] + oc, arm_rq16(&g->rq, oc, vaddq_s32(zip_hi(a10, a11), b0), vaddq_s32(zip_hi(a12, a13), b1),
                                      vaddq_s32(zip_hi(a14, a15), b2), vaddq_s32(zip_hi(a16, a17), b3), &g->out), nch);
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
    g.safe = 1;
    arm_gemm_run(&g, p, 16, mm_tile);
}

// ---- Depthwise: the neon path's; fully connected: the neondot path's -------------------------------
size_t sieve_dwconv_packed_size__i8mm(const sieve_conv_params *p) { return sieve_dwconv_packed_size__neon(p); }
void sieve_dwconv_pack__i8mm(const sieve_conv_params *p, void *packed) { sieve_dwconv_pack__neon(p, packed); }
size_t sieve_dwconv_scratch_size__i8mm(const sieve_conv_params *p) { return sieve_dwconv_scratch_size__neon(p); }
void sieve_dwconv_s8__i8mm(const sieve_conv_params *p, const void *packed, void *scratch) { sieve_dwconv_s8__neon(p, packed, scratch); }

size_t sieve_fc_packed_size__i8mm(const sieve_fc_params *p) { return sieve_fc_packed_size__neondot(p); }
void sieve_fc_pack__i8mm(const sieve_fc_params *p, void *packed) { sieve_fc_pack__neondot(p, packed); }
size_t sieve_fc_scratch_size__i8mm(const sieve_fc_params *p) { return sieve_fc_scratch_size__neondot(p); }
void sieve_fc_s8__i8mm(const sieve_fc_params *p, const void *packed, void *scratch, int32_t oc_begin, int32_t oc_end) {
    sieve_fc_s8__neondot(p, packed, scratch, oc_begin, oc_end);
}

// ---- Peak MAC rate ---------------------------------------------------------------------------------
// 32 smmla per iteration into 30 accumulators: 32 MACs each (2x2 outputs x 8).
uint64_t sieve_peak_macs__i8mm(uint64_t iterations) {
    if (iterations == 0) return 0;
    uint64_t n = iterations;
    __asm__ volatile(
        ".arch_extension i8mm\n"
        "movi v30.16b, #1\n movi v31.16b, #2\n"
        "1:\n"
        "smmla v0.4s, v30.16b, v31.16b\n smmla v1.4s, v30.16b, v31.16b\n smmla v2.4s, v30.16b, v31.16b\n smmla v3.4s, v30.16b, v31.16b\n"
        "smmla v4.4s, v30.16b, v31.16b\n smmla v5.4s, v30.16b, v31.16b\n smmla v6.4s, v30.16b, v31.16b\n smmla v7.4s, v30.16b, v31.16b\n"
        "smmla v8.4s, v30.16b, v31.16b\n smmla v9.4s, v30.16b, v31.16b\n smmla v10.4s, v30.16b, v31.16b\n smmla v11.4s, v30.16b, v31.16b\n"
        "smmla v12.4s, v30.16b, v31.16b\n smmla v13.4s, v30.16b, v31.16b\n smmla v14.4s, v30.16b, v31.16b\n smmla v15.4s, v30.16b, v31.16b\n"
        "smmla v16.4s, v30.16b, v31.16b\n smmla v17.4s, v30.16b, v31.16b\n smmla v18.4s, v30.16b, v31.16b\n smmla v19.4s, v30.16b, v31.16b\n"
        "smmla v20.4s, v30.16b, v31.16b\n smmla v21.4s, v30.16b, v31.16b\n smmla v22.4s, v30.16b, v31.16b\n smmla v23.4s, v30.16b, v31.16b\n"
        "smmla v24.4s, v30.16b, v31.16b\n smmla v25.4s, v30.16b, v31.16b\n smmla v26.4s, v30.16b, v31.16b\n smmla v27.4s, v30.16b, v31.16b\n"
        "smmla v28.4s, v30.16b, v31.16b\n smmla v29.4s, v30.16b, v31.16b\n smmla v0.4s, v30.16b, v31.16b\n smmla v1.4s, v30.16b, v31.16b\n"
        "subs %0, %0, #1\n b.ne 1b\n"
        : "+r"(n)
        :
        : "cc", "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9", "v10", "v11", "v12", "v13", "v14", "v15", "v16",
          "v17", "v18", "v19", "v20", "v21", "v22", "v23", "v24", "v25", "v26", "v27", "v28", "v29", "v30", "v31");
    return iterations * 32 * 32;
}

SIEVE_TARGET_END
#endif
