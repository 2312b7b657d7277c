// Convolution (groups = 1) on AVX2: vpmaddwd of int16 inputs by int16 weights, exact with signed
// inputs, no offset (docs/KERNELS.md, "The x86 paths"); ops whose weights allow it take the u8 x s8
// route of conv_s8__avx2_u8.c instead (the entry points at the end decide).
//
// The band is staged once (sieve_conv_stage) and widened to int16 into scratch, so a pixel's pair of
// inputs is one vpbroadcastd from memory (a load, no vector ALU work). Weights are int16, packed per
// 16 output channels as [k4 / 2][16][2]: a pair of k for 8 channels fills a ymm, and vpmaddwd by the
// broadcast pair adds both products into each channel's int32 lane: no reduction at the end. A tile
// is up to 6 output pixels (anywhere in the band: pixels run on across output rows) x 16 channels,
// 12 ymm accumulators, 2 of weights, a broadcast and a product; the inner loop is inline assembly,
// so gcc and clang build the same loop with no spills. Per pair of k: 2 weight loads, 6 broadcasts,
// 12 vpmaddwd, 12 vpaddd, the same vector ALU work per MAC as the peak loop below.
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


static inline int32_t conv_k(const sieve_conv_params *p) { return sieve_conv_k4(p); }

// The K4 header and int16 weights (sieve_pack_k4_s16_size bytes, the weights reordered as above),
// then a sieve_rq_block_avx2 per 8 output channels and a sieve_rq32_block_avx2 per 16.
static size_t weights_end(const sieve_conv_params *p) { return sieve_pack_k4_s16_size(p->out_c, conv_k(p)); }

static size_t s16_packed_size(const sieve_conv_params *p) {
    const size_t ocp = (size_t)sieve_round_up(p->out_c, 16);
    return weights_end(p) + ocp / 8 * sizeof(sieve_rq_block_avx2) + ocp / 16 * sizeof(sieve_rq32_block_avx2);
}

static const sieve_rq_block_avx2 *rq_blocks(const void *packed, const sieve_conv_params *p) {
    return (const sieve_rq_block_avx2 *)((const uint8_t *)packed + weights_end(p));
}

static const sieve_rq32_block_avx2 *rq32_blocks(const void *packed, const sieve_conv_params *p) {
    return (const sieve_rq32_block_avx2 *)(rq_blocks(packed, p) + sieve_round_up(p->out_c, 16) / 8);
}

static void s16_pack(const sieve_conv_params *p, void *packed) {
    sieve_pack_conv_k4(p, 0, 2, packed);
    const sieve_k4_view v = sieve_k4(packed, p->out_c, conv_k(p));
    sieve_pack_pairs_avx2(&v, sizeof(int16_t), (sieve_rq_block_avx2 *)rq_blocks(packed, p), (sieve_rq32_block_avx2 *)rq32_blocks(packed, p), p->out_c);
}

// The int8 staging (sieve_conv_stage), then its int16 copy; each rounded up with slack for the
// 16-byte steps of the widening.
static size_t stage8_size(const sieve_conv_params *p) { return (size_t)sieve_round_up((int32_t)sieve_conv_stage_size(p), 64) + 64; }

static size_t s16_scratch_size(const sieve_conv_params *p) { return stage8_size(p) * 3; }

// One tile: PIXELS(OFF) is the pixels' step at byte offset OFF of the pair index. Registers: the 12
// accumulators ymm0-11 (pixel j: ymm 2j channels 0-7, ymm 2j+1 channels 8-15, starting from the
// bias, stored to acc at the end), ymm12-13 weights, ymm14 the broadcast pair, ymm15 a product;
// the pixels' pointers p0-p5 to the end of their first run, the weights w, runs, len = -2 * run
// length (bytes), stride (bytes from one run to the next).
#define PIX(P, A, B, OFF)                                  \
    "vpbroadcastd " #OFF "(%[" #P "],%[i]), %%ymm14\n\t"   \
    "vpmaddwd %%ymm12, %%ymm14, %%ymm15\n\t"               \
    "vpmaddwd %%ymm13, %%ymm14, %%ymm14\n\t"               \
    "vpaddd %%ymm15, %%ymm" #A ", %%ymm" #A "\n\t"         \
    "vpaddd %%ymm14, %%ymm" #B ", %%ymm" #B "\n\t"
