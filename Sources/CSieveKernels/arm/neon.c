// The neon path: AArch64 v8.0 Advanced SIMD (smull/smlal2 into int16, sadalp into int32).
// Its own packed layouts (docs/KERNELS.md, "The neon layouts"); depthwise conv here serves the
// neondot and i8mm paths too.
#if defined(__aarch64__)
#include <arm_neon.h>
#include "sieve_target.h"

SIEVE_TARGET_BEGIN("arch=armv8-a+simd")

#include "neon_common.h"

// Packed header (64 bytes) of every neon layout.
typedef struct {
    int32_t safe;  // 1: no int16 lane can sum two (-128) * (-128) products (the paired form is exact)
    int32_t runs, L, block_bytes;
} neon_header;

#define NEON_HEADER 64

// int16 lane i of smull(lo)+smlal2(hi) holds w[i] x[i] + w[i+8] x[i+8]: it overflows only for
// w[i] = w[i+8] = -128 (and x = -128 at both), 2 * 16384 = 32768. Any other pair of products fits.
static int pair_overflows(int8_t a, int8_t b) { return a == -128 && b == -128; }

// ---- Conv -----------------------------------------------------------------------------------------
// Layout: header, requantisation table (ocp = out_c rounded up to 16), then weights in blocks of 4
// output channels. A block holds, for each run r (kernel row; or the one im2col run) of L columns,
// the run cut into chunks consumed in order: L / 16 chunks of 16 columns, then (L % 16 >= 8) one of
// 8, then (L % 8 == 4) one of 4 padded to 8 with zeros; a chunk of c columns is [4 channels][c]
// (a padded chunk [4][8]). Block bytes: runs * round_up(L, 8) * 4.
static size_t conv_block_bytes(int32_t runs, int32_t L) { return (size_t)runs * (size_t)sieve_round_up(L, 8) * 4; }

size_t sieve_conv_packed_size__neon(const sieve_conv_params *p) {
    if (p->groups != 1) return 0;
    int32_t runs, L;
    arm_conv_runs(p, &runs, &L);
    const int32_t ocp = sieve_round_up(p->out_c, 16);
    return NEON_HEADER + arm_rq_table_size(ocp) + (size_t)(ocp / 4) * conv_block_bytes(runs, L);
}

void sieve_conv_pack__neon(const sieve_conv_params *p, void *packed) {
    int32_t runs, L;
    arm_conv_runs(p, &runs, &L);
    const int32_t ocp = sieve_round_up(p->out_c, 16), L8 = sieve_round_up(L, 8), L16 = L & ~15;
    const int32_t k = p->kernel_h * p->kernel_w * p->in_c;
    const size_t block = conv_block_bytes(runs, L);
    neon_header *h = (neon_header *)packed;
    memset(h, 0, NEON_HEADER);
    char *table = (char *)packed + NEON_HEADER;
    arm_rq_pack_table(table, p->bias, p->multipliers, p->shifts, p->out_c, ocp);
    int8_t *w = (int8_t *)(table + arm_rq_table_size(ocp));
    memset(w, 0, (size_t)(ocp / 4) * block);
    int32_t safe = 1;
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
        }
    }
    h->safe = safe;
    h->runs = runs;
    h->L = L;
    h->block_bytes = (int32_t)block;
}

size_t sieve_conv_scratch_size__neon(const sieve_conv_params *p) { return arm_conv_scratch_size(p); }

