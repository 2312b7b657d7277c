// The neondot path: AArch64 v8.2 dot product (sdot, signed x signed, so no input offset).
// Conv and fully connected weights in the K4 layout (sieve_pack.h) followed by the requantisation
// extras (neon_common.h); depthwise conv is the neon path's (sdot does not fit a per-channel product).
#if defined(__aarch64__)
#include <arm_neon.h>
#include "sieve_target.h"

SIEVE_TARGET_BEGIN("arch=armv8.2-a+dotprod")

#include "neon_common.h"
#include "neondot_rq.h"

// ---- Conv -----------------------------------------------------------------------------------------
// Micro-kernel: 4 pixels x 16 channels, sixteen int32x4 accumulators (pixel i, channels 4j...4j+3 in
// v(4i+j)), in inline assembly so gcc and clang emit the same loop (gcc's register allocation
// spills accumulators here). Per 16 input bytes of a run: 4 input loads (v24-v27), 8 ldp of weights
// (two per K4 group of 64 bytes, into v28-v31), 64 sdot by element: v(4i+j) += w(group g, channels 4j...4j+3)
// . x_i[lane g]. Tails of 8 and 4 bytes per run: d and s loads, lanes 0-1 and 0.
// Loads are single ldr q at immediate offsets, the pointers advanced by one add each per step:
// post-indexed or register-offset loads and ldp q cost extra micro-ops, which made the loop
// dispatch-bound rather than sdot-bound (100 micro-ops for 64 sdot; now 91; docs/ESTIMATE.md).
#define SD(A, W, X, L) "sdot v" #A ".4s, v" #W ".16b, v" #X ".4b[" #L "]\n"
#define DOT_GROUP_AT(L, OFF0, OFF1, OFF2, OFF3)                                                       \
    "ldr q28, [x13, #" #OFF0 "]\n ldr q29, [x13, #" #OFF1 "]\n"                                        \
    "ldr q30, [x13, #" #OFF2 "]\n ldr q31, [x13, #" #OFF3 "]\n"                                        \
    SD(0, 28, 24, L) SD(4, 28, 25, L) SD(8, 28, 26, L) SD(12, 28, 27, L)                              \
    SD(1, 29, 24, L) SD(5, 29, 25, L) SD(9, 29, 26, L) SD(13, 29, 27, L)                              \
    SD(2, 30, 24, L) SD(6, 30, 25, L) SD(10, 30, 26, L) SD(14, 30, 27, L)                             \
    SD(3, 31, 24, L) SD(7, 31, 25, L) SD(11, 31, 26, L) SD(15, 31, 27, L)
#define DOT_GROUP_0 DOT_GROUP_AT(0, 0, 16, 32, 48)
#define DOT_GROUP_1 DOT_GROUP_AT(1, 64, 80, 96, 112)
#define DOT_GROUP_2 DOT_GROUP_AT(2, 128, 144, 160, 176)
#define DOT_GROUP_3 DOT_GROUP_AT(3, 192, 208, 224, 240)
// dot_run's weight tile: the channel blocks whose weights stay in L1 while a band's pixel groups
// pass (arm_gemm_run's 16 KB elsewhere). 40 KB: two blocks of a 3x3x128 conv, inside the A76's
// 64 KB L1D with a group's input; fewer calls a pixel group (docs/ESTIMATE.md).
#ifndef DOT_TILE_BYTES
#define DOT_TILE_BYTES 40960
#endif
#define DOT_ADVANCE_X(N) "add x4, x4, #" #N "\n add x5, x5, #" #N "\n add x6, x6, #" #N "\n add x7, x7, #" #N "\n"

