// Depthwise convolution (depth multiplier 1) on AVX-512 VNNI. vpdpbusd adds four u8 x s8 products
// into each int32 lane, so every output row first restages the input rows its kernel reads as
// "quads": for each input column and channel, the bytes of four kernel rows side by side (a 3x3
// kernel's three rows and a zero-weight fourth), as u8 = x + 128 (the bias absorbs 128 * sum(w)).
// A 3x3 kernel then costs 3 vpdpbusd per 16 channels and output pixel instead of 9 multiplies.
//
// Channels go in blocks of 64. The byte and word unpacks that build the quads work within 128-bit
// lanes, so lane 4L + i of accumulator j holds channel 16L + 4j + i (the slices below transpose
// each row first, for channels 16j...16j + 15 in order); weights, bias and
// requantisation constants are packed in that order, and the two saturating packs at the end
// (also per 128-bit lane) put the bytes back in channel order. A 3x3 kernel at stride 1 stages
// four input rows and computes two output rows from them: the upper with weights (w0, w1, w2, 0),
// the lower with (0, w0, w1, w2), so each staged column serves twice. 3x3 kernels at stride 1 or
// 2 then run in 16-channel slices (contiguous_rows). Other kernels go a block at a time; with 16
// or 32 channels at stride 1 a block holds 4 or 2 neighbouring pixels (a 64-byte load of a row
// covers them), so no lane idles; at stride 2 every input column is staged for half an output
// each, so one whose blocks are mostly empty lanes runs the avx2 kernel instead, which is faster
// there. Multipliers > 1 stay scalar.
#if defined(__x86_64__)
#include "sieve_isa.h"
#include "sieve_pack.h"
#include "sieve_target.h"

// Before any target region: gcc binds each intrinsic to the target in force where it is declared.
#include <immintrin.h>

SIEVE_TARGET_BEGIN("avx512f,avx512bw,avx512vl,avx512vnni")
#include "requantize_avx512.h"
#include "store_avx512.h"

// The packed op, per block of 64 channels (4 accumulators of 16 lanes):
//   int8  weights[blocks][groups][kernel_w][4][16][4]   (lane's channel, kernel rows 4g...4g+3)
//   int32 bias[blocks][4][16]                           bias - 128 * sum of the channel's weights
//   int32 multipliers[blocks][4][16]
//   sieve_rq_block_avx512 requant[blocks][4]
//   sieve_rq_short_avx512 short_rq[blocks][4]          the short-multiplier form, where it holds
//   int8  lower[blocks][3][4][16][4]   3x3 stride_h 1: the weights one kernel row down (0, w0, w1, w2);
//                                      3x3 stride_h 2: two kernel rows down (0, 0, w0, w1), then
//   int8  lower_next[blocks][3][4][16][4]  3x3 stride_h 2: (w2, 0, 0, 0), for the next staged group
typedef struct {
    const int8_t *weights, *lower, *lower_next;
    const int32_t *bias, *multipliers;
    const sieve_rq_block_avx512 *requant;
    const sieve_rq_short_avx512 *short_rq;
    int32_t blocks, groups;  // 64-channel blocks; groups of four kernel rows
} dw_quad_view;

static dw_quad_view dw_quad(const void *packed, const sieve_conv_params *p) {
    dw_quad_view v;
    v.blocks = (p->out_c + 63) / 64;
    v.groups = (p->kernel_h + 3) / 4;
    v.weights = (const int8_t *)packed;
    v.bias = (const int32_t *)(v.weights + (size_t)v.blocks * v.groups * p->kernel_w * 256);
    v.multipliers = v.bias + (size_t)v.blocks * 64;
    v.requant = (const sieve_rq_block_avx512 *)(v.multipliers + (size_t)v.blocks * 64);
    v.short_rq = (const sieve_rq_short_avx512 *)(v.requant + (size_t)v.blocks * 4);
    v.lower = (const int8_t *)(v.short_rq + (size_t)v.blocks * 4);
    v.lower_next = v.lower + (size_t)v.blocks * 3 * 256;
    return v;
}

// 3x3 kernels at stride 1 or 2 run slice by slice (the contiguous path, contiguous_rows):
// staging transposes each row's 4x4 dwords first, so accumulator j holds channels 16j...16j+15 in
// order, and a block of 16 or 32 channels computes only its 1 or 2 slices.
static inline int contiguous(const sieve_conv_params *p) {
    return p->kernel_h == 3 && p->kernel_w == 3 && (p->stride_w == 1 || p->stride_w == 2);
}

// Output pixels a 64-lane block covers: elsewhere, 64 / C neighbouring pixels for C = 16 or 32 at
// stride 1 (their bytes are contiguous in a row), else 1 pixel and 64 of its channels.
static inline int32_t block_pixels(const sieve_conv_params *p) {
    return !contiguous(p) && p->stride_w == 1 && (p->in_c == 16 || p->in_c == 32) ? 64 / p->in_c : 1;
}

