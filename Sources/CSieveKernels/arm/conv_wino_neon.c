// 3x3 stride-1 convolution (groups = 1) on the neon path by Winograd F(2,3), exact in integers: the
// same transforms as the avx2 route (x86/conv_wino_avx2.c, docs/KERNELS.md "Winograd"):
//
//   U = G2 g G2^T   per channel pair, 4 times the usual transform: integers, |U| <= 1152 (int16)
//   V = B^T d B     per 4x4 input tile: adds and subtracts, |V| <= 512 (int16)
//   M = sum over input channels of U * V per position: 16 int16 GEMMs (smlal by element into int32)
//   Y = A^T M A     exactly 4 times the direct sum S (wrapping int32): Y >> 2 = S while |4S| < 2^31
//
// Why on neon: the path's direct conv is bound by the one multiply pipe of the A72 (and the A53) at 8
// int8 products a cycle (smull .8h). smlal by element does 4 int16 products a cycle there, but F(2,3)
// needs 16 products per 2x2 outputs and input channel where the direct conv needs 36: 9 direct MACs
// a cycle before the transforms. The neondot path (sdot, 32 a cycle) keeps its direct conv.
//
// Layout after the neon header (wino = 1) and the requantisation table: int16
// U[ocp / 8][16 positions][cv][8 output channels], cv = in_c (a multiple of 8). The GEMM micro-kernel
// takes 4 tiles x 8 output channels (8 int32x4 accumulators) per position: per input channel, the
// 8 channels' U row is one q register and each tile's V value a lane of the tile's own q register
// (V[position][tile][cv], the natural order of the transform, so no transpose).
#if defined(__aarch64__)
#include <arm_neon.h>
#include "sieve_target.h"

SIEVE_TARGET_BEGIN("arch=armv8-a+simd")

#include "neon_common.h"
#include "neon_layout.h"

#define WINO_MAX_IN_C 2048           // |4S| < 2^31 needs in_c <= 3640
#define WINO_CHUNK_BYTES (192 * 1024) // transformed inputs of one chunk of tiles (L2)
#define WINO_GROUP 4                  // tiles per GEMM call

static int32_t tiles_of(int32_t n) { return (n + 1) / 2; }

// Where it beats the direct conv (docs/ESTIMATE.md): enough channels that the transforms are a
// small share (at 32 they cost about 13 %: VGG-S's 28x28x32 conv runs at 7.8 direct MACs a cycle on
// the A72, the direct conv at 7.1), and little padding of odd sizes to whole 2x2 tiles (a 7x7 output
// computes 8x8: 31 % more products, slower than direct).
int sieve_conv_wino_fits__neon(const sieve_conv_params *p) {
    const int64_t area = (int64_t)p->out_h * p->out_w, tiled = 4 * (int64_t)tiles_of(p->out_h) * tiles_of(p->out_w);
    return p->groups == 1 && p->kernel_h == 3 && p->kernel_w == 3 && p->stride_h == 1 && p->stride_w == 1 && p->in_c >= 32 &&
           p->in_c % 8 == 0 && p->in_c <= WINO_MAX_IN_C && p->out_c >= 32 && area > 0 && tiled * 16 <= area * 17;
}

static int32_t chunk_tiles(const sieve_conv_params *p) {
    const int32_t tiles = tiles_of(p->out_h) * tiles_of(p->out_w);
    int32_t chunk = WINO_CHUNK_BYTES / (16 * 2 * p->in_c) / WINO_GROUP * WINO_GROUP;
    if (chunk < WINO_GROUP) chunk = WINO_GROUP;
    return tiles < chunk ? tiles : chunk;
}

static size_t table_size(const sieve_conv_params *p) { return arm_rq_table_size(sieve_round_up(p->out_c, 16)); }
static size_t weights_size(const sieve_conv_params *p) {
    return (size_t)sieve_round_up(p->out_c, 8) * 16 * (size_t)p->in_c * sizeof(int16_t);
}

size_t sieve_conv_wino_packed_size__neon(const sieve_conv_params *p) { return NEON_HEADER + table_size(p) + weights_size(p); }