#define PIXELS1(OFF) PIX(p0, 0, 1, OFF)
#define PIXELS2(OFF) PIXELS1(OFF) PIX(p1, 2, 3, OFF)
#define PIXELS3(OFF) PIXELS2(OFF) PIX(p2, 4, 5, OFF)
#define PIXELS4(OFF) PIXELS3(OFF) PIX(p3, 6, 7, OFF)
#define PIXELS5(OFF) PIXELS4(OFF) PIX(p4, 8, 9, OFF)
#define PIXELS6(OFF) PIXELS5(OFF) PIX(p5, 10, 11, OFF)
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
                     "vmovdqa 32(%[w]), %%ymm13\n\t" PIXELS(0) "vmovdqa 64(%[w]), %%ymm12\n\t"                               \
                     "vmovdqa 96(%[w]), %%ymm13\n\t" PIXELS(4) "sub $-128, %[w]\n\t"                                         \
                     "add $8, %[i]\n\t"                                                                                      \
                     "jnz 2b\n\t"                                                                                            \
                     SIEVE_TILE_NEXT_RUN_ASM                                                                                 \
                     STORE2(0, 1) STORE2(2, 3) STORE2(4, 5) STORE2(6, 7) STORE2(8, 9) STORE2(10, 11)                        \
                     : SIEVE_TILE_OUTPUTS                                                                                    \
                     : [len] "r"(len), [stride] "r"(stride), [bias] "r"(bias), [acc] "r"(acc)                                \
                     : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11",      \
                       "xmm12", "xmm13", "xmm14", "xmm15", "cc", "memory")

// A sieve_conv_tile_avx2 (conv_band_avx2.h) on int16 elements; the Winograd route's GEMMs use it too.
void sieve_conv_tile_s16__avx2(const uint8_t *const x[CONV_TILE_PIXELS], const void *w, const int32_t *bias, intptr_t runs, intptr_t run_len,
                      intptr_t run_stride, __m256i acc[2 * CONV_TILE_PIXELS], int pixels) {
    const uint8_t *p0 = x[0], *p1 = x[1], *p2 = x[2], *p3 = x[3], *p4 = x[4], *p5 = x[5];
    const intptr_t len = -2 * run_len, stride = 2 * run_stride;
    intptr_t i;
    SIEVE_TILE_SWITCH(TILE_ASM, PIXELS);
    (void)i;
}

static void widen(const int8_t *src, int16_t *dst, size_t n) {
    for (size_t i = 0; i < n; i += 16) {
        _mm256_store_si256((__m256i *)(dst + i), _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(src + i))));
    }
}

static void s16_conv(const sieve_conv_params *p, const void *packed, void *scratch) {
    if (p->out_h <= 0 || p->out_w <= 0) return;  // an empty band (`used` below needs a pixel)
    const sieve_k4_view v = sieve_k4(packed, p->out_c, conv_k(p));
    const sieve_rq_block_avx2 *blocks = rq_blocks(packed, p);
    const sieve_rq32_block_avx2 *blocks32 = rq32_blocks(packed, p);
    const sieve_conv_walk t = sieve_conv_stage(p, 0, (uint8_t *)scratch);
    int16_t *x = (int16_t *)((uint8_t *)scratch + stage8_size(p));
    const intptr_t run_len = (intptr_t)t.taps_w * t.groups * 4;
    // Every int16 a pixel of the band reads (a run is contiguous: taps_w taps of in_c, or one kernel row).
    const size_t used = (size_t)(p->out_h - 1) * t.pixel_row_stride + (size_t)(p->out_w - 1) * t.pixel_stride +
                        (size_t)(t.taps_h - 1) * t.row_stride + (size_t)run_len;
    widen((const int8_t *)scratch, x, used);

    sieve_conv_band_avx2(p, v, blocks, blocks32, t, (const uint8_t *)x, (const uint8_t *)v.weights, sizeof(int16_t), sieve_conv_tile_s16__avx2, 0);
}