// The channel (within its block) of lane `lane` of accumulator j.
static inline int32_t quad_channel(const sieve_conv_params *p, int32_t j, int32_t lane) {
    return contiguous(p) ? 16 * j + lane : 16 * (lane / 4) + 4 * j + lane % 4;
}

// Bits [0, n) of a 64-bit mask.
static inline __mmask64 bits_below(int32_t n) { return n >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << n) - 1); }

// A 3x3 kernel at stride 1: two output rows a staging (the packed op holds the lower weights).
static int row_pairs(const sieve_conv_params *p) { return p->kernel_h == 3 && p->kernel_w == 3 && p->stride_h == 1; }

// A 3x3 kernel at stride_h 2 on the slices: two output rows from two staged groups of four rows,
// r...r + 3 and r + 4...r + 7 (r the upper output's first input row): the upper output with
// (w0, w1, w2, 0) on the first, the lower with (0, 0, w0, w1) on the first and (w2, 0, 0, 0) on
// the second, which is the next pair's first. Each input row is staged once instead of one and a
// half times on average, for 9 vpdpbusd per two outputs instead of 6.
static int stride2_pairs(const sieve_conv_params *p) { return contiguous(p) && p->stride_h == 2; }

// Outside the contiguous path, stride 2 or more with at most 60 % of the blocks' lanes in use: the
// avx2 kernel's op. (The slices run 3x3 stride-2 convs of 16, 24 and 72 channels at 0.6-1.0 of
// the avx2 kernel's time on Zen 4, where the block-at-a-time loop took up to 3 times it.)
static int on_avx2(const sieve_conv_params *p) {
    return !contiguous(p) && p->stride_w >= 2 && block_pixels(p) == 1 &&
           (int64_t)p->in_c * 10 <= (int64_t)(p->in_c + 63) / 64 * 64 * 6;
}

size_t sieve_dwconv_packed_size__avx512vnni(const sieve_conv_params *p) {
    if (p->out_c != p->in_c) return 0;
    if (on_avx2(p)) return sieve_dwconv_packed_size__avx2(p);
    const size_t blocks = (size_t)(p->out_c + 63) / 64, groups = (size_t)(p->kernel_h + 3) / 4;
    return blocks * (groups * (size_t)p->kernel_w * 256 + 2 * 64 * sizeof(int32_t) + 4 * sizeof(sieve_rq_block_avx512) +
                     4 * sizeof(sieve_rq_short_avx512)) +
           (row_pairs(p) ? blocks * 3 * 256 : 0) + (stride2_pairs(p) ? 2 * blocks * 3 * 256 : 0);
}

void sieve_dwconv_pack__avx512vnni(const sieve_conv_params *p, void *packed) {
    if (on_avx2(p)) { sieve_dwconv_pack__avx2(p, packed); return; }
    const dw_quad_view v = dw_quad(packed, p);
    int8_t *weights = (int8_t *)v.weights;
    int32_t *bias = (int32_t *)v.bias, *multipliers = (int32_t *)v.multipliers;
    sieve_rq_block_avx512 *requant = (sieve_rq_block_avx512 *)v.requant;
    sieve_rq_short_avx512 *short_rq = (sieve_rq_short_avx512 *)v.short_rq;
    const int32_t kw = p->kernel_w;
    for (int32_t b = 0; b < v.blocks; b++) {
        for (int32_t j = 0; j < 4; j++) {
            int32_t shifts[16];
            int64_t bounds[16];  // of the reference accumulator, bias + sum(w * x) with x in [-128, 127]
            for (int32_t lane = 0; lane < 16; lane++) {
                const int32_t c = block_pixels(p) > 1 ? quad_channel(p, j, lane) % p->out_c : b * 64 + quad_channel(p, j, lane);
                const int inside = c < p->out_c;
                uint32_t sum = 0;
                int64_t bound = inside ? (p->bias[c] < 0 ? -(int64_t)p->bias[c] : p->bias[c]) : 0;
                for (int32_t g = 0; g < v.groups; g++) {
                    for (int32_t kx = 0; kx < kw; kx++) {
                        for (int32_t r = 0; r < 4; r++) {
                            const int32_t ky = 4 * g + r;
                            const int8_t w = inside && ky < p->kernel_h ? p->weights[((size_t)ky * kw + kx) * p->out_c + c] : 0;
                            weights[((((size_t)b * v.groups + g) * kw + kx) * 4 + j) * 64 + lane * 4 + r] = w;
                            sum += (uint32_t)(int32_t)w;
                            bound += 128 * (int64_t)(w < 0 ? -w : w);
                        }
                    }
                }
                const size_t at = ((size_t)b * 4 + j) * 16 + lane;
                bias[at] = inside ? (int32_t)((uint32_t)p->bias[c] - 128u * sum) : 0;  // wraps, as the sum does
                multipliers[at] = inside ? p->multipliers[c] : 1 << 30;
                shifts[lane] = inside ? p->shifts[c] : SIEVE_PADDING_SHIFT;
                bounds[lane] = bound;
            }
            sieve_rq_block_fill(requant + (size_t)b * 4 + j, multipliers + ((size_t)b * 4 + j) * 16, shifts, p->output_zero_point);
            sieve_rq_short_fill(short_rq + (size_t)b * 4 + j, multipliers + ((size_t)b * 4 + j) * 16, shifts, bounds);
        }
    }
    int8_t *lower = (int8_t *)v.lower, *lower_next = (int8_t *)v.lower_next;
    if (row_pairs(p)) {
        // The lower row's weights: each lane's four bytes (w0, w1, w2, 0) become (0, w0, w1, w2).
        for (size_t i = 0; i < (size_t)v.blocks * 3 * 256; i += 4) {
            lower[i] = 0;
            for (int r = 1; r < 4; r++) lower[i + r] = weights[i + r - 1];
        }
    } else if (stride2_pairs(p)) {
        // (0, 0, w0, w1) on the first staged group, (w2, 0, 0, 0) on the second.
        for (size_t i = 0; i < (size_t)v.blocks * 3 * 256; i += 4) {
            lower[i] = lower[i + 1] = 0;
            lower[i + 2] = weights[i];
            lower[i + 3] = weights[i + 1];
            lower_next[i] = weights[i + 2];
            lower_next[i + 1] = lower_next[i + 2] = lower_next[i + 3] = 0;
        }
    }
}

