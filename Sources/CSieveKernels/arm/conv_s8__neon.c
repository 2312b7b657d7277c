// Convolution (groups = 1) on the neon path: AArch64 v8.0 Advanced SIMD, smull/smlal2 into int16,
// sadalp into int32 (docs/KERNELS.md, "The neon layouts").
#if defined(__aarch64__)
#include <arm_neon.h>
#include "sieve_target.h"

SIEVE_TARGET_BEGIN("arch=armv8-a+simd")

#include "neon_common.h"
#include "neon_layout.h"

// ---- Conv -----------------------------------------------------------------------------------------
// Layout: header, requantisation table (ocp = out_c rounded up to 16), then weights in blocks of 4
// output channels. A block holds, for each run r (kernel row; or the one im2col run) of L columns,
// the run cut into chunks consumed in order: L / 16 chunks of 16 columns, then (L % 16 >= 8) one of
// 8, then (L % 8 == 4) one of 4 padded to 8 with zeros; a chunk of c columns is [4 channels][c]
// (a padded chunk [4][8]). Block bytes: runs * round_up(L, 8) * 4.
static size_t conv_block_bytes(int32_t runs, int32_t L) { return (size_t)runs * (size_t)sieve_round_up(L, 8) * 4; }

// The quad form (chosen per op here, from the weights, never from a flag): an int16 lane sums four
// products, w[i] x[i] + w[i+8] x[i+8] of two 16-column chunks, before one sadalp: half the sadalp
// of the paired form, which limits the in-order A53/A55. Inputs are int8, |x| <= 128, so the lane
// cannot overflow when its four |w| sum to at most 255 (255 * 128 = 32640). Every 7-bit weight
// ([-63, 63], `sieve quantize --weight-bits 7`) passes: 4 * 63 = 252.
enum { QUAD_WEIGHT_SUM = 255 };

// An im2col conv (the one-channel stem: k = 9, k4 = 12) whose k4 would end in a chunk of 8 and one of
// 4 runs as one chunk of 16 instead: one paired step (48 multiply-accumulates a tile, 6 loads)
// against two unpaired tails (64, 12 loads). Each pixel reads 16 bytes at its k4-wide im2col row,
// so the 4 columns past k4 are the next row's bytes (or the rows' slack) against zero weights.
static void neon_conv_runs(const sieve_conv_params *p, int32_t *runs, int32_t *L) {
    arm_conv_runs(p, runs, L);
    if (!sieve_conv_is_direct(p) && *L % 16 == 12) *L += 4;
}

size_t sieve_conv_packed_size__neon(const sieve_conv_params *p) {
    if (p->groups != 1) return 0;
    if (sieve_stem_usable__neon(p)) return sieve_stem_packed_size__neon(p);
    if (sieve_conv_wino_fits__neon(p)) return sieve_conv_wino_packed_size__neon(p);
    int32_t runs, L;
    neon_conv_runs(p, &runs, &L);
    const int32_t ocp = sieve_round_up(p->out_c, 16);
    return NEON_HEADER + arm_rq_table_size(ocp) + (size_t)(ocp / 4) * conv_block_bytes(runs, L);
}

