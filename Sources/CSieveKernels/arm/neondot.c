// The neondot path: AArch64 v8.2 dot product (sdot, signed x signed, so no input offset).
// Conv and fully connected weights in the K4 layout (sieve_pack.h) followed by the requantisation
// extras (neon_common.h); depthwise conv is the neon path's (sdot does not fit a per-channel product).
#if defined(__aarch64__)
#include <arm_neon.h>
#include "sieve_target.h"

SIEVE_TARGET_BEGIN("arch=armv8.2-a+dotprod")

#include "neon_common.h"

// ---- Conv -----------------------------------------------------------------------------------------
// Micro-kernel: 4 pixels x 16 channels, sixteen int32x4 accumulators a<i><j> (pixel i, channels
// 4j...4j+3). Per 16 input bytes of a run (inline assembly, so gcc and clang emit the same loop):
// 4 input loads (v24-v27), 8 ldp of weights (4 K4 blocks of 64 bytes into v28-v31), 64 sdot by
// element: sdot a<i><j>, w(group g, channels 4j...4j+3), x_i[lane g]. Tails of 8 and 4 bytes use
// intrinsics.

#define DOT_GROUP(LANE, V0, V1, V2, V3, FN)                                                          \
    do {                                                                                              \
        const int8x16_t w0 = vld1q_s8(w), w1 = vld1q_s8(w + 16), w2 = vld1q_s8(w + 32), w3 = vld1q_s8(w + 48); \
        w += 64;                                                                                      \
        a00 = FN(a00, w0, V0, LANE); a01 = FN(a01, w1, V0, LANE); a02 = FN(a02, w2, V0, LANE); a03 = FN(a03, w3, V0, LANE); \
        a10 = FN(a10, w0, V1, LANE); a11 = FN(a11, w1, V1, LANE); a12 = FN(a12, w2, V1, LANE); a13 = FN(a13, w3, V1, LANE); \
        a20 = FN(a20, w0, V2, LANE); a21 = FN(a21, w1, V2, LANE); a22 = FN(a22, w2, V2, LANE); a23 = FN(a23, w3, V2, LANE); \
        a30 = FN(a30, w0, V3, LANE); a31 = FN(a31, w1, V3, LANE); a32 = FN(a32, w2, V3, LANE); a33 = FN(a33, w3, V3, LANE); \
    } while (0)

#define SDOT(A, W, X, L) "sdot %[" #A "].4s, " #W ".16b, " #X ".4b[" #L "]\n"
#define SDOT_GROUP(L)                                                                                 \
    "ldp q28, q29, [%[w]], #32\n"                                                                     \
    "ldp q30, q31, [%[w]], #32\n"                                                                     \
    SDOT(a00, v28, v24, L) SDOT(a10, v28, v25, L) SDOT(a20, v28, v26, L) SDOT(a30, v28, v27, L)      \
    SDOT(a01, v29, v24, L) SDOT(a11, v29, v25, L) SDOT(a21, v29, v26, L) SDOT(a31, v29, v27, L)      \
    SDOT(a02, v30, v24, L) SDOT(a12, v30, v25, L) SDOT(a22, v30, v26, L) SDOT(a32, v30, v27, L)      \
    SDOT(a03, v31, v24, L) SDOT(a13, v31, v25, L) SDOT(a23, v31, v26, L) SDOT(a33, v31, v27, L)