void sieve_conv_wino_pack__neon(const sieve_conv_params *p, void *packed) {
    const int32_t cv = p->in_c;
    neon_header *h = (neon_header *)packed;
    memset(h, 0, NEON_HEADER);
    h->wino = 1;
    char *table = (char *)packed + NEON_HEADER;
    arm_rq_pack_table(table, p->bias, p->multipliers, p->shifts, p->out_c, sieve_round_up(p->out_c, 16));
    int16_t *u = (int16_t *)(table + table_size(p));
    memset(u, 0, weights_size(p));
    for (int32_t oc = 0; oc < p->out_c; oc++) {
        for (int32_t c = 0; c < p->in_c; c++) {
            int16_t tile[16];
            sieve_wino_weights(p, oc, c, tile);
            for (int xi = 0; xi < 16; xi++) u[(((size_t)(oc / 8) * 16 + (size_t)xi) * cv + c) * 8 + oc % 8] = tile[xi];
        }
    }
}

static size_t staged_size(const sieve_conv_params *p) {
    const sieve_conv_params t = sieve_wino_tiled(p);
    return arm_round_up_size((size_t)sieve_conv_span_h(&t) * sieve_conv_span_w(&t) * p->in_c, 64);
}

size_t sieve_conv_wino_scratch_size__neon(const sieve_conv_params *p) {
    return staged_size(p) + (size_t)16 * chunk_tiles(p) * p->in_c * sizeof(int16_t);
}

// V of `count` tiles from tile `first` into v[16][chunk][cv].
static void transform_inputs(const int8_t *staged, int32_t span_w, int32_t cv, int32_t tiles_w, int32_t first, int32_t count,
                             int32_t chunk, int16_t *v) {
    const size_t plane = (size_t)chunk * cv;
    for (int32_t n = 0; n < count; n++) {
        const int32_t ty = (first + n) / tiles_w, tx = (first + n) % tiles_w;
        const int8_t *base = staged + ((size_t)2 * ty * span_w + (size_t)2 * tx) * cv;
        int16_t *out = v + (size_t)n * cv;
        for (int32_t c = 0; c < cv; c += 8) {
            int16x8_t d[4][4], t[4][4];
            for (int r = 0; r < 4; r++) {
                for (int col = 0; col < 4; col++) d[r][col] = vmovl_s8(vld1_s8(base + ((size_t)r * span_w + col) * cv + c));
            }
            for (int col = 0; col < 4; col++) {  // B^T d
                t[0][col] = vsubq_s16(d[0][col], d[2][col]);
                t[1][col] = vaddq_s16(d[1][col], d[2][col]);
                t[2][col] = vsubq_s16(d[2][col], d[1][col]);
                t[3][col] = vsubq_s16(d[1][col], d[3][col]);
            }
            for (int r = 0; r < 4; r++) {  // (B^T d) B
                vst1q_s16(out + (size_t)(4 * r + 0) * plane + c, vsubq_s16(t[r][0], t[r][2]));
                vst1q_s16(out + (size_t)(4 * r + 1) * plane + c, vaddq_s16(t[r][1], t[r][2]));
                vst1q_s16(out + (size_t)(4 * r + 2) * plane + c, vsubq_s16(t[r][2], t[r][1]));
                vst1q_s16(out + (size_t)(4 * r + 3) * plane + c, vsubq_s16(t[r][1], t[r][3]));
            }
        }
    }
}

// One input channel K (U row in vU, lane K of the tiles' V in v8-v11) into the 4 tiles x 8 channels
// of v24-v31 (tile i: v(24 + 2i) channels 0-3, v(25 + 2i) channels 4-7): smull/smull2 starts the
// sums (no zeroing), smlal/smlal2 adds.
#define WINO_K(L, H, U, K)                                                                            \
    L " v24.4s, v" U ".4h, v8.h[" K "]\n " H " v25.4s, v" U ".8h, v8.h[" K "]\n "                     \
    L " v26.4s, v" U ".4h, v9.h[" K "]\n " H " v27.4s, v" U ".8h, v9.h[" K "]\n "                     \
    L " v28.4s, v" U ".4h, v10.h[" K "]\n " H " v29.4s, v" U ".8h, v10.h[" K "]\n "                   \
    L " v30.4s, v" U ".4h, v11.h[" K "]\n " H " v31.4s, v" U ".8h, v11.h[" K "]\n"