void sieve_conv_pack__neon(const sieve_conv_params *p, void *packed) {
    if (sieve_stem_usable__neon(p)) { sieve_stem_pack__neon(p, packed); return; }
    if (sieve_conv_wino_fits__neon(p)) { sieve_conv_wino_pack__neon(p, packed); return; }
    int32_t runs, L;
    neon_conv_runs(p, &runs, &L);
    const int32_t ocp = sieve_round_up(p->out_c, 16), L8 = sieve_round_up(L, 8), L16 = L & ~15;
    const int32_t k = p->kernel_h * p->kernel_w * p->in_c;
    const size_t block = conv_block_bytes(runs, L);
    neon_header *h = (neon_header *)packed;
    memset(h, 0, NEON_HEADER);
    char *table = (char *)packed + NEON_HEADER;
    arm_rq_pack_table(table, p->bias, p->multipliers, p->shifts, p->out_c, ocp);
    int8_t *w = (int8_t *)(table + arm_rq_table_size(ocp));
    memset(w, 0, (size_t)(ocp / 4) * block);
    int32_t safe = 1, quad = 1;
    for (int32_t oc = 0; oc < p->out_c; oc++) {
        const int8_t *row = p->weights + (size_t)oc * k;
        int8_t *dst_block = w + (size_t)(oc / 4) * block;
        const int32_t c = oc % 4;
        for (int32_t r = 0; r < runs; r++) {
            int8_t *run = dst_block + (size_t)r * L8 * 4;
            for (int32_t j = 0; j < L; j++) {
                const int32_t index = arm_conv_column(p, runs, L, r, j);
                if (index < 0) continue;
                const int32_t base = j < L16 ? (j & ~15) : (j & ~7), size = j < L16 ? 16 : 8;
                run[base * 4 + c * size + (j - base)] = row[index];
            }
            for (int32_t j = 0; j + 16 <= L; j += 16) {
                for (int32_t i = 0; i < 8; i++) {
                    const int32_t i0 = arm_conv_column(p, runs, L, r, j + i), i1 = arm_conv_column(p, runs, L, r, j + i + 8);
                    if (i0 >= 0 && i1 >= 0 && pair_overflows(row[i0], row[i1])) safe = 0;
                }
            }
            for (int32_t j = 0; j + 32 <= L16; j += 32) {
                for (int32_t i = 0; i < 8; i++) {
                    int32_t sum = 0;  // the four weights of one int16 lane of the quad form
                    for (int32_t q = 0; q < 4; q++) {
                        const int32_t index = arm_conv_column(p, runs, L, r, j + i + 8 * q);
                        if (index >= 0) sum += row[index] < 0 ? -row[index] : row[index];
                    }
                    if (sum > QUAD_WEIGHT_SUM) quad = 0;
                }
            }
        }
    }
    h->safe = safe;
    h->quad = safe && quad && L16 >= 32;  // with no quad step the paired tile (and its peel) is as good
    h->runs = runs;
    h->L = L;
    h->block_bytes = (int32_t)block;
}

size_t sieve_conv_scratch_size__neon(const sieve_conv_params *p) {
    if (sieve_stem_usable__neon(p)) return sieve_stem_scratch_size__neon(p);
    return sieve_conv_wino_fits__neon(p) ? sieve_conv_wino_scratch_size__neon(p) : arm_conv_scratch_size(p);
}

// Micro-kernel: 4 pixels x 4 channels, sixteen int32x4 partial sums (pixel i, channel j in v(4i+j)),
// reduced with addp after the loop. Inline assembly, so gcc and clang emit the same loop (gcc's
// register allocation spills accumulators here). Per 16 columns of a run: 4 input loads (v24-v27),
// 2 ldp of weights (4 channels x 16 columns: v28-v31) and, per (pixel, channel), the paired form
// smull + smlal2 + sadalp (48 instructions) or the unpaired form smull + smull2 + 2 sadalp (64);
// products go through the temporaries v16-v23. Chunks of 8 (and of 4, zero padded to 8): smull + sadalp.
// Chunks of 8: two pixels x 4 channels, smull + sadalp.
#define HALF8(X0, X1, A0, A1)                                                                         \
    ML(16, X0, 28) ML(17, X0, 29) ML(18, X0, 30) ML(19, X0, 31)                                      \
    ML(20, X1, 28) ML(21, X1, 29) ML(22, X1, 30) ML(23, X1, 31)