// Requantises the tile's accumulators (pixel i's 16 channels at acc + 16 i) and stores them.
static inline __attribute__((always_inline)) void dot_store(const arm_gemm *g, const int32_t *acc, int8_t *const *o,
                                                            int32_t npx, int32_t oc) {
    const int32_t nch = arm_min(16, g->out_c - oc);
    if (g->rq.fast[oc / 16]) {
        const arm_rq_block k = arm_rq_block_at(&g->rq, oc);
        for (int32_t i = 0; i < npx; i++) {
            const int32_t *a = acc + 16 * i;
            const int8x16_t v = arm_rq_fast(vld1q_s32(a), vld1q_s32(a + 4), vld1q_s32(a + 8), vld1q_s32(a + 12), k.m0, k.m1, k.m2,
                                            k.m3, k.r0, k.r1, k.r2, k.r3, &g->out);
            if (nch == 16) vst1q_s8(o[i] + oc, v);
            else arm_store(o[i] + oc, v, nch);
        }
        return;
    }
    for (int32_t i = 0; i < npx; i++) {
        const int32_t *a = acc + 16 * i;
        arm_store(o[i] + oc, arm_rq16(&g->rq, oc, vld1q_s32(a), vld1q_s32(a + 4), vld1q_s32(a + 8), vld1q_s32(a + 12), &g->out), nch);
    }
}

// A band's last 1-2 pixels: pixels 0-1 only (half the sdot of the 4-pixel tile; a 7x7 layer's 49
// pixels are 12 tiles of 4 and one of 1), through acc and dot_store.
#define DOT_GROUP_2PX_AT(L, OFF0, OFF1, OFF2, OFF3)                                                   \
    "ldr q28, [x13, #" #OFF0 "]\n ldr q29, [x13, #" #OFF1 "]\n"                                        \
    "ldr q30, [x13, #" #OFF2 "]\n ldr q31, [x13, #" #OFF3 "]\n"                                        \
    SD(0, 28, 24, L) SD(4, 28, 25, L) SD(1, 29, 24, L) SD(5, 29, 25, L)                               \
    SD(2, 30, 24, L) SD(6, 30, 25, L) SD(3, 31, 24, L) SD(7, 31, 25, L)

__attribute__((noinline)) static void dot_tile_2px(const arm_gemm *g, const int8_t *const *x, int8_t *const *o, int32_t npx, int32_t b0, int32_t b1) {
    int32_t acc[32] __attribute__((aligned(16)));
    const int64_t runs = g->in.runs, steps = g->in.L / 16, L = g->in.L, stride = g->in.run_stride;
    for (int32_t b = b0; b < b1; b++) {
        const int32_t oc = b * 16;
        const int8_t *w = g->weights + (size_t)b * g->block_bytes;
        __asm__ volatile(
            ".arch_extension dotprod\n"
            "ld1 {v0.4s, v1.4s, v2.4s, v3.4s}, [%[bias]]\n"
            "mov v4.16b, v0.16b\n mov v5.16b, v1.16b\n mov v6.16b, v2.16b\n mov v7.16b, v3.16b\n"
            "mov x9, %[x0]\n mov x10, %[x1]\n"
            "mov x13, %[w]\n mov x14, %[runs]\n"
            "1:\n"
            "mov x4, x9\n mov x5, x10\n"
            "cbz %[steps], 3f\n"
            "mov x15, %[steps]\n"
            "2:\n"
            "ldr q24, [x4]\n ldr q25, [x5]\n"
            "add x4, x4, #16\n add x5, x5, #16\n"
            DOT_GROUP_2PX_AT(0, 0, 16, 32, 48) DOT_GROUP_2PX_AT(1, 64, 80, 96, 112)
            DOT_GROUP_2PX_AT(2, 128, 144, 160, 176) DOT_GROUP_2PX_AT(3, 192, 208, 224, 240)
            "add x13, x13, #256\n"
            "subs x15, x15, #1\n"
            "b.ne 2b\n"
            "3:\n"
            "tbz %[L], #3, 4f\n"
            "ldr d24, [x4]\n ldr d25, [x5]\n"
            "add x4, x4, #8\n add x5, x5, #8\n"
            DOT_GROUP_2PX_AT(0, 0, 16, 32, 48) DOT_GROUP_2PX_AT(1, 64, 80, 96, 112)
            "add x13, x13, #128\n"
            "4:\n"
            "tbz %[L], #2, 5f\n"
            "ldr s24, [x4]\n ldr s25, [x5]\n"
            DOT_GROUP_2PX_AT(0, 0, 16, 32, 48)
            "add x13, x13, #64\n"
            "5:\n"
            "add x9, x9, %[stride]\n add x10, x10, %[stride]\n"
            "subs x14, x14, #1\n"
            "b.ne 1b\n"
            "stp q0, q1, [%[acc]]\n stp q2, q3, [%[acc], #32]\n stp q4, q5, [%[acc], #64]\n stp q6, q7, [%[acc], #96]\n"
            :
            : [x0] "r"(x[0]), [x1] "r"(x[1]), [w] "r"(w), [bias] "r"(g->rq.bias + oc), [runs] "r"(runs), [steps] "r"(steps),
              [L] "r"(L), [stride] "r"(stride), [acc] "r"(acc)
            : "cc", "memory", "x4", "x5", "x9", "x10", "x13", "x14", "x15", "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7",
              "v24", "v25", "v28", "v29", "v30", "v31");
        dot_store(g, acc, o, npx, oc);
    }
}