// One output row's quads for one channel block: [groups][span_w][4 vectors]; with stride2_pairs,
// two groups, kept from one row pair to the next.
size_t sieve_dwconv_scratch_size__avx512vnni(const sieve_conv_params *p) {
    if (on_avx2(p)) return sieve_dwconv_scratch_size__avx2(p);
    if (stride2_pairs(p)) return 2 * (size_t)sieve_conv_span_w(p) * 256;
    return (size_t)(p->kernel_h + 3) / 4 * (size_t)sieve_conv_span_w(p) * 256;
}

// Four rows' bytes of the block at one input column, flipped to u8 and interleaved into quads. In
// the contiguous layout each row's dwords are transposed 4x4 first (dword 4L + j takes channels
// 16j + 4L...16j + 4L + 3), so the unpacks leave channels 16j... in accumulator j, and only the
// block's `slices` accumulators' quads are stored.
static inline __attribute__((always_inline)) void store_quads(__m512i v[4], __m512i *q, const int transpose, const int32_t slices) {
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    for (int32_t r = 0; r < 4; r++) {
        v[r] = _mm512_xor_si512(v[r], flip);
        if (transpose) v[r] = _mm512_permutexvar_epi32(order, v[r]);
    }
    const __m512i lo01 = _mm512_unpacklo_epi8(v[0], v[1]), lo23 = _mm512_unpacklo_epi8(v[2], v[3]);
    _mm512_storeu_si512(q + 0, _mm512_unpacklo_epi16(lo01, lo23));
    if (slices > 1) _mm512_storeu_si512(q + 1, _mm512_unpackhi_epi16(lo01, lo23));
    if (slices > 2) {
        const __m512i hi01 = _mm512_unpackhi_epi8(v[0], v[1]), hi23 = _mm512_unpackhi_epi8(v[2], v[3]);
        _mm512_storeu_si512(q + 2, _mm512_unpacklo_epi16(hi01, hi23));
        if (slices > 3) _mm512_storeu_si512(q + 3, _mm512_unpackhi_epi16(hi01, hi23));
    }
}

// One staged column at an edge: the four rows loaded under `valid`, merged into the padding (valid
// leaves out the pixels outside the input; the masked loads read only those bytes, so nothing
// faults past a row).
static inline __attribute__((always_inline)) void stage_edge_column(const int8_t *const rows[4], intptr_t offset, __mmask64 valid,
                                                                    __m512i pad, __m512i *q, const int transpose, const int32_t slices) {
    __m512i v[4];
    for (int32_t r = 0; r < 4; r++) {
        const int8_t *at = (const int8_t *)((uintptr_t)rows[r] + (uintptr_t)offset);
        v[r] = !rows[r] || !valid ? pad : _mm512_mask_loadu_epi8(pad, valid, at);
    }
    store_quads(v, q, transpose, slices);
}