// The loads and tails of a 4-pixel tile, and of a 2-pixel one (a band's last 1-2 pixels: a 7x7 layer's
// 49 pixels are 12 tiles of 4 and one of 1, which would otherwise pay for 4).
#define LOADQ_4PX "ldr q24, [x4]\n ldr q25, [x5]\n ldr q26, [x6]\n ldr q27, [x7]\n"
#define LOADQ_2PX "ldr q24, [x4]\n ldr q25, [x5]\n"
#define TAIL8_4PX                                                                                     \
    "ldr d24, [x4], #8\n ldr d25, [x5], #8\n ldr d26, [x6], #8\n ldr d27, [x7], #8\n"               \
    "ldp d28, d29, [x13], #16\n ldp d30, d31, [x13], #16\n"                                          \
    HALF8(24, 25, 0, 4) PADAL8(0, 1, 2, 3, 4, 5, 6, 7)                                                \
    HALF8(26, 27, 8, 12) PADAL8(8, 9, 10, 11, 12, 13, 14, 15)
#define TAIL4_4PX                                                                                     \
    "ldr s24, [x4]\n ldr s25, [x5]\n ldr s26, [x6]\n ldr s27, [x7]\n"                               \
    "ldp d28, d29, [x13], #16\n ldp d30, d31, [x13], #16\n"                                          \
    HALF8(24, 25, 0, 4) PADAL8(0, 1, 2, 3, 4, 5, 6, 7)                                                \
    HALF8(26, 27, 8, 12) PADAL8(8, 9, 10, 11, 12, 13, 14, 15)
#define TAIL8_2PX                                                                                     \
    "ldr d24, [x4], #8\n ldr d25, [x5], #8\n"                                                         \
    "ldp d28, d29, [x13], #16\n ldp d30, d31, [x13], #16\n"                                          \
    HALF8(24, 25, 0, 4) PADAL8(0, 1, 2, 3, 4, 5, 6, 7)
#define TAIL4_2PX                                                                                     \
    "ldr s24, [x4]\n ldr s25, [x5]\n"                                                                 \
    "ldp d28, d29, [x13], #16\n ldp d30, d31, [x13], #16\n"                                          \
    HALF8(24, 25, 0, 4) PADAL8(0, 1, 2, 3, 4, 5, 6, 7)

