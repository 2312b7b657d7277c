// Convolution (groups = 1) on AVX-512 VNNI: vpdpbusd of u8 inputs (x + 128) by s8 weights in the
// K4 layout, 16 output channels per zmm. A tile is up to 8 output pixels of one row times 32
// output channels (16 accumulators; 12 pixels ran slower here); the pixels' input bytes are broadcast from memory.
#if defined(__x86_64__)
#include <string.h>
#include "sieve_isa.h"
#include "sieve_pack.h"
#include "sieve_target.h"

// Before any target region: gcc binds each intrinsic to the target in force where it is declared.
#include <immintrin.h>

SIEVE_TARGET_BEGIN("avx512f,avx512bw,avx512vl,avx512vnni")
#include "requantize_avx512.h"
#include "store_avx512.h"

#define MAX_TILE_PIXELS 8

static inline int32_t conv_k(const sieve_conv_params *p) { return sieve_conv_k4(p); }

// The K4 layout, then one sieve_rq_block_avx512 and one sieve_rq_short_avx512 per 16 output channels.
size_t sieve_conv_packed_size__avx512vnni(const sieve_conv_params *p) {
    return sieve_pack_k4_size(p->out_c, conv_k(p)) +
           (size_t)sieve_round_up(p->out_c, 16) / 16 * (sizeof(sieve_rq_block_avx512) + sizeof(sieve_rq_short_avx512));
}

static sieve_rq_block_avx512 *rq_blocks(const void *packed, const sieve_conv_params *p) {
    return (sieve_rq_block_avx512 *)((uint8_t *)packed + sieve_pack_k4_size(p->out_c, conv_k(p)));
}

static sieve_rq_short_avx512 *rq_shorts(const void *packed, const sieve_conv_params *p) {
    return (sieve_rq_short_avx512 *)(rq_blocks(packed, p) + sieve_round_up(p->out_c, 16) / 16);
}

void sieve_conv_pack__avx512vnni(const sieve_conv_params *p, void *packed) {
    sieve_pack_conv_k4(p, 128, 1, packed);
    const sieve_k4_view v = sieve_k4(packed, p->out_c, conv_k(p));
    sieve_rq_block_avx512 *blocks = rq_blocks(packed, p);
    sieve_rq_short_avx512 *shorts = rq_shorts(packed, p);
    const size_t k = (size_t)p->kernel_h * p->kernel_w * p->in_c;  // weights per output channel, scalar order
    for (int32_t b = 0; b < v.ocp / 16; b++) {
        sieve_rq_block_fill(blocks + b, v.multipliers + 16 * b, v.shifts + 16 * b, p->output_zero_point);
        // The short-multiplier form: a channel's accumulators are its bias plus at most 128 * sum|w|.
        int64_t bounds[16];
        for (int32_t i = 0; i < 16; i++) {
            const int32_t c = 16 * b + i;
            bounds[i] = 0;
            if (c >= p->out_c) continue;
            bounds[i] = p->bias[c] < 0 ? -(int64_t)p->bias[c] : p->bias[c];
            for (size_t j = 0; j < k; j++) {
                const int8_t w = p->weights[(size_t)c * k + j];
                bounds[i] += 128 * (int64_t)(w < 0 ? -w : w);
            }
        }
        sieve_rq_short_fill(shorts + b, v.multipliers + 16 * b, v.shifts + 16 * b, bounds);
    }
}

size_t sieve_conv_scratch_size__avx512vnni(const sieve_conv_params *p) {
    return sieve_conv_stage_size(p);
}


// How a tile requantises: each block's own form, the 32-bit form with its constants in registers
// (every block's shifts high), or the short-multiplier form (every block's multipliers short).
enum { RQ_OWN, RQ_HIGH, RQ_SHORT };

// A tile's form, and its constants in registers (read before any store: an int8 store may alias
// them as far as the compiler knows).
static inline int tile_form(const int32_t *multipliers, const sieve_rq_block_avx512 *shifts, const sieve_rq_short_avx512 *shorts,
                            const int blocks, sieve_rq_high_regs c[2]) {
    int high = 1, short_form = 1;
    for (int b = 0; b < blocks; b++) high &= shifts[b].high_shift[0] != 0, short_form &= shorts[b].shift[0] != 0;
    for (int b = 0; b < blocks; b++) {
        if (short_form) {
            c[b].multiplier = _mm512_load_si512(shorts[b].multiplier);
            c[b].round = _mm512_load_si512(shorts[b].round);
            c[b].shift = _mm512_load_si512(shorts[b].shift);
        } else if (high) {
            c[b] = sieve_rq_high_load(multipliers + 16 * b, shifts + b);
        }
    }
    return short_form ? RQ_SHORT : high ? RQ_HIGH : RQ_OWN;
}