// Four pixels, every block of the call full and in the fast form (all_fast): the block loop, the
// run loop and the register epilogue in one piece of assembly, the per-block pointers (weights,
// bias, multipliers, rmix, the four outputs) advanced in registers. The run pointers step on by
// stride - L after a run (the 4-byte tail does not advance them), so no second set of them.
// Three forms of the run loop: L a multiple of 16 (no tails: the next run starts from the step
// loop's exit), L == 4 with 3 runs (the 3x3 one-channel stem: unrolled), and any L.
// The 16-byte step loop sits at a 512-byte boundary (the padding before it is jumped over, never
// run), so it never straddles a 4 KB page: qemu would end a block there and the estimator cost the
// two pieces apart (32.7 cycles a step against 32.1; docs/ESTIMATE.md).
#define DT4_BLOCK_START                                                                               \
    "ld1 {v0.4s, v1.4s, v2.4s, v3.4s}, [%[bias]]\n"                                                  \
    "mov v4.16b, v0.16b\n mov v5.16b, v1.16b\n mov v6.16b, v2.16b\n mov v7.16b, v3.16b\n"             \
    "mov v8.16b, v0.16b\n mov v9.16b, v1.16b\n mov v10.16b, v2.16b\n mov v11.16b, v3.16b\n"           \
    "mov v12.16b, v0.16b\n mov v13.16b, v1.16b\n mov v14.16b, v2.16b\n mov v15.16b, v3.16b\n"         \
    "ldp x4, x5, [%[x]]\n ldp x6, x7, [%[x], #16]\n"                                                  \
    "mov x13, %[w]\n mov x14, %[runs]\n"
#define DT4_STEP                                                                                      \
    "ldr q24, [x4]\n ldr q25, [x5]\n ldr q26, [x6]\n ldr q27, [x7]\n"                                 \
    DOT_ADVANCE_X(16)                                                                                 \
    DOT_GROUP_0 DOT_GROUP_1 DOT_GROUP_2 DOT_GROUP_3                                                   \
    "add x13, x13, #256\n"
#define DT4_NEXT_RUN "add x4, x4, %[rstep]\n add x5, x5, %[rstep]\n add x6, x6, %[rstep]\n add x7, x7, %[rstep]\n"
#define DT4_BLOCK_END                                                                                 \
    "ld1 {v16.4s, v17.4s, v18.4s, v19.4s}, [%[mult]]\n ld1 {v20.4s, v21.4s, v22.4s, v23.4s}, [%[mix]]\n" \
    "ldr q24, [%[out]]\n ldr q25, [%[out], #32]\n ldr q26, [%[out], #48]\n"                           \
    DOT_RQ_PIXEL_MIX(0, 1, 2, 3, "%[o0]") DOT_RQ_PIXEL_MIX(4, 5, 6, 7, "%[o1]")                       \
    DOT_RQ_PIXEL_MIX(8, 9, 10, 11, "%[o2]") DOT_RQ_PIXEL_MIX(12, 13, 14, 15, "%[o3]")                 \
    "add %[bias], %[bias], #64\n add %[mult], %[mult], #64\n add %[mix], %[mix], #64\n"               \
    "add %[o0], %[o0], #16\n add %[o1], %[o1], #16\n add %[o2], %[o2], #16\n add %[o3], %[o3], #16\n" \
    "add %[w], %[w], %[bb]\n"                                                                         \
    "subs %[nb], %[nb], #1\n"                                                                         \
    "b.ne 0b\n"