// PEEL: "" (the accumulators are zeroed first) or PEEL_4PX, which runs the first run's first step
// with saddlp (no accumulate) in place of the 16 zeroing moves a tile (the loop then continues).
#define NEON_TILE_ASM(LOADQ, STEP, TAIL8, TAIL4, PEEL, QUAD)                                          \
    __asm__ volatile(                                                                                 \
        "mov x9, %[x0]\n mov x10, %[x1]\n mov x11, %[x2]\n mov x12, %[x3]\n"                         \
        "mov x13, %[w]\n mov x14, %[runs]\n"                                                          \
        PEEL                                                                                          \
        "movi v0.4s, #0\n mov v1.16b, v0.16b\n mov v2.16b, v0.16b\n mov v3.16b, v0.16b\n"           \
        "mov v4.16b, v0.16b\n mov v5.16b, v0.16b\n mov v6.16b, v0.16b\n mov v7.16b, v0.16b\n"       \
        "mov v8.16b, v0.16b\n mov v9.16b, v0.16b\n mov v10.16b, v0.16b\n mov v11.16b, v0.16b\n"     \
        "mov v12.16b, v0.16b\n mov v13.16b, v0.16b\n mov v14.16b, v0.16b\n mov v15.16b, v0.16b\n"   \
        "1:\n"                                                                                        \
        "mov x4, x9\n mov x5, x10\n mov x6, x11\n mov x7, x12\n"                                     \
        "add x9, x9, %[stride]\n add x10, x10, %[stride]\n add x11, x11, %[stride]\n add x12, x12, %[stride]\n" \
        QUAD                                                                                          \
        "cbz %[steps], 3f\n"                                                                          \
        "mov x15, %[steps]\n"                                                                         \
        "2:\n"                                                                                        \
        LOADQ                                                                                         \
        "ldp q28, q29, [x13]\n ldp q30, q31, [x13, #32]\n"                                           \
        STEP                                                                                          \
        /* pointers advanced once, after the loads: post-indexed loads stall the in-order A53 */      \
        "add x4, x4, #16\n add x5, x5, #16\n add x6, x6, #16\n add x7, x7, #16\n add x13, x13, #64\n" \
        "subs x15, x15, #1\n"                                                                         \
        "b.ne 2b\n"                                                                                   \
        "3:\n"                                                                                        \
        "tbz %[L], #3, 4f\n"                                                                          \
        TAIL8                                                                                         \
        "4:\n"                                                                                        \
        "tbz %[L], #2, 5f\n"                                                                          \
        TAIL4                                                                                         \
        "5:\n"                                                                                        \
        "subs x14, x14, #1\n"                                                                         \
        "b.ne 1b\n"                                                                                   \
        "addp v0.4s, v0.4s, v1.4s\n addp v2.4s, v2.4s, v3.4s\n addp v4.4s, v4.4s, v5.4s\n addp v6.4s, v6.4s, v7.4s\n" \
        "addp v8.4s, v8.4s, v9.4s\n addp v10.4s, v10.4s, v11.4s\n addp v12.4s, v12.4s, v13.4s\n addp v14.4s, v14.4s, v15.4s\n" \
        "addp v0.4s, v0.4s, v2.4s\n addp v4.4s, v4.4s, v6.4s\n addp v8.4s, v8.4s, v10.4s\n addp v12.4s, v12.4s, v14.4s\n" \
        /* A whole tile in the fast form: requantised from the registers (as arm_rq_fast), each pixel's */ \
        /* 4 bytes stored as one 32-bit lane; else the sums go to acc for the C epilogue. */         \
        "cbz %[ep], 6f\n"                                                                             \
        "ldp x4, x5, [%[ep]]\n ldp x6, x7, [%[ep], #16]\n ldp x9, x10, [%[ep], #32]\n ldr x11, [%[ep], #48]\n" \
        "add x4, x4, %[oc]\n add x5, x5, %[oc]\n add x6, x6, %[oc]\n add x7, x7, %[oc]\n"          \
        "add x9, x9, %[oc], lsl #2\n add x10, x10, %[oc], lsl #2\n add x11, x11, %[oc], lsl #2\n"   \
        "ldr q16, [x9]\n ldr q17, [x10]\n ldr q18, [x11]\n"                                           \
        "ldr q19, [%[out]]\n ldr q20, [%[out], #32]\n ldr q21, [%[out], #48]\n"                      \
        /* results in v22-v25, the sums only read: no false dependency from one tile to the next */   \
        "add v22.4s, v0.4s, v16.4s\n add v23.4s, v4.4s, v16.4s\n add v24.4s, v8.4s, v16.4s\n add v25.4s, v12.4s, v16.4s\n" \
        "sqdmulh v22.4s, v22.4s, v17.4s\n sqdmulh v23.4s, v23.4s, v17.4s\n"                          \
        "sqdmulh v24.4s, v24.4s, v17.4s\n sqdmulh v25.4s, v25.4s, v17.4s\n"                          \
        "srshl v22.4s, v22.4s, v18.4s\n srshl v23.4s, v23.4s, v18.4s\n"                              \
        "srshl v24.4s, v24.4s, v18.4s\n srshl v25.4s, v25.4s, v18.4s\n"                              \
        "sqxtn v22.4h, v22.4s\n sqxtn v24.4h, v24.4s\n sqxtn2 v22.8h, v23.4s\n sqxtn2 v24.8h, v25.4s\n" \
        "sqadd v22.8h, v22.8h, v19.8h\n sqadd v24.8h, v24.8h, v19.8h\n"                              \
        "sqxtn v22.8b, v22.8h\n sqxtn2 v22.16b, v24.8h\n"                                            \
        "smax v22.16b, v22.16b, v20.16b\n smin v22.16b, v22.16b, v21.16b\n"                          \
        "st1 {v22.s}[0], [x4]\n st1 {v22.s}[1], [x5]\n st1 {v22.s}[2], [x6]\n st1 {v22.s}[3], [x7]\n" \
        "b 7f\n"                                                                                      \
        "6:\n"                                                                                        \
        "stp q0, q4, [%[acc]]\n stp q8, q12, [%[acc], #32]\n"                                      \
        "7:\n"                                                                                        \
        :                                                                                             \
        : [x0] "r"(x[0]), [x1] "r"(x[1]), [x2] "r"(x[2]), [x3] "r"(x[3]), [w] "r"(w), [runs] "r"(runs), \
          [steps] "r"(steps), [L] "r"(L), [stride] "r"(stride), [acc] "r"(acc), [ep] "r"(direct ? ep : NULL), [oc] "r"((int64_t)oc), [out] "r"(&g->out) \
        : "cc", "memory", "x4", "x5", "x6", "x7", "x9", "x10", "x11", "x12", "x13", "x14", "x15", "v0", "v1", "v2", "v3", \
          "v4", "v5", "v6", "v7", "v8", "v9", "v10", "v11", "v12", "v13", "v14", "v15", "v16", "v17", "v18", "v19", "v20", \
          "v21", "v22", "v23", "v24", "v25", "v26", "v27", "v28", "v29", "v30", "v31")