// One pixel's one or two 16-channel blocks requantised to int32: the zero point added, except in
// the short form, whose narrowing adds it (sieve_narrow64_zp_avx512).
static inline void pixel_rq(const __m512i acc[2], const int form, const sieve_rq_high_regs c[2], const int32_t *multipliers,
                            const sieve_rq_block_avx512 *shifts, __m512i zero_point, __m512i r[2], const int blocks) {
    for (int b = 0; b < blocks; b++)
        r[b] = form == RQ_SHORT  ? sieve_rq_short_apply_avx512(acc[b], c[b].multiplier, c[b].round, c[b].shift)
               : form == RQ_HIGH ? sieve_rq_high_avx512(acc[b], &c[b])
                                 : sieve_rq_block_wide_avx512(acc[b], multipliers + 16 * b, shifts + b, zero_point);
}

static inline __m512i narrow64(const int form, __m512i a, __m512i b, __m512i c, __m512i d, __m512i zp16) {
    return form == RQ_SHORT ? sieve_narrow64_zp_avx512(a, b, c, d, zp16) : sieve_narrow64_avx512(a, b, c, d);
}

static inline __attribute__((always_inline)) void conv_tile(
    const sieve_conv_walk *t, int32_t block_stride, const uint8_t *x, const int8_t *w, const int32_t *bias, const int32_t *multipliers,
    const sieve_rq_block_avx512 *shifts, const sieve_rq_short_avx512 *shorts, int8_t *out, int32_t out_stride, __mmask16 last_mask,
    const __m512i zp_lo_hi[4], const int8_t *prefetch, const int prefetching, const int pixels, const int blocks) {
    __m512i acc[MAX_TILE_PIXELS][2];
    for (int b = 0; b < blocks; b++) {
        const __m512i initial = _mm512_loadu_si512(bias + 16 * b);
        for (int j = 0; j < pixels; j++) acc[j][b] = initial;
    }
    for (int32_t ky = 0; ky < t->taps_h; ky++) {
        for (int32_t kx = 0; kx < t->taps_w; kx++) {
            const uint8_t *xt = x + ky * t->row_stride + kx * t->tap_stride;
            const int8_t *wt = w + (size_t)(ky * t->taps_w + kx) * t->groups * 64;
            for (int32_t g = 0; g < t->groups; g++) {
                __m512i wv[2];
                for (int b = 0; b < blocks; b++) wv[b] = _mm512_load_si512(wt + (size_t)b * block_stride + 64 * g);
                if (prefetching) _mm_prefetch((const char *)(prefetch + (wt - w) + 64 * g), _MM_HINT_T1);
                for (int j = 0; j < pixels; j++) {
                    int32_t four;
                    memcpy(&four, xt + j * t->pixel_stride + 4 * g, 4);
                    const __m512i xb = _mm512_set1_epi32(four);
                    for (int b = 0; b < blocks; b++) acc[j][b] = _mm512_dpbusd_epi32(acc[j][b], xb, wv[b]);
                }
            }
        }
    }
    if (blocks == 2) {
        // Two pixels' 32 channels narrowed together to [pixel 0: channels 0-31 | pixel 1: 0-31], the
        // clamp on bytes (act_min/act_max lie in int8, so saturating first is exact).
        const __mmask32 mask = 0xFFFFu | (__mmask32)last_mask << 16;
        // The constants stay in registers across the tile's pixels.
        sieve_rq_high_regs c[2];
        const int form = tile_form(multipliers, shifts, shorts, 2, c);
        _Pragma("GCC unroll 8") for (int j = 0; j < pixels; j += 2) {
            const int pair = j + 1 < pixels;  // an odd last pixel packs with itself; its copy is not stored
            __m512i r[4];
            pixel_rq(acc[j], form, c, multipliers, shifts, zp_lo_hi[0], r, 2);
            if (pair) pixel_rq(acc[j + 1], form, c, multipliers, shifts, zp_lo_hi[0], r + 2, 2);
            else r[2] = r[0], r[3] = r[1];
            __m512i bytes = narrow64(form, r[0], r[1], r[2], r[3], zp_lo_hi[3]);
            bytes = _mm512_min_epi8(_mm512_max_epi8(bytes, zp_lo_hi[1]), zp_lo_hi[2]);
            int8_t *at = out + (size_t)j * out_stride;
            sieve_store32_avx512(at, mask, _mm512_castsi512_si256(bytes));
            if (pair) sieve_store32_avx512(at + out_stride, mask, _mm512_extracti64x4_epi64(bytes, 1));
        }
        return;
    }
    // One block: four pixels' 16 channels narrowed together (a vpmovdb per pixel is two shuffle
    // uops), the constants in registers as above; a last group of 1-3 pixels repeats its first.
    sieve_rq_high_regs c[2];
    const int form = tile_form(multipliers, shifts, shorts, 1, c);
    _Pragma("GCC unroll 8") for (int j = 0; j < pixels; j += 4) {
        __m512i r[4];
        _Pragma("GCC unroll 4") for (int n = 0; n < 4; n++) {
            if (j + n < pixels) pixel_rq(acc[j + n], form, c, multipliers, shifts, zp_lo_hi[0], r + n, 1);
            else r[n] = r[0];
        }
        const __m512i bytes = _mm512_min_epi8(_mm512_max_epi8(narrow64(form, r[0], r[1], r[2], r[3], zp_lo_hi[3]), zp_lo_hi[1]), zp_lo_hi[2]);
        int8_t *at = out + (size_t)j * out_stride;
        sieve_store16_avx512(at, last_mask, _mm512_castsi512_si128(bytes));
        if (j + 1 < pixels) sieve_store16_avx512(at + out_stride, last_mask, _mm512_extracti32x4_epi32(bytes, 1));
        if (j + 2 < pixels) sieve_store16_avx512(at + 2 * out_stride, last_mask, _mm512_extracti32x4_epi32(bytes, 2));
        if (j + 3 < pixels) sieve_store16_avx512(at + 3 * out_stride, last_mask, _mm512_extracti32x4_epi32(bytes, 3));
    }
}