// The path's entry points pick the route per op at pack time: Winograd F(2,3) (conv_wino_avx2.c)
// for 3x3 stride-1 convs it takes, else the u8 x s8 route (conv_s8__avx2_u8.c) when every weight
// pair fits vpmaddubsw's saturating int16 sum, else the int16 route above. The packed buffer starts
// with a 64-byte header whose first int32 says which (SIEVE_ROUTE_*), so the kernel reads the
// decision instead of checking the weights again.
#define ROUTE_HEADER 64

static int32_t route_for(const sieve_conv_params *p) {
    if (sieve_conv_wino_fits__avx2(p)) return SIEVE_ROUTE_WINOGRAD;
    return sieve_conv_u8_fits__avx2(p) ? SIEVE_ROUTE_U8 : SIEVE_ROUTE_MAIN;
}

size_t sieve_conv_packed_size__avx2(const sieve_conv_params *p) {
    switch (route_for(p)) {
    case SIEVE_ROUTE_WINOGRAD: return ROUTE_HEADER + sieve_conv_wino_packed_size__avx2(p);
    case SIEVE_ROUTE_U8: return ROUTE_HEADER + sieve_conv_u8_packed_size__avx2(p);
    default: return ROUTE_HEADER + s16_packed_size(p);
    }
}

void sieve_conv_pack__avx2(const sieve_conv_params *p, void *packed) {
    const int32_t route = route_for(p);
    memset(packed, 0, ROUTE_HEADER);
    memcpy(packed, &route, sizeof route);
    uint8_t *body = (uint8_t *)packed + ROUTE_HEADER;
    switch (route) {
    case SIEVE_ROUTE_WINOGRAD: sieve_conv_wino_pack__avx2(p, body); break;
    case SIEVE_ROUTE_U8: sieve_conv_u8_pack__avx2(p, body); break;
    default: s16_pack(p, body); break;
    }
}

size_t sieve_conv_scratch_size__avx2(const sieve_conv_params *p) {
    switch (route_for(p)) {
    case SIEVE_ROUTE_WINOGRAD: return sieve_conv_wino_scratch_size__avx2(p);
    case SIEVE_ROUTE_U8: return sieve_conv_u8_scratch_size__avx2(p);
    default: return s16_scratch_size(p);
    }
}

int32_t sieve_conv_route__avx2(const void *packed) {
    int32_t route;
    memcpy(&route, packed, sizeof route);
    return route;
}

void sieve_conv_s8__avx2(const sieve_conv_params *p, const void *packed, void *scratch) {
    const uint8_t *body = (const uint8_t *)packed + ROUTE_HEADER;
    switch (sieve_conv_route__avx2(packed)) {
    case SIEVE_ROUTE_WINOGRAD: sieve_conv_wino_s8__avx2(p, body, scratch); break;
    case SIEVE_ROUTE_U8: sieve_conv_u8_s8__avx2(p, body, scratch); break;
    default: s16_conv(p, body, scratch); break;
    }
}

// 32 vpmaddwd + vpaddd pairs (ymm, 16 MACs each) per iteration, on registers only. In assembly:
// in C the compiler would compute the loop-invariant product once. Products go to ymm8-13 in
// turn, sums to ymm0-7.
#define MADD(t, a) "vpmaddwd %%ymm14, %%ymm15, %%ymm" #t "\n\t" "vpaddd %%ymm" #t ", %%ymm" #a ", %%ymm" #a "\n\t"
uint64_t sieve_peak_macs__avx2(uint64_t iterations) {
    for (uint64_t n = 0; n < iterations; n++) {
        __asm__ volatile(
            MADD(8, 0) MADD(9, 1) MADD(10, 2) MADD(11, 3) MADD(12, 4) MADD(13, 5) MADD(8, 6) MADD(9, 7)
            MADD(10, 0) MADD(11, 1) MADD(12, 2) MADD(13, 3) MADD(8, 4) MADD(9, 5) MADD(10, 6) MADD(11, 7)
            MADD(12, 0) MADD(13, 1) MADD(8, 2) MADD(9, 3) MADD(10, 4) MADD(11, 5) MADD(12, 6) MADD(13, 7)
            MADD(8, 0) MADD(9, 1) MADD(10, 2) MADD(11, 3) MADD(12, 4) MADD(13, 5) MADD(8, 6) MADD(9, 7)
            :
            :
            : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13");
    }
    return iterations * 32 * 16;
}
#undef MADD

SIEVE_TARGET_END
#endif