#define DT4_OPERANDS                                                                                  \
    : [o0] "+r"(o0), [o1] "+r"(o1), [o2] "+r"(o2), [o3] "+r"(o3), [w] "+r"(w), [bias] "+r"(bias), [mult] "+r"(mult), \
      [mix] "+r"(mix), [nb] "+r"(nb)                                                                  \
    : [x] "r"(x), [runs] "r"(runs), [steps] "r"(steps), [L] "r"(L), [rstep] "r"(rstep), [bb] "r"(bb), [out] "r"(out) \
    : "cc", "memory", "x4", "x5", "x6", "x7", "x13", "x14", "x15", "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", \
      "v9", "v10", "v11", "v12", "v13", "v14", "v15", "v16", "v17", "v18", "v19", "v20", "v21", "v22", "v23", "v24", "v25", \
      "v26", "v27", "v28", "v29", "v30", "v31"

// The loop-invariant part of dot_tile4_fast's operands, set once per op (the asm's memory clobber
// would otherwise make the compiler reload them from g for every pixel group).
typedef struct {
    int64_t runs, steps, L, rstep, bb;
    const arm_out_stage *out;
} dot_consts;

// A run's last 8 and 4 columns of L for four pixels (labels 3, 4, 5): one DOT_GROUP per 4 columns,
// the weights advanced past them. Shared by dot_run and dot_tile.
#define DOT_L_TAIL_4PX                                                                              \
    "3:\n"                                                                                          \
    "tbz %[L], #3, 4f\n"                                                                            \
    "ldr d24, [x4]\n ldr d25, [x5]\n ldr d26, [x6]\n ldr d27, [x7]\n"                                \
    DOT_ADVANCE_X(8)                                                                                \
    DOT_GROUP_0 DOT_GROUP_1                                                                         \
    "add x13, x13, #128\n"                                                                          \
    "4:\n"                                                                                          \
    "tbz %[L], #2, 5f\n"                                                                            \
    "ldr s24, [x4]\n ldr s25, [x5]\n ldr s26, [x6]\n ldr s27, [x7]\n"                                \
    DOT_GROUP_0                                                                                     \
    "add x13, x13, #64\n"                                                                           \
    "5:\n"

// The step loop both general forms start with, aligned (its entry, label 0, follows it): per step
// 16 columns of L for four pixels, x15 steps.
#define DT4_ALIGNED_STEP_LOOP                                                                       \
    ".arch_extension dotprod\n"                                                                     \
    "b 0f\n"                                                                                        \
    ".p2align 9\n"                                                                                  \
    "2:\n"                                                                                          \
    DT4_STEP                                                                                        \
    "subs x15, x15, #1\n"                                                                           \
    "b.ne 2b\n"

// Blocks [b0, b0 + nb) of 4 pixels; w, bias, mult, mix at block b0, o[i] at channel 16 b0.
// form: dot_form(), a constant where dot_run_form is instantiated, so each copy of the loop below
// holds one form of the assembly.
static inline __attribute__((always_inline)) void dot_tile4_fast(int form, const dot_consts *k, const int8_t *const *x, int8_t *o0,
                                                                 int8_t *o1, int8_t *o2, int8_t *o3, int64_t nb, const int8_t *w,
                                                                 const int32_t *bias, const int32_t *mult, const int32_t *mix) {
    const int64_t runs = k->runs, steps = k->steps, L = k->L, rstep = k->rstep, bb = k->bb;
    const arm_out_stage *out = k->out;
    if (form == 0) {
        __asm__ volatile(
            DT4_ALIGNED_STEP_LOOP
            DT4_NEXT_RUN
            "mov x15, %[steps]\n"
            "subs x14, x14, #1\n"
            "b.ne 2b\n"
            "b 5f\n"
            "0:\n"
            DT4_BLOCK_START
            "mov x15, %[steps]\n"
            "b 2b\n"
            "5:\n"
            DT4_BLOCK_END
            DT4_OPERANDS);
    } else if (form == 1) {
        // The 3x3 one-channel stem: the three runs unrolled, weights at immediate offsets, so a block
        // is one straight piece from its accumulators' set-up to its stores.
        __asm__ volatile(
            ".arch_extension dotprod\n"
            "0:\n"
            DT4_BLOCK_START
            "ldr s24, [x4]\n ldr s25, [x5]\n ldr s26, [x6]\n ldr s27, [x7]\n"
            DOT_GROUP_AT(0, 0, 16, 32, 48)
            DT4_NEXT_RUN
            "ldr s24, [x4]\n ldr s25, [x5]\n ldr s26, [x6]\n ldr s27, [x7]\n"
            DOT_GROUP_AT(0, 64, 80, 96, 112)
            DT4_NEXT_RUN
            "ldr s24, [x4]\n ldr s25, [x5]\n ldr s26, [x6]\n ldr s27, [x7]\n"
            DOT_GROUP_AT(0, 128, 144, 160, 176)
            DT4_BLOCK_END
            DT4_OPERANDS);
    } else {
        __asm__ volatile(
            DT4_ALIGNED_STEP_LOOP
            "b 3f\n"
            "0:\n"
            DT4_BLOCK_START
            "1:\n"
            "cbz %[steps], 3f\n"
            "mov x15, %[steps]\n"
            "b 2b\n"
            DOT_L_TAIL_4PX
            DT4_NEXT_RUN
            "subs x14, x14, #1\n"
            "b.ne 1b\n"
            DT4_BLOCK_END
            DT4_OPERANDS);
    }
}