// `count` interior columns from `from[r]`, a step of `steps[r]` bytes a column (a row above or
// below the input reads a vector of the zero point with step 0): no branch per column.
static inline __attribute__((always_inline)) void stage_interior(const int8_t *const from[4], const size_t steps[4], int32_t count,
                                                                 __mmask64 mask, __m512i *q, const int transpose, const int32_t slices) {
    for (int32_t i = 0; i < count; i++, q += 4) {
        __m512i v[4];
        for (int32_t r = 0; r < 4; r++) v[r] = _mm512_maskz_loadu_epi8(mask, from[r] + (size_t)i * steps[r]);
        store_quads(v, q, transpose, slices);
    }
}

// The quads output row oy reads, channels [c0, c0 + 64) (masked), padded taps holding the input
// zero point. Rows past the kernel's read as padding too: their weights are 0. Interior columns
// (every pixel of the block inside the input) take a plain masked load in a loop of their own.
static void stage_quads(const sieve_conv_params *p, int32_t oy, int32_t c0, __mmask64 mask, int32_t groups, int32_t span_w,
                        int32_t rows_read, int32_t slices, __m512i *quads) {
    const int32_t c = p->in_c, in_w = p->in_w, pixels = block_pixels(p), pad_left = p->pad_left;
    const __m512i pad = _mm512_set1_epi8((char)p->input_zero_point);
    // Interior columns ix: 0 <= ix - pad_left and ix - pad_left + pixels <= in_w.
    const int32_t lo = pad_left < 0 ? 0 : (pad_left > span_w ? span_w : pad_left);
    int32_t hi = pad_left + in_w - pixels + 1;
    hi = hi < lo ? lo : (hi > span_w ? span_w : hi);
    int8_t pad_row[64] __attribute__((aligned(64)));
    _mm512_store_si512(pad_row, pad);
    for (int32_t g = 0; g < groups; g++) {
        const int8_t *rows[4], *from[4];
        size_t steps[4];
        for (int32_t r = 0; r < 4; r++) {
            const int32_t ky = 4 * g + r, iy = oy * p->stride_h - p->pad_top + ky;
            rows[r] = ky < rows_read && iy >= 0 && iy < p->in_h ? p->input + (size_t)iy * in_w * c + c0 : 0;
            from[r] = rows[r] ? rows[r] + (intptr_t)(lo - pad_left) * c : pad_row;
            steps[r] = rows[r] ? (size_t)c : 0;
        }
        __m512i *q = quads + (size_t)g * span_w * 4;
        if (!contiguous(p)) stage_interior(from, steps, hi - lo, mask, q + (size_t)lo * 4, 0, 4);
        else if (slices == 4) stage_interior(from, steps, hi - lo, mask, q + (size_t)lo * 4, 1, 4);
        else stage_interior(from, steps, hi - lo, mask, q + (size_t)lo * 4, 1, slices);
        for (int32_t ix = 0; ix < span_w; ix++) {
            if (ix == lo) ix = hi;  // the interior is done
            if (ix >= span_w) break;
            const int32_t x = ix - pad_left;
            const int32_t first = x < 0 ? -x : 0, end = in_w - x < pixels ? in_w - x : pixels;
            const __mmask64 valid = end > first ? mask & bits_below(end * c) & ~bits_below(first * c) : 0;
            stage_edge_column(rows, (intptr_t)x * c, valid, pad, q + (size_t)ix * 4, contiguous(p), slices);
        }
    }
}