// Micro-kernel: 4 pixels x 4 channels, sixteen int32x4 partial sums (pixel i, channel j in v(4i+j)),
// reduced with addp after the loop. Inline assembly, so gcc and clang emit the same loop (gcc's
// register allocation spills accumulators here). Per 16 columns of a run: 4 input loads (v24-v27),
// 2 ldp of weights (4 channels x 16 columns: v28-v31) and, per (pixel, channel), the paired form
// smull + smlal2 + sadalp (48 instructions) or the unpaired form smull + smull2 + 2 sadalp (64);
// products go through the temporaries v16-v23. Chunks of 8 (and of 4, zero padded to 8): smull + sadalp.
#define ML(T, X, W) "smull v" #T ".8h, v" #X ".8b, v" #W ".8b\n"
#define ML2(T, X, W) "smull2 v" #T ".8h, v" #X ".16b, v" #W ".16b\n"
#define MLA2(T, X, W) "smlal2 v" #T ".8h, v" #X ".16b, v" #W ".16b\n"
#define PADAL(A, T) "sadalp v" #A ".4s, v" #T ".8h\n"
// Two pixels (inputs X0, X1; accumulators from A0, A1) x 4 channels, paired.
#define PAIRED_HALF(X0, X1, A0, A1)                                                                   \
    ML(16, X0, 28) ML(17, X0, 29) ML(18, X0, 30) ML(19, X0, 31)                                      \
    ML(20, X1, 28) ML(21, X1, 29) ML(22, X1, 30) ML(23, X1, 31)                                      \
    MLA2(16, X0, 28) MLA2(17, X0, 29) MLA2(18, X0, 30) MLA2(19, X0, 31)                              \
    MLA2(20, X1, 28) MLA2(21, X1, 29) MLA2(22, X1, 30) MLA2(23, X1, 31)
#define PADAL8(A0, A1, A2, A3, B0, B1, B2, B3)                                                        \
    PADAL(A0, 16) PADAL(A1, 17) PADAL(A2, 18) PADAL(A3, 19) PADAL(B0, 20) PADAL(B1, 21) PADAL(B2, 22) PADAL(B3, 23)
// One pixel x 4 channels, unpaired.
#define UNPAIRED_PIXEL(X, A0, A1, A2, A3)                                                             \
    ML(16, X, 28) ML2(17, X, 28) ML(18, X, 29) ML2(19, X, 29)                                        \
    ML(20, X, 30) ML2(21, X, 30) ML(22, X, 31) ML2(23, X, 31)                                        \
    PADAL(A0, 16) PADAL(A0, 17) PADAL(A1, 18) PADAL(A1, 19) PADAL(A2, 20) PADAL(A2, 21) PADAL(A3, 22) PADAL(A3, 23)
// Chunks of 8: two pixels x 4 channels, smull + sadalp.
#define HALF8(X0, X1, A0, A1)                                                                         \
    ML(16, X0, 28) ML(17, X0, 29) ML(18, X0, 30) ML(19, X0, 31)                                      \
    ML(20, X1, 28) ML(21, X1, 29) ML(22, X1, 30) ML(23, X1, 31)