static void dot_tile(const arm_gemm *g, const int8_t *const *x, int8_t *const *o, int32_t npx, int32_t b0, int32_t b1) {
    if (__builtin_expect(npx <= 2, 0)) { dot_tile_2px(g, x, o, npx, b0, b1); return; }
    int32_t acc[64] __attribute__((aligned(16)));
    const int64_t runs = g->in.runs, steps = g->in.L / 16, L = g->in.L, stride = g->in.run_stride;
    for (int32_t b = b0; b < b1; b++) {
        const int32_t oc = b * 16;
        const int8_t *w = g->weights + (size_t)b * g->block_bytes;
        // direct: four pixels, sixteen real channels, the fast form; else through acc and dot_store.
        const int direct = npx == ARM_MR && g->out_c - oc >= 16 && g->rq.fast[b];
        const void *ep[6] = {o[0] + oc, o[1] + oc, o[2] + oc, o[3] + oc, g->rq.mult + oc, g->rq.rmix + oc};
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
            "cbz %[steps], 3f\n"
            "mov x15, %[steps]\n"
            "2:\n"
            "ldr q24, [x4]\n ldr q25, [x5]\n ldr q26, [x6]\n ldr q27, [x7]\n"
            DOT_ADVANCE_X(16)
            DOT_GROUP_0 DOT_GROUP_1 DOT_GROUP_2 DOT_GROUP_3
            "add x13, x13, #256\n"
            "subs x15, x15, #1\n"
            "b.ne 2b\n"
            DOT_L_TAIL_4PX
            "add x9, x9, %[stride]\n add x10, x10, %[stride]\n add x11, x11, %[stride]\n add x12, x12, %[stride]\n"
            "subs x14, x14, #1\n"
            "b.ne 1b\n"
            // A whole tile in the fast form: requantised from the registers, 16-byte stores.
            "cbz %[ep], 6f\n"
            "ldp x4, x5, [%[ep]]\n ldp x6, x7, [%[ep], #16]\n ldp x9, x10, [%[ep], #32]\n"
            "ld1 {v16.4s, v17.4s, v18.4s, v19.4s}, [x9]\n ld1 {v20.4s, v21.4s, v22.4s, v23.4s}, [x10]\n"
            "ldr q24, [%[out]]\n ldr q25, [%[out], #32]\n ldr q26, [%[out], #48]\n"
            DOT_RQ_PIXEL_MIX(0, 1, 2, 3, "x4") DOT_RQ_PIXEL_MIX(4, 5, 6, 7, "x5")
            DOT_RQ_PIXEL_MIX(8, 9, 10, 11, "x6") DOT_RQ_PIXEL_MIX(12, 13, 14, 15, "x7")
            "b 7f\n"
            "6:\n"
            "stp q0, q1, [%[acc]]\n stp q2, q3, [%[acc], #32]\n stp q4, q5, [%[acc], #64]\n stp q6, q7, [%[acc], #96]\n"
            "stp q8, q9, [%[acc], #128]\n stp q10, q11, [%[acc], #160]\n stp q12, q13, [%[acc], #192]\n stp q14, q15, [%[acc], #224]\n"
            "7:\n"
            :
            : [x0] "r"(x[0]), [x1] "r"(x[1]), [x2] "r"(x[2]), [x3] "r"(x[3]), [w] "r"(w), [bias] "r"(g->rq.bias + oc),
              [runs] "r"(runs), [steps] "r"(steps), [L] "r"(L), [stride] "r"(stride), [acc] "r"(acc), [ep] "r"(direct ? ep : NULL), [out] "r"(&g->out)
            : "cc", "memory", "x4", "x5", "x6", "x7", "x9", "x10", "x11", "x12", "x13", "x14", "x15", "v0", "v1", "v2", "v3",
              "v4", "v5", "v6", "v7", "v8", "v9", "v10", "v11", "v12", "v13", "v14", "v15", "v16", "v17", "v18", "v19", "v20", "v21", "v22", "v23", "v24",
              "v25", "v26", "v27", "v28", "v29", "v30", "v31");
        if (!direct) dot_store(g, acc, o, npx, oc);
    }
}