// `pixels` (1 or 2) output pixels of one channel block from their quads. Two at a time share the
// requantisation constants' loads and give the out-of-order core two independent chains.
static inline __attribute__((always_inline)) void quad_pixels(const __m512i *quads, int32_t span_w,
                                                              const int8_t *weights, const int32_t *bias, const int32_t *multipliers,
                                                              const sieve_rq_block_avx512 *requant, const sieve_rq_short_avx512 *shorts,
                                                              int8_t *out, size_t out_step, size_t step, const __mmask64 masks[2],
                                                              const int32_t groups, const int32_t kw, const __m512i out_zp, const __m512i zp16,
                                                              const __m512i lo, const __m512i hi, const int pixels, const int short_form) {
    // Every loop over pixels and accumulators unrolls, so acc stays in registers (clang otherwise
    // keeps it on the stack, a store and a load per vpdpbusd).
    __m512i acc[2][4];
    _Pragma("GCC unroll 2") for (int n = 0; n < pixels; n++) {
        _Pragma("GCC unroll 4") for (int j = 0; j < 4; j++) acc[n][j] = _mm512_loadu_si512(bias + 16 * j);
    }
    for (int32_t g = 0; g < groups; g++) {
        for (int32_t kx = 0; kx < kw; kx++) {
            const int8_t *w = weights + ((size_t)g * kw + kx) * 256;
            _Pragma("GCC unroll 4") for (int j = 0; j < 4; j++) {
                const __m512i wv = _mm512_loadu_si512(w + 64 * j);
                _Pragma("GCC unroll 2") for (int n = 0; n < pixels; n++) {
                    const __m512i *q = quads + ((size_t)g * span_w + (size_t)n * step + kx) * 4;
                    acc[n][j] = _mm512_dpbusd_epi32(acc[n][j], _mm512_loadu_si512(q + j), wv);
                }
            }
        }
    }
    _Pragma("GCC unroll 2") for (int n = 0; n < pixels; n++) {
        __m512i r[4];
        _Pragma("GCC unroll 4") for (int j = 0; j < 4; j++) {
            r[j] = short_form ? sieve_rq_short_apply_avx512(acc[n][j], _mm512_load_si512(shorts[j].multiplier),
                                                            _mm512_load_si512(shorts[j].round), _mm512_load_si512(shorts[j].shift))
                              : sieve_rq_block_wide_avx512(acc[n][j], multipliers + 16 * j, requant + j, out_zp);
        }
        __m512i ab = _mm512_packs_epi32(r[0], r[1]), cd = _mm512_packs_epi32(r[2], r[3]);
        // The short form's zero point goes on the int16 halves (sieve_narrow64_zp_avx512 argues why).
        if (short_form) ab = _mm512_adds_epi16(ab, zp16), cd = _mm512_adds_epi16(cd, zp16);
        const __m512i bytes = _mm512_packs_epi16(ab, cd);
        sieve_store64_avx512(out + (size_t)n * out_step, masks[n], _mm512_min_epi8(_mm512_max_epi8(bytes, lo), hi));
    }
}

// One output row of one channel block. Inlined with constant groups and kernel_w for 3x3 kernels,
// so the tap loops unroll.
static inline __attribute__((always_inline)) void quad_row(const sieve_conv_params *p, const __m512i *quads, int32_t span_w,
                                                           const int8_t *weights, const int32_t *bias, const int32_t *multipliers,
                                                           const sieve_rq_block_avx512 *requant, const sieve_rq_short_avx512 *shorts,
                                                           int8_t *out, __mmask64 mask, const int32_t groups, const int32_t kw) {
    // A step of two blocks covers 2 * pixels outputs; the last block's mask keeps only real ones.
    // Quad columns (step) and output bytes (out_step) from one block's pixels to the next's.
    const int32_t pixels = block_pixels(p), c = p->out_c, out_w = p->out_w;
    const size_t step = (size_t)pixels * p->stride_w, out_step = (size_t)pixels * c;
    const __m512i out_zp = _mm512_set1_epi32(p->output_zero_point), zp16 = _mm512_set1_epi16((short)p->output_zero_point);
    const __m512i lo = _mm512_set1_epi8((char)p->act_min), hi = _mm512_set1_epi8((char)p->act_max);
    // The short form when all four accumulators' blocks have it.
    const int short_form = shorts[0].shift[0] != 0 && shorts[1].shift[0] != 0 && shorts[2].shift[0] != 0 && shorts[3].shift[0] != 0;
    int32_t ox = 0;
    for (; ox + 2 * pixels <= out_w; ox += 2 * pixels, quads += 2 * step * 4) {
        const __mmask64 masks[2] = {mask, mask};
        if (short_form)
            quad_pixels(quads, span_w, weights, bias, multipliers, requant, shorts, out + (size_t)ox * c, out_step, step, masks, groups, kw,
                        out_zp, zp16, lo, hi, 2, 1);
        else
            quad_pixels(quads, span_w, weights, bias, multipliers, requant, shorts, out + (size_t)ox * c, out_step, step, masks, groups, kw,
                        out_zp, zp16, lo, hi, 2, 0);
    }
    for (; ox < out_w; ox += pixels, quads += step * 4) {
        const int32_t left = out_w - ox < pixels ? out_w - ox : pixels;
        const __mmask64 masks[2] = {mask & bits_below(left * c), 0};
        quad_pixels(quads, span_w, weights, bias, multipliers, requant, shorts, out + (size_t)ox * c, out_step, step, masks, groups, kw,
                    out_zp, zp16, lo, hi, 1, short_form);
    }
}