#define TILE_CASE(n)                                                                                         \
    case n:                                                                                                  \
        if (blocks == 2) conv_tile(t, block_stride, x, w, bias, m, s, sh, out, out_stride, last_mask, zp_lo_hi, NULL, 0, n, 2); \
        else conv_tile(t, block_stride, x, w, bias, m, s, sh, out, out_stride, last_mask, zp_lo_hi, NULL, 0, n, 1);             \
        break;

__attribute__((aligned(64))) static void conv_tile_any(const sieve_conv_walk *t, int32_t block_stride, const uint8_t *x, const int8_t *w, const int32_t *bias, const int32_t *m,
                          const sieve_rq_block_avx512 *s, const sieve_rq_short_avx512 *sh, int8_t *out, int32_t out_stride,
                          __mmask16 last_mask, const __m512i zp_lo_hi[4], int pixels, int blocks) {
    switch (pixels) {
        TILE_CASE(1) TILE_CASE(2) TILE_CASE(3) TILE_CASE(4) TILE_CASE(5) TILE_CASE(6)
        TILE_CASE(7) TILE_CASE(8)
    default: break;
    }
}
#undef TILE_CASE

// A two-block tile that also prefetches the lines at `pf` (the caller says which). A function of
// its own: with the prefetch as a runtime test inside conv_tile_any, or even one more argument to
// it, MobileNetV2's 1x1 convs over 16-32 channels (short tiles, called often) ran 2-4 % slower.
#define TILE_CASE(n) \
    case n: conv_tile(t, block_stride, x, w, bias, m, s, sh, out, out_stride, last_mask, zp_lo_hi, pf, 1, n, 2); break;