static void dot_tile(const arm_gemm *g, const int8_t *const *x, int8_t *const *o, int32_t npx, int32_t oc) {
    const int8_t *w = g->weights + (size_t)(oc / 16) * g->block_bytes;
    const int32_t *bias = g->rq.bias + oc;
    const int32x4_t b0 = vld1q_s32(bias), b1 = vld1q_s32(bias + 4), b2 = vld1q_s32(bias + 8), b3 = vld1q_s32(bias + 12);
    int32x4_t a00 = b0, a01 = b1, a02 = b2, a03 = b3, a10 = b0, a11 = b1, a12 = b2, a13 = b3;
    int32x4_t a20 = b0, a21 = b1, a22 = b2, a23 = b3, a30 = b0, a31 = b1, a32 = b2, a33 = b3;
    const int32_t L = g->in.L, steps = L / 16;
    const ptrdiff_t run_stride = g->in.run_stride;
    for (int32_t r = 0; r < g->in.runs; r++) {
        const int8_t *x0 = x[0] + r * run_stride, *x1 = x[1] + r * run_stride;
        const int8_t *x2 = x[2] + r * run_stride, *x3 = x[3] + r * run_stride;
        if (steps > 0) {
            int64_t n = steps;
            __asm__ volatile(
                ".arch_extension dotprod\n"
                "1:\n"
                "ldr q24, [%[x0]], #16\n"
                "ldr q25, [%[x1]], #16\n"
                "ldr q26, [%[x2]], #16\n"
                "ldr q27, [%[x3]], #16\n"
                SDOT_GROUP(0) SDOT_GROUP(1) SDOT_GROUP(2) SDOT_GROUP(3)
                "subs %[n], %[n], #1\n"
                "b.ne 1b\n"
                : [a00] "+w"(a00), [a01] "+w"(a01), [a02] "+w"(a02), [a03] "+w"(a03), [a10] "+w"(a10), [a11] "+w"(a11),
                  [a12] "+w"(a12), [a13] "+w"(a13), [a20] "+w"(a20), [a21] "+w"(a21), [a22] "+w"(a22), [a23] "+w"(a23),
                  [a30] "+w"(a30), [a31] "+w"(a31), [a32] "+w"(a32), [a33] "+w"(a33), [x0] "+r"(x0), [x1] "+r"(x1),
                  [x2] "+r"(x2), [x3] "+r"(x3), [w] "+r"(w), [n] "+r"(n)
                :
                : "cc", "memory", "v24", "v25", "v26", "v27", "v28", "v29", "v30", "v31");
        }
        if (L & 8) {
            const int8x8_t v0 = vld1_s8(x0), v1 = vld1_s8(x1), v2 = vld1_s8(x2), v3 = vld1_s8(x3);
            DOT_GROUP(0, v0, v1, v2, v3, vdotq_lane_s32);
            DOT_GROUP(1, v0, v1, v2, v3, vdotq_lane_s32);
            x0 += 8; x1 += 8; x2 += 8; x3 += 8;
        }
        if (L & 4) {
            const int8x8_t v0 = arm_load4(x0), v1 = arm_load4(x1), v2 = arm_load4(x2), v3 = arm_load4(x3);
            DOT_GROUP(0, v0, v1, v2, v3, vdotq_lane_s32);
        }
    }
    const int32_t nch = arm_min(16, g->out_c - oc);
    arm_store(o[0] + oc, arm_rq16(&g->rq, oc, a00, a01, a02, a03, &g->out), nch);
    if (npx > 1) arm_store(o[1] + oc, arm_rq16(&g->rq, oc, a10, a11, a12, a13, &g->out), nch);
    if (npx > 2) arm_store(o[2] + oc, arm_rq16(&g->rq, oc, a20, a21, a22, a23, &g->out), nch);
    if (npx > 3) arm_store(o[3] + oc, arm_rq16(&g->rq, oc, a30, a31, a32, a33, &g->out), nch);
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
    g.safe = 1;
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

#define FC_GROUP(A0, A1, A2, A3, V, LANE, FN)                                                        \
    do {                                                                                              \
        A0 = FN(A0, vld1q_s8(w), V, LANE);                                                            \
        A1 = FN(A1, vld1q_s8(w + 16), V, LANE);                                                       \
        A2 = FN(A2, vld1q_s8(w + 32), V, LANE);                                                       \
        A3 = FN(A3, vld1q_s8(w + 48), V, LANE);                                                       \
        w += 64;                                                                                      \
    } while (0)

void sieve_fc_s8__neondot(const sieve_fc_params *p, const void *packed, void *scratch, int32_t oc_begin, int32_t oc_end) {
    sieve_k4_view kv;
    const arm_rq_view rq = k4_rq(packed, p->out_c, p->k, &kv);
    const arm_out_stage out = arm_out(p->output_zero_point, p->act_min, p->act_max);
    int8_t *xs = (int8_t *)scratch;
    const int32_t k16 = sieve_round_up(p->k, 16), groups = kv.k4 / 4;
    memcpy(xs, p->input, (size_t)p->k);
    memset(xs + p->k, 0, (size_t)(k16 - p->k));
    for (int32_t oc = oc_begin; oc < oc_end; oc += 16) {
        const int8_t *w = kv.weights + (size_t)(oc / 16) * kv.k4 * 16;
        int32x4_t a0 = vld1q_s32(rq.bias + oc), a1 = vld1q_s32(rq.bias + oc + 4);
        int32x4_t a2 = vld1q_s32(rq.bias + oc + 8), a3 = vld1q_s32(rq.bias + oc + 12);
        int32x4_t c0 = vdupq_n_s32(0), c1 = c0, c2 = c0, c3 = c0;
        int32_t gi = 0;
        for (; gi + 4 <= groups; gi += 4) {
            const int8x16_t v = vld1q_s8(xs + 4 * gi);
            FC_GROUP(a0, a1, a2, a3, v, 0, vdotq_laneq_s32);
            FC_GROUP(c0, c1, c2, c3, v, 1, vdotq_laneq_s32);
            FC_GROUP(a0, a1, a2, a3, v, 2, vdotq_laneq_s32);
            FC_GROUP(c0, c1, c2, c3, v, 3, vdotq_laneq_s32);
        }
        if (gi < groups) {
            const int8x16_t v = vld1q_s8(xs + 4 * gi);  // zero padded past k
            FC_GROUP(a0, a1, a2, a3, v, 0, vdotq_laneq_s32);
            if (gi + 1 < groups) FC_GROUP(c0, c1, c2, c3, v, 1, vdotq_laneq_s32);
            if (gi + 2 < groups) FC_GROUP(a0, a1, a2, a3, v, 2, vdotq_laneq_s32);
        }
        const int8x16_t result = arm_rq16(&rq, oc, vaddq_s32(a0, c0), vaddq_s32(a1, c1), vaddq_s32(a2, c2), vaddq_s32(a3, c3), &out);
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