// The contiguous path: one 16-channel slice of one or two output rows (two: a row pair, the lower
// row with the weights one kernel row down), four pixels at a time. The slice's weights and
// requantisation constants stay in registers and each staged column is loaded once for every
// output it feeds: the kernel is bound by vpdpbusd and vpmuldq, not by loads (the quads loaded
// for every product, with weights and constants from memory, ran at about half the speed).
typedef struct {
    const __m512i *quads;       // staged column 0, this slice
    const __m512i *quads_next;  // stride2_pairs: the second staged group's column 0, this slice
    const int8_t *weights[3];   // [kx][4][64] from this slice's first vector: upper row, lower row, lower row on quads_next
    const int32_t *bias, *multipliers;
    const sieve_rq_block_avx512 *requant;
    const sieve_rq_short_avx512 *short_rq;
    int8_t *out[2];             // pixel 0 of each row, this slice's first channel
    size_t pixel_bytes;         // output bytes from one pixel to the next
    int32_t out_w, lanes;       // lanes: channels of the slice inside the tensor (1...16)
    int32_t output_zero_point, act_min, act_max;
} slice_job;

// How a slice requantises: the 64-bit form, the 32-bit one (high shifts) or the short-multiplier one.
enum { RQ_WIDE, RQ_HIGH, RQ_SHORT };

static inline __attribute__((always_inline)) __m512i slice_requantize(__m512i acc, const sieve_rq_high_regs *regs, const slice_job *j,
                                                                      __m512i zp, const int form) {
    if (form == RQ_SHORT) return sieve_rq_short_apply_avx512(acc, regs->multiplier, regs->round, regs->shift);  // zp at the narrowing
    return form == RQ_HIGH ? sieve_rq_high_avx512(acc, regs) : sieve_rq_block_wide_avx512(acc, j->multipliers, j->requant, zp);
}

// `pixels` (1, 2 or 4) outputs of each row from the staged columns at q.
static inline __attribute__((always_inline)) void slice_pixels(const slice_job *j, const __m512i *q, const __m512i *q_next, size_t ox,
                                                               const __m512i w[3][3], __m512i bias, const sieve_rq_high_regs *regs,
                                                               __m512i zp, __m512i zp16, __m512i lo, __m512i hi, __mmask16 lanes, const int pixels,
                                                               const int rows, const int stride, const int split, const int form) {
    __m512i acc[2][4];
    _Pragma("GCC unroll 2") for (int r = 0; r < rows; r++) {
        _Pragma("GCC unroll 4") for (int n = 0; n < pixels; n++) acc[r][n] = bias;
    }
    // Column by column, each loaded once: pixel n reads columns n * stride + kx.
    _Pragma("GCC unroll 10") for (int col = 0; col < (pixels - 1) * stride + 3; col++) {
        const __m512i v = _mm512_load_si512(q + (size_t)col * 4);
        _Pragma("GCC unroll 4") for (int n = 0; n < pixels; n++) {
            const int kx = col - n * stride;
            if (kx < 0 || kx > 2) continue;
            _Pragma("GCC unroll 2") for (int r = 0; r < rows; r++) acc[r][n] = _mm512_dpbusd_epi32(acc[r][n], v, w[r][kx]);
        }
    }
    // stride2_pairs: the lower row's third kernel row, from the second staged group.
    if (split) {
        _Pragma("GCC unroll 10") for (int col = 0; col < (pixels - 1) * stride + 3; col++) {
            const __m512i v = _mm512_load_si512(q_next + (size_t)col * 4);
            _Pragma("GCC unroll 4") for (int n = 0; n < pixels; n++) {
                const int kx = col - n * stride;
                if (kx < 0 || kx > 2) continue;
                acc[1][n] = _mm512_dpbusd_epi32(acc[1][n], v, w[2][kx]);
            }
        }
    }
    _Pragma("GCC unroll 2") for (int r = 0; r < rows; r++) {
        __m512i out[4];
        _Pragma("GCC unroll 4") for (int n = 0; n < 4; n++) out[n] = n < pixels ? slice_requantize(acc[r][n], regs, j, zp, form) : out[0];
        const __m512i narrow = form == RQ_SHORT ? sieve_narrow64_zp_avx512(out[0], out[1], out[2], out[3], zp16)
                                                : sieve_narrow64_avx512(out[0], out[1], out[2], out[3]);
        const __m512i bytes = _mm512_min_epi8(_mm512_max_epi8(narrow, lo), hi);
        int8_t *at = j->out[r] + ox * j->pixel_bytes;
        sieve_store16_avx512(at, lanes, _mm512_castsi512_si128(bytes));
        if (pixels > 1) sieve_store16_avx512(at + j->pixel_bytes, lanes, _mm512_extracti32x4_epi32(bytes, 1));
        if (pixels > 2) sieve_store16_avx512(at + 2 * j->pixel_bytes, lanes, _mm512_extracti32x4_epi32(bytes, 2));
        if (pixels > 3) sieve_store16_avx512(at + 3 * j->pixel_bytes, lanes, _mm512_extracti32x4_epi32(bytes, 3));
    }
}

