// The neondot path: AArch64 v8.2 dot product (sdot, signed x signed, so no input offset).
// Conv and fully connected weights in the K4 layout (sieve_pack.h) followed by the requantisation
// extras (neon_common.h); depthwise conv is the neon path's (sdot does not fit a per-channel product).
#if defined(__aarch64__)
#include <arm_neon.h>
#include "sieve_target.h"

SIEVE_TARGET_BEGIN("arch=armv8.2-a+dotprod")

#include "neon_common.h"

// ---- Conv -----------------------------------------------------------------------------------------
// Micro-kernel: 4 pixels x 16 channels, sixteen int32x4 accumulators (pixel i, channels 4j...4j+3 in
// v(4i+j)), in inline assembly so gcc and clang emit the same loop (gcc's register allocation
// spills accumulators here). Per 16 input bytes of a run: 4 input loads (v24-v27), 8 ldp of weights
// (two per K4 group of 64 bytes, into v28-v31), 64 sdot by element: v(4i+j) += w(group g, channels 4j...4j+3)
// . x_i[lane g]. Tails of 8 and 4 bytes per run: d and s loads, lanes 0-1 and 0.
#define SD(A, W, X, L) "sdot v" #A ".4s, v" #W ".16b, v" #X ".4b[" #L "]\n"
#define DOT_GROUP(L)                                                                                  \
    "ldp q28, q29, [x13], #32\n"                                                                      \
    "ldp q30, q31, [x13], #32\n"                                                                      \
    SD(0, 28, 24, L) SD(4, 28, 25, L) SD(8, 28, 26, L) SD(12, 28, 27, L)                              \
    SD(1, 29, 24, L) SD(5, 29, 25, L) SD(9, 29, 26, L) SD(13, 29, 27, L)                              \
    SD(2, 30, 24, L) SD(6, 30, 25, L) SD(10, 30, 26, L) SD(14, 30, 27, L)                             \
    SD(3, 31, 24, L) SD(7, 31, 25, L) SD(11, 31, 26, L) SD(15, 31, 27, L)