// The quad form's steps (QUAD_LOOP): 32 columns a step, two pixels at a time. Products of 2 pixels x
// 4 channels in eight temporaries (v20-v23, v28-v31: the in-order A53 needs six chains in flight
// to hide its 6-cycle multiply latency; four left it stalling, 136 cycles a step in llvm-mca against
// 113), so the weights (v16-v19) hold one 16-column chunk at a time and are loaded twice a pixel pair.
// Inputs: pixel XA's 32 columns in v24/v25, XB's in v26/v27. An odd 16-column step left over goes
// to the paired loop.
#define QUAD_ROUND(OP, X0, X1)                                                                        \
    OP(20, X0, 16) OP(28, X1, 16) OP(21, X0, 17) OP(29, X1, 17)                                      \
    OP(22, X0, 18) OP(30, X1, 18) OP(23, X0, 19) OP(31, X1, 19)
#define QUAD_PAIR(ACC, A0, A1, A2, A3, B0, B1, B2, B3)                                                \
    "ldp q16, q17, [x13]\n ldp q18, q19, [x13, #32]\n"                                               \
    QUAD_ROUND(ML, 24, 26) QUAD_ROUND(MLA2, 24, 26)                                                   \
    "ldp q16, q17, [x13, #64]\n ldp q18, q19, [x13, #96]\n"                                          \
    QUAD_ROUND(MLA, 25, 27) QUAD_ROUND(MLA2, 25, 27)                                                  \
    ACC(A0, 20) ACC(A1, 21) ACC(A2, 22) ACC(A3, 23) ACC(B0, 28) ACC(B1, 29) ACC(B2, 30) ACC(B3, 31)