static inline __attribute__((always_inline)) void slice_rows(const slice_job *j, const int rows, const int stride, const int split,
                                                             const int form) {
    sieve_rq_high_regs regs = sieve_rq_high_load(j->multipliers, j->requant);
    if (form == RQ_SHORT) {
        regs.multiplier = _mm512_load_si512(j->short_rq->multiplier);
        regs.round = _mm512_load_si512(j->short_rq->round);
        regs.shift = _mm512_load_si512(j->short_rq->shift);
    }
    const __m512i zp = _mm512_set1_epi32(j->output_zero_point), bias = _mm512_loadu_si512(j->bias);
    const __m512i zp16 = _mm512_set1_epi16((short)j->output_zero_point);
    const __m512i lo = _mm512_set1_epi8((char)j->act_min), hi = _mm512_set1_epi8((char)j->act_max);
    const __mmask16 lanes = (__mmask16)((1u << j->lanes) - 1);
    __m512i w[3][3];
    _Pragma("GCC unroll 3") for (int r = 0; r < rows + split; r++) {
        _Pragma("GCC unroll 3") for (int kx = 0; kx < 3; kx++) w[r][kx] = _mm512_loadu_si512(j->weights[r] + kx * 256);
    }
    size_t ox = 0;
    const size_t out_w = (size_t)j->out_w;
#define SLICE_PIXELS(n) \
    slice_pixels(j, j->quads + ox * stride * 4, split ? j->quads_next + ox * stride * 4 : 0, ox, w, bias, &regs, zp, zp16, lo, hi, lanes, n, rows, stride, split, form)
    for (; ox + 4 <= out_w; ox += 4) SLICE_PIXELS(4);
    if (ox + 2 <= out_w) {
        SLICE_PIXELS(2);
        ox += 2;
    }
    if (ox < out_w) SLICE_PIXELS(1);
#undef SLICE_PIXELS
}

// slice_rows with its shape's constants, so every loop above unrolls.
static void slice_rows_dispatch(const slice_job *j, int rows, int stride, int split, int form) {
#define SLICE_ROWS(r, st, sp) \
    if (form == RQ_SHORT) slice_rows(j, r, st, sp, RQ_SHORT); \
    else if (form == RQ_HIGH) slice_rows(j, r, st, sp, RQ_HIGH); \
    else slice_rows(j, r, st, sp, RQ_WIDE)
    if (rows == 2 && split) {
        if (stride == 1) SLICE_ROWS(2, 1, 1); else SLICE_ROWS(2, 2, 1);
    } else if (rows == 2) {
        if (stride == 1) SLICE_ROWS(2, 1, 0); else SLICE_ROWS(2, 2, 0);
    } else {
        if (stride == 1) SLICE_ROWS(1, 1, 0); else SLICE_ROWS(1, 2, 0);
    }
#undef SLICE_ROWS
}

// One block's slices for output rows [oy, oy + rows): `first` holds the block's staged group for
// oy, `second` (stride2_pairs) the one after it.
static void contiguous_block_rows(const sieve_conv_params *p, const dw_quad_view *v, int32_t b, int32_t oy, int32_t rows,
                                  const __m512i *first, const __m512i *second) {
    const int32_t c = p->out_c, c0 = b * 64, slices = (c - c0 + 15) / 16 < 4 ? (c - c0 + 15) / 16 : 4;
    const int split = second != 0 && rows == 2;
    const size_t at = (size_t)b * 3 * 256;
    for (int32_t s = 0; s < slices; s++) {
        slice_job j;
        j.quads = first + s;
        j.quads_next = split ? second + s : 0;
        j.weights[0] = v->weights + at + (size_t)s * 64;
        j.weights[1] = rows == 2 ? v->lower + at + (size_t)s * 64 : 0;
        j.weights[2] = split ? v->lower_next + at + (size_t)s * 64 : 0;
        j.bias = v->bias + (size_t)b * 64 + (size_t)s * 16;
        j.multipliers = v->multipliers + (size_t)b * 64 + (size_t)s * 16;
        j.requant = v->requant + (size_t)b * 4 + s;
        j.short_rq = v->short_rq + (size_t)b * 4 + s;
        j.out[0] = p->output + (size_t)oy * p->out_w * c + c0 + 16 * s;
        j.out[1] = j.out[0] + (size_t)p->out_w * c;
        j.pixel_bytes = (size_t)c;
        j.out_w = p->out_w;
        j.lanes = c - c0 - 16 * s < 16 ? c - c0 - 16 * s : 16;
        j.output_zero_point = p->output_zero_point;
        j.act_min = p->act_min;
        j.act_max = p->act_max;
        const int form = j.short_rq->shift[0] != 0 ? RQ_SHORT : j.requant->high_shift[0] != 0 ? RQ_HIGH : RQ_WIDE;
        slice_rows_dispatch(&j, rows, p->stride_w, split, form);
    }
}

