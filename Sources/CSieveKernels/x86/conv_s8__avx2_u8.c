// Convolution (groups = 1) on AVX2, the u8 x s8 route: vpmaddubsw of u8 inputs (x + 128) by s8
// weights in the K4 layout, then vpmaddwd by ones into int32 (docs/KERNELS.md, "The x86 paths").
//
// vpmaddubsw adds each pair of products in SATURATING int16, so the route is exact only when for
// every pair (w0, w1) it forms, 255 * (max(w0, 0) + max(w1, 0)) <= 32767 and 255 * (min(w0, 0) +
// min(w1, 0)) >= -32768: the pack checks every pair (sieve_conv_u8_fits__avx2) and conv_s8__avx2.c
// runs this route only for ops that pass (weights in [-63, 63], `sieve quantize --weight-bits 7`,
// always do). Per 4 k, 8 channels and a pixel: one vpmaddubsw, one vpmaddwd, one vpaddd (the int16
// route needs two of each), and the band is staged once as u8, not widened to int16.
//
// A tile is up to 6 output pixels x 16 channels, as the int16 route's: 12 ymm accumulators, 2 of
// weights (a K4 block of 16 channels x 4 k is two ymm), the broadcast of a pixel's 4 bytes and a
// product; `ones` is a memory operand, so 16 registers suffice.
#if defined(__x86_64__)
#include <string.h>
#include "sieve_isa.h"
#include "sieve_pack.h"
#include "sieve_target.h"

// Before any target region: gcc binds each intrinsic to the target in force where it is declared.
#include <immintrin.h>

SIEVE_TARGET_BEGIN("avx2")
#include "requantize_avx2.h"
#include "conv_band_avx2.h"


int sieve_conv_u8_fits__avx2(const sieve_conv_params *p) {
    // The K4 rows as sieve_pack_conv_k4 lays them out: segments of `len` weights, each padded with
    // zeros to a multiple of 4; vpmaddubsw pairs columns (2i, 2i + 1) of a padded segment.
    const int32_t segments = sieve_conv_is_direct(p) ? 1 : p->kernel_h;
    const int32_t k = p->kernel_h * p->kernel_w * p->in_c, len = k / segments;
    for (int32_t oc = 0; oc < p->out_c; oc++) {
        for (int32_t s = 0; s < segments; s++) {
            const int8_t *w = p->weights + (size_t)oc * k + (size_t)s * len;
            for (int32_t i = 0; i < len; i += 2) {
                const int32_t w0 = w[i], w1 = i + 1 < len ? w[i + 1] : 0;
                const int32_t pos = (w0 > 0 ? w0 : 0) + (w1 > 0 ? w1 : 0), neg = (w0 < 0 ? w0 : 0) + (w1 < 0 ? w1 : 0);
                if (255 * pos > 32767 || 255 * neg < -32768) return 0;
            }
        }
    }
    return 1;
}

static inline int32_t conv_k(const sieve_conv_params *p) { return sieve_conv_k4(p); }

// The K4 layout (int8 weights, bias less 128 x row sum), then a sieve_rq_block_avx2 per 8 output
// channels and a sieve_rq32_block_avx2 per 16 (as the int16 route's).
static size_t weights_end(const sieve_conv_params *p) { return sieve_pack_k4_size(p->out_c, conv_k(p)); }

size_t sieve_conv_u8_packed_size__avx2(const sieve_conv_params *p) {
    const size_t ocp = (size_t)sieve_round_up(p->out_c, 16);
    return weights_end(p) + ocp / 8 * sizeof(sieve_rq_block_avx2) + ocp / 16 * sizeof(sieve_rq32_block_avx2);
}

static const sieve_rq_block_avx2 *rq_blocks(const void *packed, const sieve_conv_params *p) {
    return (const sieve_rq_block_avx2 *)((const uint8_t *)packed + weights_end(p));
}

static const sieve_rq32_block_avx2 *rq32_blocks(const void *packed, const sieve_conv_params *p) {
    return (const sieve_rq32_block_avx2 *)(rq_blocks(packed, p) + sieve_round_up(p->out_c, 16) / 8);
}

void sieve_conv_u8_pack__avx2(const sieve_conv_params *p, void *packed) {
    sieve_pack_conv_k4(p, 128, 1, packed);
    const sieve_k4_view v = sieve_k4(packed, p->out_c, conv_k(p));
    sieve_rq_block_avx2 *blocks = (sieve_rq_block_avx2 *)rq_blocks(packed, p);
    sieve_rq32_block_avx2 *blocks32 = (sieve_rq32_block_avx2 *)rq32_blocks(packed, p);
    for (int32_t b = 0; b < v.ocp / 8; b++) sieve_rq_block_avx2_fill(blocks + b, v.multipliers + 8 * b, v.shifts + 8 * b);
    for (int32_t b = 0; b < v.ocp / 16; b++) sieve_rq32_avx2_fill(blocks32 + b, v.shifts + 16 * b, p->out_c - 16 * b);
}