#define WINO_MLA(U, K) WINO_K("smlal", "smlal2", U, K)
// Eight input channels: their 8 U rows (v16-v23, each pair loaded two channels ahead of its use) and
// the four tiles' 8 channels (v8-v11), 64 products.
#define WINO_STEP(L, H)                                                                               \
    "ldp q16, q17, [%[u]]\n ldp q18, q19, [%[u], #32]\n"                                              \
    "ldr q8, [%[p0], %[o]]\n ldr q9, [%[p1], %[o]]\n ldr q10, [%[p2], %[o]]\n ldr q11, [%[p3], %[o]]\n" \
    "add %[o], %[o], #16\n"                                                                           \
    WINO_K(L, H, "16", "0") "ldp q20, q21, [%[u], #64]\n" WINO_MLA("17", "1")                         \
    WINO_MLA("18", "2") "ldp q22, q23, [%[u], #96]\n" WINO_MLA("19", "3")                             \
    WINO_MLA("20", "4") WINO_MLA("21", "5") WINO_MLA("22", "6") WINO_MLA("23", "7")                   \
    "add %[u], %[u], #128\n"

// M of 4 tiles (v, v + cv, ...) x 8 output channels over cv >= 16 input channels (a multiple of 8),
// into m[0..7] (tile i: m[2i] channels 0-3, m[2i + 1] channels 4-7). Eight channels a step: the 8 U
// rows stay in registers while the four tiles' 8 channels come in; each accumulator is touched every
// 8 products, past the multiply's latency. The first and last steps are peeled: the first starts the
// sums, the last runs beside the stores. Inline assembly, so gcc and clang build the same loop (gcc's
// allocation of the intrinsics version added register moves that cost the in-order A53 5 %).
static inline __attribute__((always_inline)) void gemm4x8(const int16_t *u, const int16_t *v, int32_t cv, int32x4_t m[8]) {
    const int16_t *p1 = v + cv, *p2 = p1 + cv, *p3 = p2 + cv;
    int64_t o = 0, middle = cv / 8 - 2;
    __asm__ volatile(
        WINO_STEP("smull", "smull2")
        "cbz %[n], 2f\n"
        // The loop (79 instructions) on a 512-byte boundary, the padding jumped over: it never
        // straddles a page, whose boundary would split it into two blocks for the estimator.
        "b 1f\n"
        ".p2align 9\n"
        "1:\n"
        WINO_STEP("smlal", "smlal2")
        "subs %[n], %[n], #1\n"
        "b.ne 1b\n"
        "2:\n"
        WINO_STEP("smlal", "smlal2")
        "stp q24, q25, [%[m]]\n stp q26, q27, [%[m], #32]\n stp q28, q29, [%[m], #64]\n stp q30, q31, [%[m], #96]\n"
        : [u] "+r"(u), [o] "+r"(o), [n] "+r"(middle)
        : [p0] "r"(v), [p1] "r"(p1), [p2] "r"(p2), [p3] "r"(p3), [m] "r"(m)
        : "cc", "memory", "v8", "v9", "v10", "v11", "v16", "v17", "v18", "v19", "v20", "v21", "v22", "v23", "v24", "v25", "v26",
          "v27", "v28", "v29", "v30", "v31");
}

// The same for one tile (a band's last 1-3 tiles): channel k's products go to accumulator pair k % 4,
// so each is touched every 8 products as in gemm4x8, and the four pairs are summed at the end.
#define WINO_ONE(K, U, A, B) A = vmlal_laneq_s16(A, vget_low_s16(U), x, K), B = vmlal_high_laneq_s16(B, U, x, K);
static inline __attribute__((always_inline)) void gemm1x8(const int16_t *u, const int16_t *v, int32_t cv, int32x4_t m[2]) {
    int32x4_t a0 = vdupq_n_s32(0), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
    for (int32_t c = 0; c < cv; c += 8) {
        const int16_t *uc = u + 8 * c;
        const int16x8_t x = vld1q_s16(v + c);
        const int16x8_t u0 = vld1q_s16(uc), u1 = vld1q_s16(uc + 8), u2 = vld1q_s16(uc + 16), u3 = vld1q_s16(uc + 24);
        const int16x8_t u4 = vld1q_s16(uc + 32), u5 = vld1q_s16(uc + 40), u6 = vld1q_s16(uc + 48), u7 = vld1q_s16(uc + 56);
        WINO_ONE(0, u0, a0, a1) WINO_ONE(1, u1, a2, a3) WINO_ONE(2, u2, a4, a5) WINO_ONE(3, u3, a6, a7)
        WINO_ONE(4, u4, a0, a1) WINO_ONE(5, u5, a2, a3) WINO_ONE(6, u6, a4, a5) WINO_ONE(7, u7, a6, a7)
    }
    m[0] = vaddq_s32(vaddq_s32(a0, a2), vaddq_s32(a4, a6));
    m[1] = vaddq_s32(vaddq_s32(a1, a3), vaddq_s32(a5, a7));
}