__attribute__((aligned(64))) static void conv_tile_prefetching(const sieve_conv_walk *t, int32_t block_stride, const uint8_t *x, const int8_t *w, const int32_t *bias,
                                  const int32_t *m, const sieve_rq_block_avx512 *s, const sieve_rq_short_avx512 *sh, int8_t *out,
                                  int32_t out_stride, __mmask16 last_mask, const __m512i zp_lo_hi[4], const int8_t *pf, int pixels) {
    switch (pixels) {
        TILE_CASE(1) TILE_CASE(2) TILE_CASE(3) TILE_CASE(4) TILE_CASE(5) TILE_CASE(6)
        TILE_CASE(7) TILE_CASE(8)
    default: break;
    }
}
#undef TILE_CASE

void sieve_conv_s8__avx512vnni(const sieve_conv_params *p, const void *packed, void *scratch) {
    const int32_t k = conv_k(p);
    const sieve_k4_view v = sieve_k4(packed, p->out_c, k);
    const uint8_t *staged = (const uint8_t *)scratch;
    const sieve_conv_walk t = sieve_conv_stage(p, 128, (uint8_t *)scratch);
    const int32_t block_stride = v.k4 * 16;
    // The output zero point, the clamp as bytes, and the zero point as int16 (the short form's).
    const __m512i zp_lo_hi[4] = {_mm512_set1_epi32(p->output_zero_point), _mm512_set1_epi8((char)p->act_min),
                                 _mm512_set1_epi8((char)p->act_max), _mm512_set1_epi16((short)p->output_zero_point)};
    const int32_t oc_blocks = v.ocp / 16;
    // Near-equal pixel tiles: 14 columns run as 7 + 7, not 8 + 6.
    const int32_t tiles = (p->out_w + MAX_TILE_PIXELS - 1) / MAX_TILE_PIXELS;
    // Rows outside when the staged input is the larger (each row's input stays in cache across the
    // channel blocks); channel blocks outside when the weights are (ResNet's 7x7x512 layers: 2.4 MB
    // of weights read once, not once per output row).
    const int blocks_outside = (size_t)v.ocp * v.k4 > sieve_conv_stage_size(p);
    const int32_t outer = blocks_outside ? (oc_blocks + 1) / 2 : p->out_h, inner = blocks_outside ? p->out_h : (oc_blocks + 1) / 2;
    for (int32_t i = 0; i < outer; i++) {
        for (int32_t j = 0; j < inner; j++) {
            const int32_t oy = blocks_outside ? j : i, ob = 2 * (blocks_outside ? i : j);
            const uint8_t *x_row = staged + (size_t)oy * t.pixel_row_stride;
            int8_t *out_row = p->output + (size_t)oy * p->out_w * p->out_c;
            const int blocks = ob + 1 < oc_blocks ? 2 : 1;
            const int32_t last_channels = p->out_c - (ob + blocks - 1) * 16;
            const __mmask16 last_mask = last_channels >= 16 ? 0xFFFF : (__mmask16)((1u << last_channels) - 1);
            // With the channel blocks outside, the first output row reads a pair's weights from
            // memory and the next rows from L2; rows 1 and 2 fetch the next pair's two blocks into L2
            // meanwhile, one line per K4 group, so its first row does not wait on memory.
            const int8_t *pf = NULL;
            if (blocks_outside && blocks == 2 && (oy == 1 || oy == 2) && ob + 1 + oy < oc_blocks) pf = v.weights + (size_t)(ob + 1 + oy) * block_stride;
            int32_t ox = 0;
            for (int32_t tile = 0; tile < tiles; tile++) {
                const int32_t pixels = p->out_w / tiles + (tile < p->out_w % tiles ? 1 : 0);
                const uint8_t *x = x_row + (size_t)ox * t.pixel_stride;
                const int8_t *w = v.weights + (size_t)ob * block_stride;
                int8_t *out = out_row + (size_t)ox * p->out_c + 16 * ob;
                if (pf && tile == 0)
                    conv_tile_prefetching(&t, block_stride, x, w, v.bias + 16 * ob, v.multipliers + 16 * ob, rq_blocks(packed, p) + ob,
                                          rq_shorts(packed, p) + ob, out, p->out_c, last_mask, zp_lo_hi, pf, pixels);
                else
                    conv_tile_any(&t, block_stride, x, w, v.bias + 16 * ob, v.multipliers + 16 * ob, rq_blocks(packed, p) + ob,
                                  rq_shorts(packed, p) + ob, out, p->out_c, last_mask, zp_lo_hi, pixels, blocks);
                ox += pixels;
            }
        }
    }
}

SIEVE_TARGET_END
#endif