size_t sieve_conv_u8_scratch_size__avx2(const sieve_conv_params *p) { return sieve_conv_stage_size(p); }

static const int16_t ones16[16] __attribute__((aligned(32))) = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};

// One tile: PIXELS is the pixels' step. Registers: the 12 accumulators ymm0-11 (pixel j: ymm 2j
// channels 0-7, ymm 2j+1 channels 8-15, starting from the bias, stored to acc at the end), ymm12-13
// weights, ymm14 the broadcast of 4 input bytes, ymm15 a product; the pixels' pointers p0-p5 to the
// end of their first run, the weights w, runs, len = -(run length in bytes), stride (bytes from one
// run to the next). AT&T order: vpmaddubsw SIGNED, UNSIGNED, DEST.
#define PIX(P, A, B)                                       \
    "vpbroadcastd (%[" #P "],%[i]), %%ymm14\n\t"           \
    "vpmaddubsw %%ymm12, %%ymm14, %%ymm15\n\t"             \
    "vpmaddwd %[ones], %%ymm15, %%ymm15\n\t"               \
    "vpaddd %%ymm15, %%ymm" #A ", %%ymm" #A "\n\t"         \
    "vpmaddubsw %%ymm13, %%ymm14, %%ymm14\n\t"             \
    "vpmaddwd %[ones], %%ymm14, %%ymm14\n\t"               \
    "vpaddd %%ymm14, %%ymm" #B ", %%ymm" #B "\n\t"
#define PIXELS1 PIX(p0, 0, 1)
#define PIXELS2 PIXELS1 PIX(p1, 2, 3)
#define PIXELS3 PIXELS2 PIX(p2, 4, 5)
#define PIXELS4 PIXELS3 PIX(p3, 6, 7)
#define PIXELS5 PIXELS4 PIX(p4, 8, 9)
#define PIXELS6 PIXELS5 PIX(p5, 10, 11)
#define LOAD2(A, B) "vmovdqa %%ymm12, %%ymm" #A "\n\t" "vmovdqa %%ymm13, %%ymm" #B "\n\t"
#define STORE2(A, B) "vmovdqu %%ymm" #A ", 64*" #A "/2(%[acc])\n\t" "vmovdqu %%ymm" #B ", 32+64*" #A "/2(%[acc])\n\t"