static void dot_tile(const arm_gemm *g, const int8_t *const *x, int8_t *const *o, int32_t npx, int32_t oc) {
    const int8_t *w = g->weights + (size_t)(oc / 16) * g->block_bytes;
    int32_t acc[64] __attribute__((aligned(16)));
    const int64_t runs = g->in.runs, steps = g->in.L / 16, L = g->in.L, stride = g->in.run_stride;
    __asm__ volatile(
        ".arch_extension dotprod\n"
        "ld1 {v0.4s, v1.4s, v2.4s, v3.4s}, [%[bias]]\n"
        "mov v4.16b, v0.16b\n mov v5.16b, v1.16b\n mov v6.16b, v2.16b\n mov v7.16b, v3.16b\n"
        "mov v8.16b, v0.16b\n mov v9.16b, v1.16b\n mov v10.16b, v2.16b\n mov v11.16b, v3.16b\n"
        "mov v12.16b, v0.16b\n mov v13.16b, v1.16b\n mov v14.16b, v2.16b\n mov v15.16b, v3.16b\n"
        "mov x9, %[x0]\n mov x10, %[x1]\n mov x11, %[x2]\n mov x12, %[x3]\n"
        "mov x13, %[w]\n mov x14, %[runs]\n"
        "1:\n"
        "mov x4, x9\n mov x5, x10\n mov x6, x11\n mov x7, x12\n"
        "add x9, x9, %[stride]\n add x10, x10, %[stride]\n add x11, x11, %[stride]\n add x12, x12, %[stride]\n"
        "cbz %[steps], 3f\n"
        "mov x15, %[steps]\n"
        "2:\n"
        "ldr q24, [x4], #16\n ldr q25, [x5], #16\n ldr q26, [x6], #16\n ldr q27, [x7], #16\n"
        DOT_GROUP(0) DOT_GROUP(1) DOT_GROUP(2) DOT_GROUP(3)
        "subs x15, x15, #1\n"
        "b.ne 2b\n"
        "3:\n"
        "tbz %[L], #3, 4f\n"
        "ldr d24, [x4], #8\n ldr d25, [x5], #8\n ldr d26, [x6], #8\n ldr d27, [x7], #8\n"
        DOT_GROUP(0) DOT_GROUP(1)
        "4:\n"
        "tbz %[L], #2, 5f\n"
        "ldr s24, [x4]\n ldr s25, [x5]\n ldr s26, [x6]\n ldr s27, [x7]\n"
        DOT_GROUP(0)
        "5:\n"
        "subs x14, x14, #1\n"
        "b.ne 1b\n"
        "stp q0, q1, [%[acc]]\n stp q2, q3, [%[acc], #32]\n stp q4, q5, [%[acc], #64]\n stp q6, q7, [%[acc], #96]\n"
        "stp q8, q9, [%[acc], #128]\n stp q10, q11, [%[acc], #160]\n stp q12, q13, [%[acc], #192]\n stp q14, q15, [%[acc], #224]\n"
        :
        : [x0] "r"(x[0]), [x1] "r"(x[1]), [x2] "r"(x[2]), [x3] "r"(x[3]), [w] "r"(w), [bias] "r"(g->rq.bias + oc),
          [runs] "r"(runs), [steps] "r"(steps), [L] "r"(L), [stride] "r"(stride), [acc] "r"(acc)
        : "cc", "memory", "x4", "x5", "x6", "x7", "x9", "x10", "x11", "x12", "x13", "x14", "x15", "v0", "v1", "v2", "v3",
          "v4", "v5", "v6", "v7", "v8", "v9", "v10", "v11", "v12", "v13", "v14", "v15", "v24", "v25", "v26", "v27", "v28",
          "v29", "v30", "v31");
    const int32_t nch = arm_min(16, g->out_c - oc);
    for (int32_t i = 0; i < npx; i++) {
        const int32_t *a = acc + 16 * i;
        arm_store(o[i] + oc, arm_rq16(&g->rq, oc, vld1q_s32(a), vld1q_s32(a + 4), vld1q_s32(a + 8), vld1q_s32(a + 12), &g->out), nch);
    }
}

// Packed: the K4 layout (input offset 0), then the requantisation extras.
static int32_t conv_k(const sieve_conv_params *p) { return p->kernel_h * p->kernel_w * p->in_c; }

size_t sieve_conv_packed_size__neondot(const sieve_conv_params *p) {
    if (p->groups != 1) return 0;
    const int32_t ocp = sieve_round_up(p->out_c, 16);
    return sieve_pack_k4_size(p->out_c, conv_k(p)) + arm_rq_extra_size(ocp);
}

void sieve_conv_pack__neondot(const sieve_conv_params *p, void *packed) {
    const int32_t ocp = sieve_round_up(p->out_c, 16);
    sieve_pack_k4(p->weights, p->bias, p->multipliers, p->shifts, p->out_c, conv_k(p), 0, packed);
    arm_rq_view v;
    arm_rq_fill_extra((char *)packed + sieve_pack_k4_size(p->out_c, conv_k(p)), p->shifts, p->out_c, ocp, &v);
}

size_t sieve_conv_scratch_size__neondot(const sieve_conv_params *p) { return arm_conv_scratch_size(p); }

static arm_rq_view k4_rq(const void *packed, int32_t out_c, int32_t k, sieve_k4_view *kv) {
    *kv = sieve_k4(packed, out_c, k);
    arm_rq_view v = arm_rq_table(packed, kv->ocp);  // bias, multiplier: the K4 header
    const int32_t *extra = (const int32_t *)((const char *)packed + sieve_pack_k4_size(out_c, k));
    v.rshift = extra;
    v.nshift = (const int64_t *)(extra + kv->ocp);
    v.fast = (const int32_t *)(v.nshift + kv->ocp);
    return v;
}