// A^T M A for 4 channels of one tile: the 2x2 outputs' direct sums (y >> 2), in order (0,0) (0,1) (1,0) (1,1).
static inline void transform_outputs(const int32x4_t m[16], int32x4_t y[4]) {
    int32x4_t s0[4], s1[4];
    for (int col = 0; col < 4; col++) {
        s0[col] = vaddq_s32(vaddq_s32(m[col], m[4 + col]), m[8 + col]);
        s1[col] = vsubq_s32(vsubq_s32(m[4 + col], m[8 + col]), m[12 + col]);
    }
    y[0] = vshrq_n_s32(vaddq_s32(vaddq_s32(s0[0], s0[1]), s0[2]), 2);
    y[1] = vshrq_n_s32(vsubq_s32(vsubq_s32(s0[1], s0[2]), s0[3]), 2);
    y[2] = vshrq_n_s32(vaddq_s32(vaddq_s32(s1[0], s1[1]), s1[2]), 2);
    y[3] = vshrq_n_s32(vsubq_s32(vsubq_s32(s1[1], s1[2]), s1[3]), 2);
}

// The requantisation constants of 8 output channels, loaded once for all the tiles.
typedef struct {
    int32x4_t b0, b1, m0, m1, s0, s1;  // bias, multiplier, rshift (fast form)
    int64x2_t n0, n1, n2, n3;          // nshift (slow form)
    int fast;
} wino_rq8;

static wino_rq8 wino_rq8_at(const arm_rq_view *rq, int32_t oc) {
    wino_rq8 k;
    k.b0 = vld1q_s32(rq->bias + oc), k.b1 = vld1q_s32(rq->bias + oc + 4);
    k.m0 = vld1q_s32(rq->mult + oc), k.m1 = vld1q_s32(rq->mult + oc + 4);
    k.s0 = vld1q_s32(rq->rshift + oc), k.s1 = vld1q_s32(rq->rshift + oc + 4);
    k.n0 = vld1q_s64(rq->nshift + oc), k.n1 = vld1q_s64(rq->nshift + oc + 2);
    k.n2 = vld1q_s64(rq->nshift + oc + 4), k.n3 = vld1q_s64(rq->nshift + oc + 6);
    k.fast = rq->fast[oc / 16];
    return k;
}