#define QUAD_INPUTS(P, Q) "ldr q24, [" #P "]\n ldr q26, [" #Q "]\n ldr q25, [" #P ", #16]\n ldr q27, [" #Q ", #16]\n"
#define QUAD_STEP_2PX QUAD_INPUTS(x4, x5) QUAD_PAIR(PADAL, 0, 1, 2, 3, 4, 5, 6, 7)
#define QUAD_STEP_4PX QUAD_STEP_2PX QUAD_INPUTS(x6, x7) QUAD_PAIR(PADAL, 8, 9, 10, 11, 12, 13, 14, 15)
// The first run's first quad step with saddlp, in place of zeroing the 16 accumulators (as PEEL_4PX).
#define QUAD_PEEL_4PX                                                                                 \
    "cmp %[steps], #2\n"                                                                              \
    "b.lo 8f\n"                                                                                       \
    "mov x4, x9\n mov x5, x10\n mov x6, x11\n mov x7, x12\n"                                       \
    "add x9, x9, %[stride]\n add x10, x10, %[stride]\n add x11, x11, %[stride]\n add x12, x12, %[stride]\n" \
    QUAD_INPUTS(x4, x5) QUAD_PAIR(PADDL, 0, 1, 2, 3, 4, 5, 6, 7)                                      \
    QUAD_INPUTS(x6, x7) QUAD_PAIR(PADDL, 8, 9, 10, 11, 12, 13, 14, 15)                                \
    "add x4, x4, #32\n add x5, x5, #32\n add x6, x6, #32\n add x7, x7, #32\n add x13, x13, #128\n"  \
    "lsr x15, %[steps], #1\n"                                                                         \
    "subs x15, x15, #1\n"                                                                             \
    "b.ne 10f\n"                                                                                      \
    "b 11f\n"                                                                                         \
    "8:\n"
// steps / 2 quad steps; then an odd step through the paired loop (x15 = 1), or on to the tails.
#define QUAD_LOOP(STEP)                                                                               \
    "lsr x15, %[steps], #1\n"                                                                         \
    "cbz x15, 11f\n"                                                                                  \
    "10:\n"                                                                                           \
    STEP                                                                                              \
    "add x4, x4, #32\n add x5, x5, #32\n add x6, x6, #32\n add x7, x7, #32\n add x13, x13, #128\n"  \
    "subs x15, x15, #1\n"                                                                             \
    "b.ne 10b\n"                                                                                      \
    "11:\n"                                                                                           \
    "tbz %[steps], #0, 3f\n"                                                                          \
    "mov x15, #1\n"                                                                                   \
    "b 2f\n"

#define PADDL(A, T) "saddlp v" #A ".4s, v" #T ".8h\n"
#define PADDL8(A0, A1, A2, A3, B0, B1, B2, B3)                                                        \
    PADDL(A0, 16) PADDL(A1, 17) PADDL(A2, 18) PADDL(A3, 19) PADDL(B0, 20) PADDL(B1, 21) PADDL(B2, 22) PADDL(B3, 23)
#define PEEL_4PX                                                                                      \
    "cbz %[steps], 8f\n"                                                                              \
    "mov x4, x9\n mov x5, x10\n mov x6, x11\n mov x7, x12\n"                                       \
    "add x9, x9, %[stride]\n add x10, x10, %[stride]\n add x11, x11, %[stride]\n add x12, x12, %[stride]\n" \
    LOADQ_4PX                                                                                         \
    "ldp q28, q29, [x13]\n ldp q30, q31, [x13, #32]\n"                                             \
    PAIRED_HALF(24, 25, 0, 4) PADDL8(0, 1, 2, 3, 4, 5, 6, 7)                                          \
    PAIRED_HALF(26, 27, 8, 12) PADDL8(8, 9, 10, 11, 12, 13, 14, 15)                                   \
    "add x4, x4, #16\n add x5, x5, #16\n add x6, x6, #16\n add x7, x7, #16\n add x13, x13, #64\n"   \
    "subs x15, %[steps], #1\n"                                                                        \
    "b.eq 3f\n"                                                                                       \
    "b 2f\n"                                                                                          \
    "8:\n"
#define PAIRED_STEP                                                                                   \
    PAIRED_HALF(24, 25, 0, 4) PADAL8(0, 1, 2, 3, 4, 5, 6, 7)                                          \
    PAIRED_HALF(26, 27, 8, 12) PADAL8(8, 9, 10, 11, 12, 13, 14, 15)
#define UNPAIRED_STEP                                                                                 \
    UNPAIRED_PIXEL(24, 0, 1, 2, 3) UNPAIRED_PIXEL(25, 4, 5, 6, 7)                                     \
    UNPAIRED_PIXEL(26, 8, 9, 10, 11) UNPAIRED_PIXEL(27, 12, 13, 14, 15)