#define NEON_TILE_ASM(STEP)                                                                           \
    __asm__ volatile(                                                                                 \
        "movi v0.4s, #0\n mov v1.16b, v0.16b\n mov v2.16b, v0.16b\n mov v3.16b, v0.16b\n"           \
        "mov v4.16b, v0.16b\n mov v5.16b, v0.16b\n mov v6.16b, v0.16b\n mov v7.16b, v0.16b\n"       \
        "mov v8.16b, v0.16b\n mov v9.16b, v0.16b\n mov v10.16b, v0.16b\n mov v11.16b, v0.16b\n"     \
        "mov v12.16b, v0.16b\n mov v13.16b, v0.16b\n mov v14.16b, v0.16b\n mov v15.16b, v0.16b\n"   \
        "mov x9, %[x0]\n mov x10, %[x1]\n mov x11, %[x2]\n mov x12, %[x3]\n"                         \
        "mov x13, %[w]\n mov x14, %[runs]\n"                                                          \
        "1:\n"                                                                                        \
        "mov x4, x9\n mov x5, x10\n mov x6, x11\n mov x7, x12\n"                                     \
        "add x9, x9, %[stride]\n add x10, x10, %[stride]\n add x11, x11, %[stride]\n add x12, x12, %[stride]\n" \
        "cbz %[steps], 3f\n"                                                                          \
        "mov x15, %[steps]\n"                                                                         \
        "2:\n"                                                                                        \
        "ldr q24, [x4], #16\n ldr q25, [x5], #16\n ldr q26, [x6], #16\n ldr q27, [x7], #16\n"       \
        "ldp q28, q29, [x13], #32\n ldp q30, q31, [x13], #32\n"                                      \
        STEP                                                                                          \
        "subs x15, x15, #1\n"                                                                         \
        "b.ne 2b\n"                                                                                   \
        "3:\n"                                                                                        \
        "tbz %[L], #3, 4f\n"                                                                          \
        "ldr d24, [x4], #8\n ldr d25, [x5], #8\n ldr d26, [x6], #8\n ldr d27, [x7], #8\n"           \
        "ldp d28, d29, [x13], #16\n ldp d30, d31, [x13], #16\n"                                      \
        HALF8(24, 25, 0, 4) PADAL8(0, 1, 2, 3, 4, 5, 6, 7)                                            \
        HALF8(26, 27, 8, 12) PADAL8(8, 9, 10, 11, 12, 13, 14, 15)                                     \
        "4:\n"                                                                                        \
        "tbz %[L], #2, 5f\n"                                                                          \
        "ldr s24, [x4]\n ldr s25, [x5]\n ldr s26, [x6]\n ldr s27, [x7]\n"                           \
        "ldp d28, d29, [x13], #16\n ldp d30, d31, [x13], #16\n"                                      \
        HALF8(24, 25, 0, 4) PADAL8(0, 1, 2, 3, 4, 5, 6, 7)                                            \
        HALF8(26, 27, 8, 12) PADAL8(8, 9, 10, 11, 12, 13, 14, 15)                                     \
        "5:\n"                                                                                        \
        "subs x14, x14, #1\n"                                                                         \
        "b.ne 1b\n"                                                                                   \
        "stp q0, q1, [%[acc]]\n stp q2, q3, [%[acc], #32]\n stp q4, q5, [%[acc], #64]\n stp q6, q7, [%[acc], #96]\n" \
        "stp q8, q9, [%[acc], #128]\n stp q10, q11, [%[acc], #160]\n stp q12, q13, [%[acc], #192]\n stp q14, q15, [%[acc], #224]\n" \
        :                                                                                             \
        : [x0] "r"(x[0]), [x1] "r"(x[1]), [x2] "r"(x[2]), [x3] "r"(x[3]), [w] "r"(w), [runs] "r"(runs), \
          [steps] "r"(steps), [L] "r"(L), [stride] "r"(stride), [acc] "r"(acc)                        \
        : "cc", "memory", "x4", "x5", "x6", "x7", "x9", "x10", "x11", "x12", "x13", "x14", "x15", "v0", "v1", "v2", "v3", \
          "v4", "v5", "v6", "v7", "v8", "v9", "v10", "v11", "v12", "v13", "v14", "v15", "v16", "v17", "v18", "v19", "v20", \
          "v21", "v22", "v23", "v24", "v25", "v26", "v27", "v28", "v29", "v30", "v31")

#define PAIRED_STEP                                                                                   \
    PAIRED_HALF(24, 25, 0, 4) PADAL8(0, 1, 2, 3, 4, 5, 6, 7)                                          \
    PAIRED_HALF(26, 27, 8, 12) PADAL8(8, 9, 10, 11, 12, 13, 14, 15)
#define UNPAIRED_STEP                                                                                 \
    UNPAIRED_PIXEL(24, 0, 1, 2, 3) UNPAIRED_PIXEL(25, 4, 5, 6, 7)                                     \
    UNPAIRED_PIXEL(26, 8, 9, 10, 11) UNPAIRED_PIXEL(27, 12, 13, 14, 15)

static inline int32x4_t neon_reduce4(int32x4_t c0, int32x4_t c1, int32x4_t c2, int32x4_t c3) {
    return vpaddq_s32(vpaddq_s32(c0, c1), vpaddq_s32(c2, c3));
}