// arm_gemm_run for an all_fast conv, with the 4-pixel tile inlined (one call per op, not per pixel
// group: the tile's assembly needs most registers, so a call of its own saved and restored them
// each time); a group inside one output row takes its pointers by adding ox_step and out_c, a
// group across rows and a band's last 1-3 pixels as arm_gemm_run does (those through dot_tile).
static inline __attribute__((always_inline)) void dot_run_form(int form, const arm_gemm *g, const sieve_conv_params *p) {
    const int32_t pixels = p->out_h * p->out_w;
    const int32_t blocks = p->out_c / 16;
    const int32_t tile_blocks = arm_max(1, (int32_t)(DOT_TILE_BYTES / g->block_bytes));
    const ptrdiff_t xs = g->in.ox_step, os = p->out_c;
    const dot_consts k = {g->in.runs, g->in.L / 16, g->in.L, g->in.run_stride - g->in.L + (g->in.L & 4), (int64_t)g->block_bytes, &g->out};
    for (int32_t b0 = 0; b0 < blocks; b0 += tile_blocks) {
        const int32_t b1 = arm_min(blocks, b0 + tile_blocks), oc = b0 * 16;
        const int8_t *w = g->weights + (size_t)b0 * g->block_bytes;
        const int32_t *bias = g->rq.bias + oc, *mult = g->rq.mult + oc, *mix = g->rq.rmix + oc;
        int8_t *out = p->output + oc;
        int32_t oy = 0, ox = 0;
        for (int32_t pix = 0; pix < pixels; pix += ARM_MR) {
            const int8_t *x[ARM_MR];
            const int32_t npx = arm_min(ARM_MR, pixels - pix);
            if (npx == ARM_MR && ox + ARM_MR <= p->out_w) {
                const int8_t *x0 = g->in.base + oy * g->in.oy_step + ox * xs;
                int8_t *o0 = out + (size_t)pix * os;
                x[0] = x0, x[1] = x0 + xs, x[2] = x0 + 2 * xs, x[3] = x0 + 3 * xs;
                dot_tile4_fast(form, &k, x, o0, o0 + os, o0 + 2 * os, o0 + 3 * os, b1 - b0, w, bias, mult, mix);
            } else {
                int8_t *o[ARM_MR];
                int32_t cy = oy, cx = ox;
                for (int32_t i = 0; i < ARM_MR; i++) {
                    x[i] = g->in.base + cy * g->in.oy_step + cx * xs;
                    o[i] = p->output + (size_t)(pix + arm_min(i, npx - 1)) * os;
                    if (i + 1 < npx && ++cx == p->out_w) { cx = 0; cy++; }
                }
                if (npx == ARM_MR) dot_tile4_fast(form, &k, x, o[0] + oc, o[1] + oc, o[2] + oc, o[3] + oc, b1 - b0, w, bias, mult, mix);
                else dot_tile(g, x, o, npx, b0, b1);
            }
            ox += ARM_MR;
            while (ox >= p->out_w) { ox -= p->out_w; oy++; }
        }
    }
}

// 0: L a multiple of 16, 1: the 3x3 one-channel stem, 2: any L.
static int dot_form(const arm_conv_input *in) { return in->L % 16 == 0 ? 0 : in->L == 4 && in->runs == 3 ? 1 : 2; }