void sieve_conv_s8__neondot(const sieve_conv_params *p, const void *packed, void *scratch) {
    if (p->out_h <= 0 || p->out_w <= 0) return;
    sieve_k4_view kv;
    arm_gemm g;
    g.rq = k4_rq(packed, p->out_c, conv_k(p), &kv);
    g.in = arm_conv_stage(p, scratch);
    g.out = arm_out(p->output_zero_point, p->act_min, p->act_max);
    g.weights = kv.weights;
    g.block_bytes = (size_t)kv.k4 * 16;
    g.out_c = p->out_c;
    arm_gemm_run(&g, p, 16, dot_tile);
}

// ---- Depthwise: the neon path's kernel --------------------------------------------------------------
size_t sieve_dwconv_packed_size__neondot(const sieve_conv_params *p) { return sieve_dwconv_packed_size__neon(p); }
void sieve_dwconv_pack__neondot(const sieve_conv_params *p, void *packed) { sieve_dwconv_pack__neon(p, packed); }
size_t sieve_dwconv_scratch_size__neondot(const sieve_conv_params *p) { return sieve_dwconv_scratch_size__neon(p); }
void sieve_dwconv_s8__neondot(const sieve_conv_params *p, const void *packed, void *scratch) {
    sieve_dwconv_s8__neon(p, packed, scratch);
}

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
            "1:\n"
            "ldr q24, [x9], #16\n"
            FC_GROUP_EVEN(0) FC_GROUP_ODD(1) FC_GROUP_EVEN(2) FC_GROUP_ODD(3)
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

// ---- Peak MAC rate ---------------------------------------------------------------------------------
// 32 sdot per iteration into 30 accumulators (v0...v29; v0 and v1 twice, 30 instructions apart),
// sources v30, v31: 16 MACs each.
uint64_t sieve_peak_macs__neondot(uint64_t iterations) {
    if (iterations == 0) return 0;
    uint64_t n = iterations;
    __asm__ volatile(
        ".arch_extension dotprod\n"
        "movi v30.16b, #1\n movi v31.16b, #2\n"
        "1:\n"
        "sdot v0.4s, v30.16b, v31.16b\n sdot v1.4s, v30.16b, v31.16b\n sdot v2.4s, v30.16b, v31.16b\n sdot v3.4s, v30.16b, v31.16b\n"
        "sdot v4.4s, v30.16b, v31.16b\n sdot v5.4s, v30.16b, v31.16b\n sdot v6.4s, v30.16b, v31.16b\n sdot v7.4s, v30.16b, v31.16b\n"
        "sdot v8.4s, v30.16b, v31.16b\n sdot v9.4s, v30.16b, v31.16b\n sdot v10.4s, v30.16b, v31.16b\n sdot v11.4s, v30.16b, v31.16b\n"
        "sdot v12.4s, v30.16b, v31.16b\n sdot v13.4s, v30.16b, v31.16b\n sdot v14.4s, v30.16b, v31.16b\n sdot v15.4s, v30.16b, v31.16b\n"
        "sdot v16.4s, v30.16b, v31.16b\n sdot v17.4s, v30.16b, v31.16b\n sdot v18.4s, v30.16b, v31.16b\n sdot v19.4s, v30.16b, v31.16b\n"
        "sdot v20.4s, v30.16b, v31.16b\n sdot v21.4s, v30.16b, v31.16b\n sdot v22.4s, v30.16b, v31.16b\n sdot v23.4s, v30.16b, v31.16b\n"
        "sdot v24.4s, v30.16b, v31.16b\n sdot v25.4s, v30.16b, v31.16b\n sdot v26.4s, v30.16b, v31.16b\n sdot v27.4s, v30.16b, v31.16b\n"
        "sdot v28.4s, v30.16b, v31.16b\n sdot v29.4s, v30.16b, v31.16b\n sdot v0.4s, v30.16b, v31.16b\n sdot v1.4s, v30.16b, v31.16b\n"
        "subs %0, %0, #1\n b.ne 1b\n"
        : "+r"(n)
        :
        : "cc", "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9", "v10", "v11", "v12", "v13", "v14", "v15", "v16",
          "v17", "v18", "v19", "v20", "v21", "v22", "v23", "v24", "v25", "v26", "v27", "v28", "v29", "v30", "v31");
    return iterations * 32 * 16;
}

SIEVE_TARGET_END
#endif