static inline __attribute__((always_inline)) void neon_tile(const arm_gemm *g, const int8_t *const *x, int8_t *const *o,
                                                            int32_t npx, int32_t oc, const int SAFE) {
    const int8_t *w = g->weights + (size_t)(oc / 4) * g->block_bytes;
    int32_t acc[64] __attribute__((aligned(16)));
    const int64_t runs = g->in.runs, steps = g->in.L / 16, L = g->in.L, stride = g->in.run_stride;
    if (SAFE) NEON_TILE_ASM(PAIRED_STEP);
    else NEON_TILE_ASM(UNPAIRED_STEP);
    const int32x4_t bias = vld1q_s32(g->rq.bias + oc), m = vld1q_s32(g->rq.mult + oc);
    int32x4_t s0 = vaddq_s32(neon_reduce4(vld1q_s32(acc), vld1q_s32(acc + 4), vld1q_s32(acc + 8), vld1q_s32(acc + 12)), bias);
    int32x4_t s1 = vaddq_s32(neon_reduce4(vld1q_s32(acc + 16), vld1q_s32(acc + 20), vld1q_s32(acc + 24), vld1q_s32(acc + 28)), bias);
    int32x4_t s2 = vaddq_s32(neon_reduce4(vld1q_s32(acc + 32), vld1q_s32(acc + 36), vld1q_s32(acc + 40), vld1q_s32(acc + 44)), bias);
    int32x4_t s3 = vaddq_s32(neon_reduce4(vld1q_s32(acc + 48), vld1q_s32(acc + 52), vld1q_s32(acc + 56), vld1q_s32(acc + 60)), bias);
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
    int8_t bytes[16];
    vst1q_s8(bytes, result);
    for (int32_t i = 0; i < npx; i++) {
        if (nch == 4) memcpy(o[i] + oc, bytes + 4 * i, 4);
        else memcpy(o[i] + oc, bytes + 4 * i, (size_t)nch);
    }
}

static void neon_tile_paired(const arm_gemm *g, const int8_t *const *x, int8_t *const *o, int32_t npx, int32_t oc) {
    neon_tile(g, x, o, npx, oc, 1);
}

static void neon_tile_unpaired(const arm_gemm *g, const int8_t *const *x, int8_t *const *o, int32_t npx, int32_t oc) {
    neon_tile(g, x, o, npx, oc, 0);
}

void sieve_conv_s8__neon(const sieve_conv_params *p, const void *packed, void *scratch) {
    if (p->out_h <= 0 || p->out_w <= 0) return;
    const neon_header *h = (const neon_header *)packed;
    const int32_t ocp = sieve_round_up(p->out_c, 16);
    const char *table = (const char *)packed + NEON_HEADER;
    arm_gemm g;
    g.rq = arm_rq_table(table, ocp);
    g.in = arm_conv_stage(p, scratch);
    g.out = arm_out(p->output_zero_point, p->act_min, p->act_max);
    g.weights = (const int8_t *)(table + arm_rq_table_size(ocp));
    g.block_bytes = (size_t)h->block_bytes;
    g.out_c = p->out_c;
    arm_gemm_run(&g, p, 4, h->safe ? neon_tile_paired : neon_tile_unpaired);
}

// ---- Depthwise conv (every AArch64 path) -----------------------------------------------------------
// Layout: header, requantisation table over C16 = out_c rounded up to 16, weights [taps][C16]
// (taps = kernel_h * kernel_w in (ky, kx) order, zero past out_c).
// Scratch: the tap offsets (int32[taps], 64-byte padded), then the band's input expanded to out_c
// channels ([span_h][span_w][C16]: channel oc holds input channel oc / multiplier, padding holds the
// zero point); a band needing no padding with multiplier 1 and out_c % 16 == 0 is read in place.
// Micro-kernel: 4 pixels of one output row x 16 channels, int32 accumulators; taps in pairs: per
// pair and pixel smull + smlal (low 8 channels), smull2 + smlal2 (high), four saddw into int32.
// A pair of -128 weights in one channel (see pair_overflows) selects the unpaired form at pack time.
static int32_t dw_taps(const sieve_conv_params *p) { return p->kernel_h * p->kernel_w; }