// The contiguous path. Stride 1: output rows (row pairs) outer and channel blocks inner, so a
// row's input stays in cache from one block to the next (block by block, MobileNetV2's 112x112x96
// input went through L2 twice); each block's columns are staged, then computed slice by slice,
// slices wholly past the channels skipped. stride2_pairs: blocks outer, so the two staged groups
// a block keeps from one row pair to the next are the only ones (and stay in cache).
static void contiguous_rows(const sieve_conv_params *p, const dw_quad_view *v, __m512i *quads) {
    const int32_t c = p->out_c, span_w = sieve_conv_span_w(p), pairs = row_pairs(p);
    if (stride2_pairs(p)) {
        __m512i *groups[2] = {quads, quads + (size_t)span_w * 4};
        for (int32_t b = 0; b < v->blocks; b++) {
            const int32_t c0 = b * 64, slices = (c - c0 + 15) / 16 < 4 ? (c - c0 + 15) / 16 : 4;
            const __mmask64 mask = bits_below(c - c0);
            stage_quads(p, 0, c0, mask, 1, span_w, 4, slices, groups[0]);
            for (int32_t oy = 0, pair = 0; oy < p->out_h; oy += 2, pair++) {
                const int32_t rows = oy + 1 < p->out_h ? 2 : 1;
                __m512i *first = groups[pair % 2], *second = groups[(pair + 1) % 2];
                if (rows == 2) stage_quads(p, oy + 2, c0, mask, 1, span_w, 4, slices, second);
                contiguous_block_rows(p, v, b, oy, rows, first, second);
            }
        }
        return;
    }
    for (int32_t oy = 0; oy < p->out_h; oy += pairs ? 2 : 1) {
        const int32_t rows = pairs && oy + 1 < p->out_h ? 2 : 1;
        for (int32_t b = 0; b < v->blocks; b++) {
            const int32_t c0 = b * 64, slices = (c - c0 + 15) / 16 < 4 ? (c - c0 + 15) / 16 : 4;
            stage_quads(p, oy, c0, bits_below(c - c0), 1, span_w, pairs ? 4 : 3, slices, quads);
            contiguous_block_rows(p, v, b, oy, rows, quads, 0);
        }
    }
}

void sieve_dwconv_s8__avx512vnni(const sieve_conv_params *p, const void *packed, void *scratch) {
    if (on_avx2(p)) { sieve_dwconv_s8__avx2(p, packed, scratch); return; }
    const dw_quad_view v = dw_quad(packed, p);
    const int32_t c = p->in_c, kw = p->kernel_w, span_w = sieve_conv_span_w(p);
    const int is_3x3 = p->kernel_h == 3 && kw == 3;
    __m512i *quads = (__m512i *)scratch;
    if (contiguous(p)) {
        contiguous_rows(p, &v, quads);
        return;
    }
    for (int32_t b = 0; b < v.blocks; b++) {
        const int32_t c0 = b * 64;
        const __mmask64 mask = bits_below(block_pixels(p) * (c - c0));
        const int8_t *weights = v.weights + (size_t)b * v.groups * kw * 256;
        const int32_t *bias = v.bias + (size_t)b * 64, *multipliers = v.multipliers + (size_t)b * 64;
        const sieve_rq_block_avx512 *requant = v.requant + (size_t)b * 4;
        const sieve_rq_short_avx512 *shorts = v.short_rq + (size_t)b * 4;
        if (row_pairs(p)) {
            const int8_t *lower = v.lower + (size_t)b * 3 * 256;
            for (int32_t oy = 0; oy < p->out_h; oy += 2) {
                stage_quads(p, oy, c0, mask, 1, span_w, 4, 4, quads);
                int8_t *out = p->output + (size_t)oy * p->out_w * c + c0;
                quad_row(p, quads, span_w, weights, bias, multipliers, requant, shorts, out, mask, 1, 3);
                if (oy + 1 < p->out_h) quad_row(p, quads, span_w, lower, bias, multipliers, requant, shorts, out + (size_t)p->out_w * c, mask, 1, 3);
            }
            continue;
        }
        for (int32_t oy = 0; oy < p->out_h; oy++) {
            stage_quads(p, oy, c0, mask, v.groups, span_w, p->kernel_h, 4, quads);
            int8_t *out = p->output + (size_t)oy * p->out_w * c + c0;
            if (is_3x3) quad_row(p, quads, span_w, weights, bias, multipliers, requant, shorts, out, mask, 1, 3);
            else quad_row(p, quads, span_w, weights, bias, multipliers, requant, shorts, out, mask, v.groups, kw);
        }
    }
}

SIEVE_TARGET_END
#endif