#define TILE_ASM(PIXELS)                                                                                                     \
    __asm__ volatile("vmovdqu (%[bias]), %%ymm12\n\t"                                                                        \
                     "vmovdqu 32(%[bias]), %%ymm13\n\t"                                                                      \
                     LOAD2(0, 1) LOAD2(2, 3) LOAD2(4, 5) LOAD2(6, 7) LOAD2(8, 9) LOAD2(10, 11)                              \
                     "1:\n\t"                                                                                                \
                     "mov %[len], %[i]\n\t"                                                                                  \
                     "2:\n\t"                                                                                                \
                     "vmovdqa (%[w]), %%ymm12\n\t"                                                                           \
                     "vmovdqa 32(%[w]), %%ymm13\n\t" PIXELS "add $64, %[w]\n\t"                                              \
                     "add $4, %[i]\n\t"                                                                                      \
                     "jnz 2b\n\t"                                                                                            \
                     SIEVE_TILE_NEXT_RUN_ASM                                                                                 \
                     STORE2(0, 1) STORE2(2, 3) STORE2(4, 5) STORE2(6, 7) STORE2(8, 9) STORE2(10, 11)                        \
                     : SIEVE_TILE_OUTPUTS                                                                                    \
                     : [len] "r"(len), [stride] "r"(stride), [bias] "r"(bias), [acc] "r"(acc),                               \
                       [ones] "m"(*(const __m256i *)ones16)                                                                  \
                     : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11",      \
                       "xmm12", "xmm13", "xmm14", "xmm15", "cc", "memory")

// The tile of a block's first 8 channels only (a last block of 1-8, as out_c = 24 or 40 leave):
// half the multiplies of the full tile, whose upper 8 channels would be padding. The K4 layout is
// the same (a 4-column group is 16 channels x 4 bytes; the first 32 bytes are channels 0-7), so w
// steps by 64; the accumulators are ymm 2j, each stored to both halves of acc (the upper half is
// not stored to the output).
#define PIXH(P, A)                                         \
    "vpbroadcastd (%[" #P "],%[i]), %%ymm14\n\t"           \
    "vpmaddubsw %%ymm12, %%ymm14, %%ymm15\n\t"             \
    "vpmaddwd %[ones], %%ymm15, %%ymm15\n\t"               \
    "vpaddd %%ymm15, %%ymm" #A ", %%ymm" #A "\n\t"
#define HALF1 PIXH(p0, 0)
#define HALF2 HALF1 PIXH(p1, 2)
#define HALF3 HALF2 PIXH(p2, 4)
#define HALF4 HALF3 PIXH(p3, 6)
#define HALF5 HALF4 PIXH(p4, 8)
#define HALF6 HALF5 PIXH(p5, 10)
#define LOAD1(A) "vmovdqa %%ymm12, %%ymm" #A "\n\t"
#define STORE1(A) "vmovdqu %%ymm" #A ", 64*" #A "/2(%[acc])\n\t" "vmovdqu %%ymm" #A ", 32+64*" #A "/2(%[acc])\n\t"

#define HALF_TILE_ASM(PIXELS)                                                                                                \
    __asm__ volatile("vmovdqu (%[bias]), %%ymm12\n\t"                                                                        \
                     LOAD1(0) LOAD1(2) LOAD1(4) LOAD1(6) LOAD1(8) LOAD1(10)                                                 \
                     "1:\n\t"                                                                                                \
                     "mov %[len], %[i]\n\t"                                                                                  \
                     "2:\n\t"                                                                                                \
                     "vmovdqa (%[w]), %%ymm12\n\t" PIXELS "add $64, %[w]\n\t"                                                \
                     "add $4, %[i]\n\t"                                                                                      \
                     "jnz 2b\n\t"                                                                                            \
                     SIEVE_TILE_NEXT_RUN_ASM                                                                                 \
                     STORE1(0) STORE1(2) STORE1(4) STORE1(6) STORE1(8) STORE1(10)                                           \
                     : SIEVE_TILE_OUTPUTS                                                                                    \
                     : [len] "r"(len), [stride] "r"(stride), [bias] "r"(bias), [acc] "r"(acc),                               \
                       [ones] "m"(*(const __m256i *)ones16)                                                                  \
                     : "xmm0", "xmm2", "xmm4", "xmm6", "xmm8", "xmm10", "xmm12", "xmm14", "xmm15", "cc", "memory")

static void conv_half_tile(const uint8_t *const x[CONV_TILE_PIXELS], const void *w, const int32_t *bias, intptr_t runs,
                           intptr_t run_len, intptr_t run_stride, __m256i acc[2 * CONV_TILE_PIXELS], int pixels) {
    const uint8_t *p0 = x[0], *p1 = x[1], *p2 = x[2], *p3 = x[3], *p4 = x[4], *p5 = x[5];
    const intptr_t len = -run_len, stride = run_stride;
    intptr_t i;
    SIEVE_TILE_SWITCH(HALF_TILE_ASM, HALF);
    (void)i;
}

// A sieve_conv_tile_avx2 (conv_band_avx2.h) on bytes.
static void conv_tile(const uint8_t *const x[CONV_TILE_PIXELS], const void *w, const int32_t *bias, intptr_t runs, intptr_t run_len,
                      intptr_t run_stride, __m256i acc[2 * CONV_TILE_PIXELS], int pixels) {
    const uint8_t *p0 = x[0], *p1 = x[1], *p2 = x[2], *p3 = x[3], *p4 = x[4], *p5 = x[5];
    const intptr_t len = -run_len, stride = run_stride;
    intptr_t i;
    SIEVE_TILE_SWITCH(TILE_ASM, PIXELS);
    (void)i;
}

// The band driver is both routes' (conv_band_avx2.h), on the u8 band.
void sieve_conv_u8_s8__avx2(const sieve_conv_params *p, const void *packed, void *scratch) {
    if (p->out_h <= 0 || p->out_w <= 0) return;
    const sieve_k4_view v = sieve_k4(packed, p->out_c, conv_k(p));
    const sieve_rq_block_avx2 *blocks = rq_blocks(packed, p);
    const sieve_rq32_block_avx2 *blocks32 = rq32_blocks(packed, p);
    const sieve_conv_walk t = sieve_conv_stage(p, 128, (uint8_t *)scratch);
    sieve_conv_band_avx2(p, v, blocks, blocks32, t, (const uint8_t *)scratch, (const uint8_t *)v.weights, 1, conv_tile, conv_half_tile);
}

// The u8 route's peak: 32 vpmaddubsw + vpmaddwd (by ones) + vpaddd triples (ymm, 32 MACs each) per
// iteration, on registers only, in assembly for the same reason as the int16 route's peak loop.
#define MADD_U8(a) "vpmaddubsw %%ymm14, %%ymm15, %%ymm12\n\t" "vpmaddwd %%ymm12, %%ymm13, %%ymm12\n\t" \
                   "vpaddd %%ymm12, %%ymm" #a ", %%ymm" #a "\n\t"
#define MADD_U8_8 MADD_U8(0) MADD_U8(1) MADD_U8(2) MADD_U8(3) MADD_U8(4) MADD_U8(5) MADD_U8(6) MADD_U8(7)
uint64_t sieve_peak_macs_u8__avx2(uint64_t iterations) {
    for (uint64_t n = 0; n < iterations; n++) {
        __asm__ volatile(MADD_U8_8 MADD_U8_8 MADD_U8_8 MADD_U8_8
                         :
                         :
                         : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm12");
    }
    return iterations * 32 * 32;
}
#undef MADD_U8_8
#undef MADD_U8

SIEVE_TARGET_END
#endif