size_t sieve_dwconv_packed_size__neon(const sieve_conv_params *p) {
    if (p->in_c <= 0 || p->out_c % p->in_c != 0) return 0;
    const int32_t c16 = sieve_round_up(p->out_c, 16);
    return NEON_HEADER + arm_rq_table_size(c16) + arm_round_up_size((size_t)dw_taps(p) * c16, 64);
}

void sieve_dwconv_pack__neon(const sieve_conv_params *p, void *packed) {
    const int32_t c16 = sieve_round_up(p->out_c, 16), taps = dw_taps(p);
    neon_header *h = (neon_header *)packed;
    memset(h, 0, NEON_HEADER);
    char *table = (char *)packed + NEON_HEADER;
    arm_rq_pack_table(table, p->bias, p->multipliers, p->shifts, p->out_c, c16);
    int8_t *w = (int8_t *)(table + arm_rq_table_size(c16));
    memset(w, 0, arm_round_up_size((size_t)taps * c16, 64));
    int32_t safe = 1;
    for (int32_t t = 0; t < taps; t++) {
        for (int32_t oc = 0; oc < p->out_c; oc++) {
            w[(size_t)t * c16 + oc] = p->weights[(size_t)t * p->out_c + oc];
            if (t % 2 == 1 && pair_overflows(p->weights[(size_t)(t - 1) * p->out_c + oc], p->weights[(size_t)t * p->out_c + oc])) safe = 0;
        }
    }
    h->safe = safe;
}

static size_t dw_offsets_size(const sieve_conv_params *p) { return arm_round_up_size((size_t)dw_taps(p) * 4, 64); }

static int dw_in_place(const sieve_conv_params *p) {
    return p->out_c == p->in_c && p->out_c % 16 == 0 && p->pad_top <= 0 && p->pad_left <= 0 &&
           sieve_conv_span_h(p) - p->pad_top <= p->in_h && sieve_conv_span_w(p) - p->pad_left <= p->in_w;
}

size_t sieve_dwconv_scratch_size__neon(const sieve_conv_params *p) {
    const size_t c16 = (size_t)sieve_round_up(p->out_c, 16);
    return dw_offsets_size(p) + arm_round_up_size((size_t)sieve_conv_span_h(p) * (size_t)sieve_conv_span_w(p) * c16, 64);
}

// Expands the band's input into dst ([span_h][span_w][C16]).
static void dw_stage(const sieve_conv_params *p, int8_t *dst) {
    const int32_t span_h = sieve_conv_span_h(p), span_w = sieve_conv_span_w(p), c16 = sieve_round_up(p->out_c, 16);
    const int32_t mult = p->out_c / p->in_c;
    const int8_t zp = (int8_t)p->input_zero_point;
    for (int32_t y = 0; y < span_h; y++) {
        const int32_t iy = y - p->pad_top;
        int8_t *row = dst + (size_t)y * span_w * c16;
        for (int32_t x = 0; x < span_w; x++) {
            const int32_t ix = x - p->pad_left;
            int8_t *out = row + (size_t)x * c16;
            if (iy < 0 || iy >= p->in_h || ix < 0 || ix >= p->in_w) {
                memset(out, zp, (size_t)p->out_c);
            } else {
                const int8_t *in = p->input + ((size_t)iy * p->in_w + ix) * p->in_c;
                if (mult == 1) {
                    memcpy(out, in, (size_t)p->in_c);
                } else if (mult == 2) {
                    int32_t ic = 0;
                    for (; ic + 16 <= p->in_c; ic += 16) {
                        const int8x16_t v = vld1q_s8(in + ic);
                        vst1q_s8(out + 2 * ic, vzip1q_s8(v, v));
                        vst1q_s8(out + 2 * ic + 16, vzip2q_s8(v, v));
                    }
                    for (; ic < p->in_c; ic++) out[2 * ic] = out[2 * ic + 1] = in[ic];
                } else {
                    for (int32_t oc = 0; oc < p->out_c; oc++) out[oc] = in[oc / mult];
                }
            }
            if (c16 > p->out_c) memset(out + p->out_c, 0, (size_t)(c16 - p->out_c));
        }
    }
}