#define PAIRED_STEP_2PX PAIRED_HALF(24, 25, 0, 4) PADAL8(0, 1, 2, 3, 4, 5, 6, 7)
#define UNPAIRED_STEP_2PX UNPAIRED_PIXEL(24, 0, 1, 2, 3) UNPAIRED_PIXEL(25, 4, 5, 6, 7)

// The sums of pixel i (channels oc...oc+3) are reduced in the assembly (addp) and leave it as acc[4i...4i+3];
// the four pixels requantise together (one int32x4 per pixel, one narrowing for all 16 bytes) and each
// pixel's 4 bytes are stored as one 32-bit lane.
static inline __attribute__((always_inline)) void neon_tile(const arm_gemm *g, const int8_t *const *x, int8_t *const *o,
                                                            int32_t npx, int32_t b0, int32_t b1, const int SAFE) {
    // SAFE: 0 unpaired, 1 paired, 2 quad (then paired for an odd step and the tails)
    int32_t acc[16] __attribute__((aligned(16)));
    const int64_t runs = g->in.runs, steps = g->in.L / 16, L = g->in.L, stride = g->in.run_stride;
    // The fast epilogue's pointers at channel 0, once per tile: the assembly adds the block's channel.
    const void *ep[7] = {o[0], o[1], o[2], o[3], g->rq.bias, g->rq.mult, g->rq.rshift};
    for (int32_t b = b0; b < b1; b++) {
        const int32_t oc = b * 4;
        const int8_t *w = g->weights + (size_t)b * g->block_bytes;
        // direct: four pixels, four real channels, the fast form (see the assembly's end).
        const int direct = npx == ARM_MR && g->out_c - oc >= 4 && g->rq.fast[oc / 16];
        if (npx <= 2) {  // pixels 2 and 3 stay zero and are not stored
            if (SAFE == 2) NEON_TILE_ASM(LOADQ_2PX, PAIRED_STEP_2PX, TAIL8_2PX, TAIL4_2PX, "", QUAD_LOOP(QUAD_STEP_2PX));
            else if (SAFE) NEON_TILE_ASM(LOADQ_2PX, PAIRED_STEP_2PX, TAIL8_2PX, TAIL4_2PX, "", "");
            else NEON_TILE_ASM(LOADQ_2PX, UNPAIRED_STEP_2PX, TAIL8_2PX, TAIL4_2PX, "", "");
        } else if (SAFE == 2) {
            NEON_TILE_ASM(LOADQ_4PX, PAIRED_STEP, TAIL8_4PX, TAIL4_4PX, QUAD_PEEL_4PX, QUAD_LOOP(QUAD_STEP_4PX));
        } else if (SAFE) {
            NEON_TILE_ASM(LOADQ_4PX, PAIRED_STEP, TAIL8_4PX, TAIL4_4PX, PEEL_4PX, "");
        } else {
            NEON_TILE_ASM(LOADQ_4PX, UNPAIRED_STEP, TAIL8_4PX, TAIL4_4PX, "", "");
        }
        if (direct) continue;
        const int32x4_t bias = vld1q_s32(g->rq.bias + oc), m = vld1q_s32(g->rq.mult + oc);
        int32x4_t s0 = vaddq_s32(vld1q_s32(acc), bias), s1 = vaddq_s32(vld1q_s32(acc + 4), bias);
        int32x4_t s2 = vaddq_s32(vld1q_s32(acc + 8), bias), s3 = vaddq_s32(vld1q_s32(acc + 12), bias);
        int8x16_t result;
        if (g->rq.fast[oc / 16]) {
            const int32x4_t r = vld1q_s32(g->rq.rshift + oc);
            result = arm_rq_fast(s0, s1, s2, s3, m, m, m, m, r, r, r, r, &g->out);
        } else {
            const int64x2_t n_lo = vld1q_s64(g->rq.nshift + oc), n_hi = vld1q_s64(g->rq.nshift + oc + 2);
            s0 = arm_rq_slow4(s0, m, n_lo, n_hi, g->out.zp32);
            s1 = arm_rq_slow4(s1, m, n_lo, n_hi, g->out.zp32);
            s2 = arm_rq_slow4(s2, m, n_lo, n_hi, g->out.zp32);
            s3 = arm_rq_slow4(s3, m, n_lo, n_hi, g->out.zp32);
            result = arm_rq_narrow(s0, s1, s2, s3, &g->out);
        }
        const int32_t nch = arm_min(4, g->out_c - oc);
        if (nch == 4 && npx == 4) {
            const uint32x4_t words = vreinterpretq_u32_s8(result);
            const uint32_t w0 = vgetq_lane_u32(words, 0), w1 = vgetq_lane_u32(words, 1);
            const uint32_t w2 = vgetq_lane_u32(words, 2), w3 = vgetq_lane_u32(words, 3);
            memcpy(o[0] + oc, &w0, 4), memcpy(o[1] + oc, &w1, 4), memcpy(o[2] + oc, &w2, 4), memcpy(o[3] + oc, &w3, 4);
        } else {
            int8_t bytes[16];
            vst1q_s8(bytes, result);
            for (int32_t i = 0; i < npx; i++) memcpy(o[i] + oc, bytes + 4 * i, (size_t)nch);
        }
    }
}