__attribute__((noinline)) static void dot_run(const arm_gemm *g, const sieve_conv_params *p) {
    switch (dot_form(&g->in)) {
    case 0: dot_run_form(0, g, p); break;
    case 1: dot_run_form(1, g, p); break;
    default: dot_run_form(2, g, p); break;
    }
}

// Packed: the K4 layout (input offset 0), then the requantisation extras.
//
// A conv whose in_c is not a multiple of 4 (the one-channel stem) runs directly on the padded band
// instead of an im2col when padding each kernel row's kw * in_c columns to a multiple of 4 costs no
// extra sdot (kh * r4 == k rounded up to 4: a 3x3 one-channel kernel, 3 rows of 4 against 12):
// weights packed per kernel row (sieve_pack_conv_k4), each row read as one run of r4 bytes. The
// bytes past kw * in_c are the next pixel's (or the scratch's slack) against zero weights.
// Also when it costs at most a quarter more sdot (ResNet's 7x7 RGB stem: 7 rows of 24 against 148,
// 13.5 % more): the im2col copy (148 bytes a pixel there) cost more than the extra sdot and the
// six extra runs (estimator, Pi 5: see docs/ESTIMATE.md).
static int rows_direct(const sieve_conv_params *p) {
    const int32_t r4 = sieve_round_up(p->kernel_w * p->in_c, 4);
    return !sieve_conv_is_direct(p) && 4 * p->kernel_h * r4 <= 5 * sieve_round_up(p->kernel_h * p->kernel_w * p->in_c, 4);
}

static int32_t conv_k(const sieve_conv_params *p) {
    return rows_direct(p) ? sieve_conv_k4(p) : p->kernel_h * p->kernel_w * p->in_c;
}

size_t sieve_conv_packed_size__neondot(const sieve_conv_params *p) {
    if (p->groups != 1) return 0;
    const int32_t ocp = sieve_round_up(p->out_c, 16);
    return sieve_pack_k4_size(p->out_c, conv_k(p)) + arm_rq_extra_size(ocp);
}

void sieve_conv_pack__neondot(const sieve_conv_params *p, void *packed) {
    const int32_t ocp = sieve_round_up(p->out_c, 16);
    if (rows_direct(p)) sieve_pack_conv_k4(p, 0, 1, packed);
    else sieve_pack_k4(p->weights, p->bias, p->multipliers, p->shifts, p->out_c, conv_k(p), 0, packed);
    arm_rq_view v;
    arm_rq_fill_extra((char *)packed + sieve_pack_k4_size(p->out_c, conv_k(p)), p->shifts, p->out_c, ocp, &v);
}

// The im2col's scratch (rows, then the padded band, then slack) is larger than the padded band and
// the 3 bytes a row run may read past it.
size_t sieve_conv_scratch_size__neondot(const sieve_conv_params *p) { return arm_conv_scratch_size(p); }

void sieve_conv_s8__neondot(const sieve_conv_params *p, const void *packed, void *scratch) {
    if (p->out_h <= 0 || p->out_w <= 0) return;
    sieve_k4_view kv;
    arm_gemm g;
    g.rq = k4_rq(packed, p->out_c, conv_k(p), &kv);
    if (rows_direct(p)) {
        sieve_pad_input(p, 0, (uint8_t *)scratch);
        const ptrdiff_t row = (ptrdiff_t)sieve_conv_span_w(p) * p->in_c;
        g.in.base = (const int8_t *)scratch;
        g.in.oy_step = row * p->stride_h;
        g.in.ox_step = (ptrdiff_t)p->stride_w * p->in_c;
        g.in.run_stride = row;
        g.in.runs = p->kernel_h;
        g.in.L = sieve_round_up(p->kernel_w * p->in_c, 4);
    } else {
        g.in = arm_conv_stage(p, scratch);
    }
    g.out = arm_out(p->output_zero_point, p->act_min, p->act_max);
    g.weights = kv.weights;
    g.block_bytes = (size_t)kv.k4 * 16;
    g.out_c = p->out_c;
    g.all_fast = p->out_c % 16 == 0;
    for (int32_t b = 0; b < p->out_c / 16; b++) g.all_fast &= g.rq.fast[b] != 0;
    if (g.all_fast) dot_run(&g, p);
    else arm_gemm_run(&g, p, 16, dot_tile);
}

SIEVE_TARGET_END
#endif