#define DW_PAIR(A0, A1, A2, A3, XP)                                                                    \
    do {                                                                                              \
        const int8x16_t xa = vld1q_s8((XP) + oa), xb = vld1q_s8((XP) + ob);                             \
        const int16x8_t lo = vmlal_s8(vmull_s8(vget_low_s8(xa), vget_low_s8(wa)), vget_low_s8(xb), vget_low_s8(wb)); \
        const int16x8_t hi = vmlal_high_s8(vmull_high_s8(xa, wa), xb, wb);                              \
        A0 = vaddw_s16(A0, vget_low_s16(lo)); A1 = vaddw_high_s16(A1, lo);                              \
        A2 = vaddw_s16(A2, vget_low_s16(hi)); A3 = vaddw_high_s16(A3, hi);                              \
    } while (0)

#define DW_ONE(A0, A1, A2, A3, XP)                                                                     \
    do {                                                                                              \
        const int8x16_t xa = vld1q_s8((XP) + oa);                                                      \
        const int16x8_t lo = vmull_s8(vget_low_s8(xa), vget_low_s8(wa)), hi = vmull_high_s8(xa, wa);   \
        A0 = vaddw_s16(A0, vget_low_s16(lo)); A1 = vaddw_high_s16(A1, lo);                              \
        A2 = vaddw_s16(A2, vget_low_s16(hi)); A3 = vaddw_high_s16(A3, hi);                              \
    } while (0)

static inline __attribute__((always_inline)) void dw_rows(const sieve_conv_params *p, const arm_rq_view *rq, const int8_t *w,
                                                          const int8_t *base, ptrdiff_t row_stride, ptrdiff_t px_stride,
                                                          const int32_t *off, const int PAIRED) {
    const int32_t c16 = sieve_round_up(p->out_c, 16), taps = dw_taps(p);
    const arm_out_stage out = arm_out(p->output_zero_point, p->act_min, p->act_max);
    const ptrdiff_t ox_step = px_stride * p->stride_w;
    for (int32_t oy = 0; oy < p->out_h; oy++) {
        const int8_t *xrow = base + (ptrdiff_t)oy * p->stride_h * row_stride;
        int8_t *orow = p->output + (size_t)oy * p->out_w * p->out_c;
        for (int32_t cb = 0; cb < p->out_c; cb += 16) {
            const int32x4_t b0 = vld1q_s32(rq->bias + cb), b1 = vld1q_s32(rq->bias + cb + 4);
            const int32x4_t b2 = vld1q_s32(rq->bias + cb + 8), b3 = vld1q_s32(rq->bias + cb + 12);
            const int32_t nch = arm_min(16, p->out_c - cb);
            for (int32_t ox = 0; ox < p->out_w; ox += 4) {
                const int32_t npx = arm_min(4, p->out_w - ox);
                const int8_t *x0 = xrow + ox * ox_step + cb;
                const int8_t *x1 = xrow + (ox + arm_min(1, npx - 1)) * ox_step + cb;
                const int8_t *x2 = xrow + (ox + arm_min(2, npx - 1)) * ox_step + cb;
                const int8_t *x3 = xrow + (ox + arm_min(3, npx - 1)) * ox_step + cb;
                int32x4_t a00 = b0, a01 = b1, a02 = b2, a03 = b3, a10 = b0, a11 = b1, a12 = b2, a13 = b3;
                int32x4_t a20 = b0, a21 = b1, a22 = b2, a23 = b3, a30 = b0, a31 = b1, a32 = b2, a33 = b3;
                const int8_t *wt = w + cb;
                int32_t t = 0;
                if (PAIRED) {
                    for (; t + 2 <= taps; t += 2) {
                        const int8x16_t wa = vld1q_s8(wt), wb = vld1q_s8(wt + c16);
                        wt += 2 * c16;
                        const ptrdiff_t oa = off[t], ob = off[t + 1];
                        DW_PAIR(a00, a01, a02, a03, x0);
                        DW_PAIR(a10, a11, a12, a13, x1);
                        DW_PAIR(a20, a21, a22, a23, x2);
                        DW_PAIR(a30, a31, a32, a33, x3);
                    }
                }
                for (; t < taps; t++) {
                    const int8x16_t wa = vld1q_s8(wt);
                    wt += c16;
                    const ptrdiff_t oa = off[t];
                    DW_ONE(a00, a01, a02, a03, x0);
                    DW_ONE(a10, a11, a12, a13, x1);
                    DW_ONE(a20, a21, a22, a23, x2);
                    DW_ONE(a30, a31, a32, a33, x3);
                }
                int8_t *o = orow + (size_t)ox * p->out_c + cb;
                arm_store(o, arm_rq16(rq, cb, a00, a01, a02, a03, &out), nch);
                if (npx > 1) arm_store(o + p->out_c, arm_rq16(rq, cb, a10, a11, a12, a13, &out), nch);
                if (npx > 2) arm_store(o + 2 * p->out_c, arm_rq16(rq, cb, a20, a21, a22, a23, &out), nch);
                if (npx > 3) arm_store(o + 3 * p->out_c, arm_rq16(rq, cb, a30, a31, a32, a33, &out), nch);
            }
        }
    }
}