static void neon_tile_paired(const arm_gemm *g, const int8_t *const *x, int8_t *const *o, int32_t npx, int32_t b0, int32_t b1) {
    neon_tile(g, x, o, npx, b0, b1, 1);
}

static void neon_tile_quad(const arm_gemm *g, const int8_t *const *x, int8_t *const *o, int32_t npx, int32_t b0, int32_t b1) {
    neon_tile(g, x, o, npx, b0, b1, 2);
}

static void neon_tile_unpaired(const arm_gemm *g, const int8_t *const *x, int8_t *const *o, int32_t npx, int32_t b0, int32_t b1) {
    neon_tile(g, x, o, npx, b0, b1, 0);
}

// SIEVE_ROUTE_WINOGRAD or SIEVE_ROUTE_MAIN. Every neon layout (conv, stem, fully connected) starts with
// the zeroed header, so any packed neon op answers.
int32_t sieve_conv_route__neon(const void *packed) {
    return ((const neon_header *)packed)->wino ? SIEVE_ROUTE_WINOGRAD : SIEVE_ROUTE_MAIN;
}

void sieve_conv_s8__neon(const sieve_conv_params *p, const void *packed, void *scratch) {
    if (sieve_stem_usable__neon(p)) { sieve_stem_s8__neon(p, packed, scratch); return; }
    if (p->out_h <= 0 || p->out_w <= 0) return;
    const neon_header *h = (const neon_header *)packed;
    if (h->wino) { sieve_conv_wino_s8__neon(p, packed, scratch); return; }
    const int32_t ocp = sieve_round_up(p->out_c, 16);
    const char *table = (const char *)packed + NEON_HEADER;
    arm_gemm g;
    g.rq = arm_rq_table(table, ocp);
    g.in = arm_conv_stage(p, scratch);
    g.in.L = h->L;  // the packed run length (neon_conv_runs): k4 or, for a stem, k4 + 4
    g.out = arm_out(p->output_zero_point, p->act_min, p->act_max);
    g.weights = (const int8_t *)(table + arm_rq_table_size(ocp));
    g.block_bytes = (size_t)h->block_bytes;
    g.out_c = p->out_c;
    arm_gemm_run(&g, p, 4, h->quad ? neon_tile_quad : h->safe ? neon_tile_paired : neon_tile_unpaired);
}

SIEVE_TARGET_END
#endif