// Requantises the 2x2 outputs of one tile for 8 channels [oc, oc + n) and stores those inside the band.
static inline void store_tile(const sieve_conv_params *p, const wino_rq8 *k, const arm_out_stage *o, int32_t oc, int32_t n,
                              int32_t oy, int32_t ox, const int32x4_t lo[4], const int32x4_t hi[4]) {
    int8x16_t r[2];
    for (int h = 0; h < 2; h++) {
        const int32x4_t a0 = vaddq_s32(lo[2 * h], k->b0), a1 = vaddq_s32(hi[2 * h], k->b1);
        const int32x4_t a2 = vaddq_s32(lo[2 * h + 1], k->b0), a3 = vaddq_s32(hi[2 * h + 1], k->b1);
        r[h] = k->fast ? arm_rq_fast(a0, a1, a2, a3, k->m0, k->m1, k->m0, k->m1, k->s0, k->s1, k->s0, k->s1, o)
                       : arm_rq_narrow(arm_rq_slow4(a0, k->m0, k->n0, k->n1, o->zp32), arm_rq_slow4(a1, k->m1, k->n2, k->n3, o->zp32),
                                       arm_rq_slow4(a2, k->m0, k->n0, k->n1, o->zp32), arm_rq_slow4(a3, k->m1, k->n2, k->n3, o->zp32), o);
    }
    int8_t *dst = p->output + ((size_t)oy * p->out_w + ox) * p->out_c + oc;
    const size_t row = (size_t)p->out_w * p->out_c;
    if (n == 8 && oy + 1 < p->out_h && ox + 1 < p->out_w) {  // output k of the tile: half k % 2 of r[k / 2]
        vst1_s8(dst, vget_low_s8(r[0])), vst1_s8(dst + p->out_c, vget_high_s8(r[0]));
        vst1_s8(dst + row, vget_low_s8(r[1])), vst1_s8(dst + row + p->out_c, vget_high_s8(r[1]));
        return;
    }
    for (int i = 0; i < 4; i++) {  // a tile at the band's edge, or the last channels
        const int32_t y = oy + i / 2, x = ox + i % 2;
        if (y >= p->out_h || x >= p->out_w) continue;
        int8_t tmp[8];
        vst1_s8(tmp, i % 2 ? vget_high_s8(r[i / 2]) : vget_low_s8(r[i / 2]));
        memcpy(dst + (i / 2) * row + (size_t)(i % 2) * p->out_c, tmp, (size_t)n);
    }
}

void sieve_conv_wino_s8__neon(const sieve_conv_params *p, const void *packed, void *scratch) {
    if (p->out_h <= 0 || p->out_w <= 0) return;
    const int32_t cv = p->in_c, chunk = chunk_tiles(p);
    const int32_t tiles_w = tiles_of(p->out_w), tiles = tiles_of(p->out_h) * tiles_w;
    const arm_rq_view rq = arm_rq_table((const char *)packed + NEON_HEADER, sieve_round_up(p->out_c, 16));
    const int16_t *u = (const int16_t *)((const char *)packed + NEON_HEADER + table_size(p));
    const arm_out_stage o = arm_out(p->output_zero_point, p->act_min, p->act_max);

    const sieve_conv_params t = sieve_wino_tiled(p);
    int8_t *staged = (int8_t *)scratch;
    sieve_pad_input(&t, 0, (uint8_t *)staged);
    const int32_t span_w = sieve_conv_span_w(&t);
    int16_t *v = (int16_t *)((uint8_t *)scratch + staged_size(p));
    const size_t plane = (size_t)chunk * cv;

    for (int32_t first = 0; first < tiles; first += chunk) {
        const int32_t count = tiles - first < chunk ? tiles - first : chunk;
        transform_inputs(staged, span_w, cv, tiles_w, first, count, chunk, v);
        for (int32_t oc = 0; oc < p->out_c; oc += 8) {
            const int32_t n = p->out_c - oc < 8 ? p->out_c - oc : 8;
            const int16_t *w = u + (size_t)oc * 16 * cv;
            const wino_rq8 k = wino_rq8_at(&rq, oc);
            for (int32_t g = 0; g < count; g += WINO_GROUP) {
                int32x4_t m[16][2 * WINO_GROUP];  // per position: 4 tiles x 8 channels
                const int32_t in_group = count - g < WINO_GROUP ? count - g : WINO_GROUP;
                for (int xi = 0; xi < 16; xi++) {
                    const int16_t *wx = w + (size_t)xi * cv * 8, *vx = v + (size_t)xi * plane + (size_t)g * cv;
                    if (in_group == WINO_GROUP) gemm4x8(wx, vx, cv, m[xi]);
                    else for (int j = 0; j < in_group; j++) gemm1x8(wx, vx + (size_t)j * cv, cv, m[xi] + 2 * j);
                }
                for (int j = 0; j < in_group; j++) {
                    const int32_t tile = first + g + j;
                    int32x4_t q[16], lo[4], hi[4];
                    for (int xi = 0; xi < 16; xi++) q[xi] = m[xi][2 * j];
                    transform_outputs(q, lo);
                    for (int xi = 0; xi < 16; xi++) q[xi] = m[xi][2 * j + 1];
                    transform_outputs(q, hi);
                    store_tile(p, &k, &o, oc, n, tile / tiles_w * 2, tile % tiles_w * 2, lo, hi);
                }
            }
        }
    }
}

SIEVE_TARGET_END
#endif