void sieve_dwconv_s8__neon(const sieve_conv_params *p, const void *packed, void *scratch) {
    if (p->out_h <= 0 || p->out_w <= 0) return;
    const neon_header *h = (const neon_header *)packed;
    const int32_t c16 = sieve_round_up(p->out_c, 16);
    const char *table = (const char *)packed + NEON_HEADER;
    const arm_rq_view rq = arm_rq_table(table, c16);
    const int8_t *w = (const int8_t *)(table + arm_rq_table_size(c16));
    int32_t *off = (int32_t *)scratch;
    const int8_t *base;
    ptrdiff_t row_stride, px_stride;
    if (dw_in_place(p)) {
        px_stride = p->in_c;
        row_stride = (ptrdiff_t)p->in_w * p->in_c;
        base = p->input + (ptrdiff_t)(-p->pad_top) * row_stride + (ptrdiff_t)(-p->pad_left) * px_stride;
    } else {
        int8_t *staged = (int8_t *)scratch + dw_offsets_size(p);
        dw_stage(p, staged);
        px_stride = c16;
        row_stride = (ptrdiff_t)sieve_conv_span_w(p) * c16;
        base = staged;
    }
    for (int32_t ky = 0, t = 0; ky < p->kernel_h; ky++) {
        for (int32_t kx = 0; kx < p->kernel_w; kx++, t++) off[t] = (int32_t)(ky * row_stride + kx * px_stride);
    }
    if (h->safe) dw_rows(p, &rq, w, base, row_stride, px_stride, off, 1);
    else dw_rows(p, &rq, w, base, row_stride, px_stride, off, 0);
}

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

// 16 channels: accumulators v0-v15, input v24, weights 4 channels at a time in v28-v31.
#define FC_ROUND_PAIRED(A0, A1, A2, A3, T0, T1, T2, T3)                                              \
    "ldp q28, q29, [x10], #32\n ldp q30, q31, [x10], #32\n"                                          \
    ML(T0, 24, 28) ML(T1, 24, 29) ML(T2, 24, 30) ML(T3, 24, 31)                                      \
    MLA2(T0, 24, 28) MLA2(T1, 24, 29) MLA2(T2, 24, 30) MLA2(T3, 24, 31)                              \
    PADAL(A0, T0) PADAL(A1, T1) PADAL(A2, T2) PADAL(A3, T3)
#define FC_ROUND_UNPAIRED(A0, A1, A2, A3)                                                            \
    "ldp q28, q29, [x10], #32\n ldp q30, q31, [x10], #32\n"                                          \
    UNPAIRED_PIXEL(24, A0, A1, A2, A3)
#define FC_PAIRED_STEP                                                                                \
    FC_ROUND_PAIRED(0, 1, 2, 3, 16, 17, 18, 19) FC_ROUND_PAIRED(4, 5, 6, 7, 20, 21, 22, 23)           \
    FC_ROUND_PAIRED(8, 9, 10, 11, 16, 17, 18, 19) FC_ROUND_PAIRED(12, 13, 14, 15, 20, 21, 22, 23)
#define FC_UNPAIRED_STEP                                                                              \
    FC_ROUND_UNPAIRED(0, 1, 2, 3) FC_ROUND_UNPAIRED(4, 5, 6, 7)                                       \
    FC_ROUND_UNPAIRED(8, 9, 10, 11) FC_ROUND_UNPAIRED(12, 13, 14, 15)

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

// ---- Peak MAC rate ---------------------------------------------------------------------------------
// 32 smlal (8 int8 x int8 products into int16 lanes) per iteration into 30 accumulators.
uint64_t sieve_peak_macs__neon(uint64_t iterations) {
    if (iterations == 0) return 0;
    uint64_t n = iterations;
    __asm__ volatile(
        "movi v30.16b, #1\n movi v31.16b, #2\n"
        "1:\n"
        "smlal v0.8h, v30.8b, v31.8b\n smlal v1.8h, v30.8b, v31.8b\n smlal v2.8h, v30.8b, v31.8b\n smlal v3.8h, v30.8b, v31.8b\n"
        "smlal v4.8h, v30.8b, v31.8b\n smlal v5.8h, v30.8b, v31.8b\n smlal v6.8h, v30.8b, v31.8b\n smlal v7.8h, v30.8b, v31.8b\n"
        "smlal v8.8h, v30.8b, v31.8b\n smlal v9.8h, v30.8b, v31.8b\n smlal v10.8h, v30.8b, v31.8b\n smlal v11.8h, v30.8b, v31.8b\n"
        "smlal v12.8h, v30.8b, v31.8b\n smlal v13.8h, v30.8b, v31.8b\n smlal v14.8h, v30.8b, v31.8b\n smlal v15.8h, v30.8b, v31.8b\n"
        "smlal v16.8h, v30.8b, v31.8b\n smlal v17.8h, v30.8b, v31.8b\n smlal v18.8h, v30.8b, v31.8b\n smlal v19.8h, v30.8b, v31.8b\n"
        "smlal v20.8h, v30.8b, v31.8b\n smlal v21.8h, v30.8b, v31.8b\n smlal v22.8h, v30.8b, v31.8b\n smlal v23.8h, v30.8b, v31.8b\n"
        "smlal v24.8h, v30.8b, v31.8b\n smlal v25.8h, v30.8b, v31.8b\n smlal v26.8h, v30.8b, v31.8b\n smlal v27.8h, v30.8b, v31.8b\n"
        "smlal v28.8h, v30.8b, v31.8b\n smlal v29.8h, v30.8b, v31.8b\n smlal v0.8h, v30.8b, v31.8b\n smlal v1.8h, v30.8b, v31.8b\n"
        "subs %0, %0, #1\n b.ne 1b\n"
        : "+r"(n)
        :
        : "cc", "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9", "v10", "v11", "v12", "v13", "v14", "v15", "v16",
          "v17", "v18", "v19", "v20", "v21", "v22", "v23", "v24", "v25", "v26", "v27", "v28", "v29", "v30", "v31");
    return iterations * 32 * 8;
}

SIEVE_TARGET_END
#endif
