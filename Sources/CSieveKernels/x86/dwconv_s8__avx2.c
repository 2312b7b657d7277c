// Depthwise convolution (depth multiplier 1) on AVX2: vpmaddwd over pairs of taps. 3x3 kernels at
// stride_w 1 or 2 (MobileNetV2's) take a tile of their own (dw3x3_pixels): taps paired across
// kernel rows so one column pair serves the pixels beside it. Otherwise input rows are
// staged padded into a ring of kernel_h rows and widened to int16 as they are loaded (vpmovsxbw
// from memory); for a pixel, 16 channels and taps t, t + 1, vpunpcklwd /
// vpunpckhwd of the two taps' int16 inputs give (x_t, x_t+1) pairs of channels 0-3, 8-11 and 4-7,
// 12-15, and vpmaddwd by the weights packed in that order, (w_t, w_t+1) as int16, adds both products
// into each channel's int32 lane: 32 MACs for 2 loads, 2 shuffles, 2 vpmaddwd, 2 vpaddd (vpmulld
// took 8 MACs per sign extension, multiply and add). An odd last tap pairs with a zero weight.
// Six pixels per weight load (four ran 4-5 % slower). The sums stay in that lane order: the bias
// and the 32-bit requantisation constants are packed in it too, so a pixel's requantisation needs
// no permute and two pixels share one narrowing. Multipliers > 1 stay scalar.
#if defined(__x86_64__)
#include "sieve_isa.h"
#include "sieve_pack.h"
#include "sieve_target.h"

// Before any target region: gcc binds each intrinsic to the target in force where it is declared.
#include <immintrin.h>

SIEVE_TARGET_BEGIN("avx2")
#include <string.h>
#include "requantize_avx2.h"

#define PIXELS 6
#define PIXELS3 4  // the 3x3 tile: 8 accumulators (5 measured slower: clang spilled them); the dispatch below takes 1-4

// Packed (cp = out_c rounded up to 16, pairs = taps rounded up to 2, / 2):
//   int32 bias[cp], multiplier[cp], shift[cp]
//   int16 weights[pairs][cp / 16][2][8][2]   half 0: channels 0-3, 8-11; half 1: 4-7, 12-15
//   sieve_rq_block_avx2[cp / 8], sieve_rq32_block_avx2[cp / 16] (lane order)
//   int32 lane_bias[cp], lane_multiplier[cp], lane_multiplier_odd[cp] (lane order: per 16 channels,
//   0-3, 8-11, 4-7, 12-15; the odd multipliers as sieve_odd_lanes would make them)
//   short_rq[cp / 16]  the short-multiplier form of each block (sieve_rq_short_lane), in lane order
typedef struct {
    int32_t multiplier[16], round[16], shift[16];
    int32_t usable, unused[15];
} short_rq;

typedef struct {
    const int32_t *bias, *multipliers, *shifts, *lane_bias, *lane_m, *lane_m_odd;
    const int16_t *weights;
    const sieve_rq_block_avx2 *blocks;
    const sieve_rq32_block_avx2 *blocks32;
    const short_rq *shorts;
    int32_t cp, pairs;
} dw_view;

static dw_view dw(const void *packed, const sieve_conv_params *p) {
    dw_view v;
    v.cp = sieve_round_up(p->out_c, 16);
    v.pairs = (p->kernel_h * p->kernel_w + 1) / 2;
    v.bias = (const int32_t *)packed;
    v.multipliers = v.bias + v.cp;
    v.shifts = v.multipliers + v.cp;
    v.weights = (const int16_t *)(v.shifts + v.cp);
    v.blocks = (const sieve_rq_block_avx2 *)(v.weights + (size_t)v.pairs * v.cp * 2);
    v.blocks32 = (const sieve_rq32_block_avx2 *)(v.blocks + v.cp / 8);
    v.lane_bias = (const int32_t *)(v.blocks32 + v.cp / 16);
    v.lane_m = v.lane_bias + v.cp;
    v.lane_m_odd = v.lane_m + v.cp;
    v.shorts = (const short_rq *)(v.lane_m_odd + v.cp);
    return v;
}

size_t sieve_dwconv_packed_size__avx2(const sieve_conv_params *p) {
    if (p->out_c != p->in_c) return 0;
    const size_t cp = (size_t)sieve_round_up(p->out_c, 16), pairs = (size_t)(p->kernel_h * p->kernel_w + 1) / 2;
    return cp * 3 * sizeof(int32_t) + pairs * cp * 2 * sizeof(int16_t) + cp / 8 * sizeof(sieve_rq_block_avx2) +
           cp / 16 * sizeof(sieve_rq32_block_avx2) + cp * 3 * sizeof(int32_t) + cp / 16 * sizeof(short_rq);
}

// The channel of lane i (0-7) of half h of a 16-channel block.
static inline int32_t lane_channel(int h, int i) { return (i < 4 ? i : i + 4) + 4 * h; }
// The channel of lane i (0-15) of the lane-ordered block: 0-3, 8-11, 4-7, 12-15.
static inline int32_t lane_order(int i) { return lane_channel(i / 8, i % 8); }

// The 3x3 kernel pairs taps across rows, (0,3) (1,4) (2,5), then (6,7) and (8, none), so that the
// 3x3 tile (below) reuses each column's row 0/1 pair for three pixels; other kernels pair taps in
// order. Pair p holds taps tap_at(2p) and tap_at(2p + 1); a tap >= taps is a zero weight.
static inline int is_3x3(const sieve_conv_params *p) { return p->kernel_h == 3 && p->kernel_w == 3; }
static inline int32_t tap_at(const sieve_conv_params *p, int32_t i) {
    static const int8_t order[10] = {0, 3, 1, 4, 2, 5, 6, 7, 8, 9};
    return is_3x3(p) ? order[i] : i;
}

void sieve_dwconv_pack__avx2(const sieve_conv_params *p, void *packed) {
    const dw_view v = dw(packed, p);
    const int32_t taps = p->kernel_h * p->kernel_w;
    int32_t *bias = (int32_t *)v.bias, *m = (int32_t *)v.multipliers, *s = (int32_t *)v.shifts;
    for (int32_t c = 0; c < v.cp; c++) {
        bias[c] = c < p->out_c ? p->bias[c] : 0;
        m[c] = c < p->out_c ? p->multipliers[c] : 1 << 30;
        s[c] = c < p->out_c ? p->shifts[c] : SIEVE_PADDING_SHIFT;
    }
    int16_t *w = (int16_t *)v.weights;
    for (int32_t pair = 0; pair < v.pairs; pair++) {
        for (int32_t b = 0; b < v.cp / 16; b++) {
            for (int h = 0; h < 2; h++) {
                for (int i = 0; i < 8; i++) {
                    const int32_t c = 16 * b + lane_channel(h, i);
                    for (int t = 0; t < 2; t++) {
                        const int32_t tap = tap_at(p, 2 * pair + t);
                        *w++ = (int16_t)(c < p->out_c && tap < taps ? p->weights[(size_t)tap * p->out_c + c] : 0);
                    }
                }
            }
        }
    }
    sieve_rq_block_avx2 *blocks = (sieve_rq_block_avx2 *)v.blocks;
    for (int32_t c = 0; c < v.cp; c += 8) sieve_rq_block_avx2_fill(blocks + c / 8, v.multipliers + c, v.shifts + c);
    sieve_rq32_block_avx2 *blocks32 = (sieve_rq32_block_avx2 *)v.blocks32;
    int32_t *lane_bias = (int32_t *)v.lane_bias, *lane_m = (int32_t *)v.lane_m, *lane_m_odd = (int32_t *)v.lane_m_odd;
    for (int32_t b = 0; b < v.cp / 16; b++) {
        int32_t shifts[16];
        for (int i = 0; i < 16; i++) {
            const int32_t c = 16 * b + lane_order(i);
            shifts[i] = c < p->out_c ? v.shifts[c] : 33;  // padding channels: any shift the 32-bit form takes
            lane_bias[16 * b + i] = v.bias[c];
            lane_m[16 * b + i] = v.multipliers[c];
            lane_m_odd[16 * b + i] = v.multipliers[16 * b + lane_order(i | 1)];
        }
        sieve_rq32_avx2_fill(blocks32 + b, shifts, 16);
        // The short-multiplier form: each lane's accumulators are its bias plus at most 128 * sum|w|.
        short_rq *q = (short_rq *)v.shorts + b;
        q->usable = 1;
        for (int i = 0; i < 15; i++) q->unused[i] = 0;
        for (int i = 0; i < 16; i++) {
            const int32_t ch = 16 * b + lane_order(i);
            int64_t bound = ch < p->out_c ? (p->bias[ch] < 0 ? -(int64_t)p->bias[ch] : p->bias[ch]) : 0;
            for (int32_t t = 0; ch < p->out_c && t < taps; t++) {
                const int8_t w8 = p->weights[(size_t)t * p->out_c + ch];
                bound += 128 * (int64_t)(w8 < 0 ? -w8 : w8);
            }
            int32_t m = 0, s = 0;
            q->usable &= sieve_rq_short_lane(v.multipliers[ch], v.shifts[ch], bound, &m, &s);
            q->multiplier[i] = m;
            q->shift[i] = s;
            q->round[i] = s > 0 ? (int32_t)(1u << (s - 1)) : 0;
        }
    }
}

// Scratch: the tap offsets (int32, one more for the odd tap's partner), then a ring of kernel_h
// staged input rows (int8, padded; 64 bytes of slack each for the last channel block's 16-byte
// loads). Input row r of the span lives in slot r % kernel_h, so an output row's kernel_h rows are
// in distinct slots and each row is staged once. The ring stays in L1/L2 where a whole staged band
// (and its int16 copy) of a 112x112x96 layer spilled to memory.
static size_t offsets_size(const sieve_conv_params *p) { return (size_t)sieve_round_up((p->kernel_h * p->kernel_w + 1) * 4, 64); }
// The 3x3 tile (stride_w 1 or 2) reads the same int8 ring as the general tile. (Rows staged as int16,
// so the tile loads without vpmovsxbw, ran slower in MobileNetV2: at stride 1 by about 7 % over its
// 13 such layers, at stride 2 by 3-15 %.) Its slots hold one column more than the span: the tile's
// last (w8, 0) pair reads it against a zero weight.
static int uses_tile3(const sieve_conv_params *p) { return is_3x3(p) && (p->stride_w == 1 || p->stride_w == 2); }
static size_t slot_size(const sieve_conv_params *p) {
    return (size_t)sieve_round_up((sieve_conv_span_w(p) + uses_tile3(p)) * p->in_c, 64) + 64;
}

size_t sieve_dwconv_scratch_size__avx2(const sieve_conv_params *p) { return offsets_size(p) + (size_t)p->kernel_h * slot_size(p); }

// Stages span row r of the band, padded with the zero point, into buffer `row`.
static void stage_row(const sieve_conv_params *p, int32_t r, int8_t *row) {
    sieve_conv_params one = *p;
    one.out_h = 1, one.stride_h = 1, one.kernel_h = 1, one.pad_top = p->pad_top - r;
    sieve_pad_input(&one, 0, (uint8_t *)row);
}

// Sums of `pixels` pixels from the bias (bias0, bias1 in lane order): acc[2j] channels 0-3 | 8-11,
// acc[2j + 1] 4-7 | 12-15 of pixel j. A local array indexed by unrolled constants stays in
// registers (acc, indexed at run time by the caller, is written once at the end).
static inline __attribute__((always_inline)) void dw_pixels(const int8_t *x, const int32_t *offsets, int32_t pixel_stride,
                                                           const int16_t *w, int32_t pairs, int32_t pair_stride, __m256i bias0,
                                                           __m256i bias1, __m256i acc[2 * PIXELS], const int pixels) {
    __m256i s[2 * PIXELS];
    for (int j = 0; j < pixels; j++) s[2 * j] = bias0, s[2 * j + 1] = bias1;
    for (int32_t pair = 0; pair < pairs; pair++) {
        const __m256i w0 = _mm256_load_si256((const __m256i *)(w + (size_t)pair * pair_stride));
        const __m256i w1 = _mm256_load_si256((const __m256i *)(w + (size_t)pair * pair_stride + 16));
        const int8_t *x0 = x + offsets[2 * pair], *x1 = x + offsets[2 * pair + 1];
        for (int j = 0; j < pixels; j++) {
            // vpmovsxbw from memory: one instruction, as the load of a pre-widened int16 copy was.
            const __m256i a = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(x0 + (size_t)j * pixel_stride)));
            const __m256i b = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(x1 + (size_t)j * pixel_stride)));
            s[2 * j] = _mm256_add_epi32(s[2 * j], _mm256_madd_epi16(_mm256_unpacklo_epi16(a, b), w0));
            s[2 * j + 1] = _mm256_add_epi32(s[2 * j + 1], _mm256_madd_epi16(_mm256_unpackhi_epi16(a, b), w1));
        }
    }
    for (int j = 0; j < 2 * pixels; j++) acc[j] = s[j];
}

// The 3x3 tile: `pixels` pixels of one output row, 16 channels, from the bias. r0, r1, r2 point at
// the tile's first input column of the staged kernel rows 0-2, `c` bytes per column. Each
// column's rows 0 and 1 are paired once (vpunpck of the two rows) and multiplied by (w[0][kx],
// w[1][kx]) for every pixel that reads the column at kx: up to three pixels at stride 1, two at
// stride 2. Row 2 pairs column k with k + 1, (w[2][0], w[2][1]) for the pixel starting at k and
// (w[2][2], 0) for the one starting at k - 2. A tile of 4 pixels at stride 1 takes 19 vpmovsxbw
// and 24 vpunpck (the general tile: 40 and 40) for the same 40 vpmaddwd.
static inline __attribute__((always_inline)) void dw3x3_pixels(const int8_t *r0, const int8_t *r1, const int8_t *r2, int32_t c,
                                                              const int16_t *w, int32_t pair_stride, __m256i bias0, __m256i bias1,
                                                              __m256i acc[2 * PIXELS], const int pixels, const int stride) {
    __m256i s[2 * PIXELS3];
    for (int j = 0; j < pixels; j++) s[2 * j] = bias0, s[2 * j + 1] = bias1;
#define DW3_W(pair, h) _mm256_load_si256((const __m256i *)(w + (size_t)(pair) * pair_stride + 16 * (h)))
#define DW3_X(row, k) _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)((row) + (size_t)(k) * c)))
    const int cols = (pixels - 1) * stride + 3;
    _Pragma("GCC unroll 16") for (int k = 0; k < cols; k++) {
        const __m256i a = DW3_X(r0, k), b = DW3_X(r1, k);
        const __m256i lo = _mm256_unpacklo_epi16(a, b), hi = _mm256_unpackhi_epi16(a, b);
        _Pragma("GCC unroll 8") for (int j = 0; j < pixels; j++) {
            const int kx = k - j * stride;
            if (kx < 0 || kx > 2) continue;
            s[2 * j] = _mm256_add_epi32(s[2 * j], _mm256_madd_epi16(lo, DW3_W(kx, 0)));
            s[2 * j + 1] = _mm256_add_epi32(s[2 * j + 1], _mm256_madd_epi16(hi, DW3_W(kx, 1)));
        }
        if (k % stride != 0) continue;
        const int first = k / stride, second = k >= 2 ? (k - 2) / stride : -1;
        if (first >= pixels && second < 0) continue;
        const __m256i x = DW3_X(r2, k), y = DW3_X(r2, k + 1);
        const __m256i lo2 = _mm256_unpacklo_epi16(x, y), hi2 = _mm256_unpackhi_epi16(x, y);
        if (first < pixels) {
            s[2 * first] = _mm256_add_epi32(s[2 * first], _mm256_madd_epi16(lo2, DW3_W(3, 0)));
            s[2 * first + 1] = _mm256_add_epi32(s[2 * first + 1], _mm256_madd_epi16(hi2, DW3_W(3, 1)));
        }
        if (second >= 0) {
            s[2 * second] = _mm256_add_epi32(s[2 * second], _mm256_madd_epi16(lo2, DW3_W(4, 0)));
            s[2 * second + 1] = _mm256_add_epi32(s[2 * second + 1], _mm256_madd_epi16(hi2, DW3_W(4, 1)));
        }
    }
#undef DW3_W
#undef DW3_X
    for (int j = 0; j < 2 * pixels; j++) acc[j] = s[j];
}

// A 3x3 tile of 1...PIXELS3 pixels at stride 1 or 2, with both as constants.
static inline __attribute__((always_inline)) void dw3x3_tile(const int8_t *r0, const int8_t *r1, const int8_t *r2, int32_t c,
                                                            const int16_t *w, int32_t pair_stride, __m256i bias0, __m256i bias1,
                                                            __m256i acc[2 * PIXELS], int pixels, int stride) {
#define DW3_CASE(n, st) dw3x3_pixels(r0, r1, r2, c, w, pair_stride, bias0, bias1, acc, n, st)
    if (stride == 1) {
        if (pixels == 4) DW3_CASE(4, 1); else if (pixels == 3) DW3_CASE(3, 1);
        else if (pixels == 2) DW3_CASE(2, 1); else DW3_CASE(1, 1);
    } else {
        if (pixels == 4) DW3_CASE(4, 2); else if (pixels == 3) DW3_CASE(3, 2);
        else if (pixels == 2) DW3_CASE(2, 2); else DW3_CASE(1, 2);
    }
#undef DW3_CASE
}

// The 32-bit requantisation constants of one block, in lane order.
typedef struct {
    __m256i m[2], m_odd[2], round[2], shift[2];
} lane_rq;

// Requantised int16 (+ zero point, saturated) of one pixel's sums, channels 0-15 as 0-7 | 8-15:
// vpackssdw of lanes 0-3 | 8-11 and 4-7 | 12-15 puts them in channel order. short_form: the
// block's short multipliers are in m, with their round and shift (one vpmulld a half).
static inline __attribute__((always_inline)) __m256i lane_rq16(const lane_rq *q, __m256i a0, __m256i a1, __m256i zp16,
                                                               const int short_form) {
    __m256i r0, r1;
    if (short_form) {
        r0 = _mm256_srav_epi32(_mm256_add_epi32(_mm256_mullo_epi32(a0, q->m[0]), q->round[0]), q->shift[0]);
        r1 = _mm256_srav_epi32(_mm256_add_epi32(_mm256_mullo_epi32(a1, q->m[1]), q->round[1]), q->shift[1]);
    } else {
        r0 = sieve_rq32_avx2(a0, q->m[0], q->m_odd[0], q->round[0], q->shift[0]);
        r1 = sieve_rq32_avx2(a1, q->m[1], q->m_odd[1], q->round[1], q->shift[1]);
    }
    return _mm256_adds_epi16(_mm256_packs_epi32(r0, r1), zp16);
}

// Two pixels' int16 results to int8, clamped (exact as sieve_narrow16_avx2 argues): pixel A's 16
// bytes in the low half, B's in the high half.
static inline __m256i narrow_two(__m256i a, __m256i b, __m256i lo8, __m256i hi8) {
    const __m256i bytes = _mm256_min_epi8(_mm256_max_epi8(_mm256_packs_epi16(a, b), lo8), hi8);  // A0-7 B0-7 | A8-15 B8-15
    return _mm256_permute4x64_epi64(bytes, 0xD8);
}

// A 3x3 tile of 16 real channels with the 32-bit requantisation, from the sums to the output in
// registers: 16-byte stores, no round trip of the sums through the stack.
static inline __attribute__((always_inline)) void dw3x3_full(const int8_t *r0, const int8_t *r1, const int8_t *r2, int32_t c,
                                                            const int16_t *w, int32_t pair_stride, __m256i bias0, __m256i bias1,
                                                            const lane_rq *q, __m256i zp16, __m256i lo8, __m256i hi8, int8_t *out,
                                                            const int pixels, const int stride, const int short_form) {
    __m256i acc[2 * PIXELS];
    dw3x3_pixels(r0, r1, r2, c, w, pair_stride, bias0, bias1, acc, pixels, stride);
    _Pragma("GCC unroll 8") for (int j = 0; j < pixels; j += 2) {
        const __m256i a = lane_rq16(q, acc[2 * j], acc[2 * j + 1], zp16, short_form);
        const __m256i b = j + 1 < pixels ? lane_rq16(q, acc[2 * j + 2], acc[2 * j + 3], zp16, short_form) : a;
        const __m256i bytes = narrow_two(a, b, lo8, hi8);
        _mm_storeu_si128((__m128i *)(out + (size_t)j * c), _mm256_castsi256_si128(bytes));
        if (j + 1 < pixels) _mm_storeu_si128((__m128i *)(out + (size_t)(j + 1) * c), _mm256_extracti128_si256(bytes, 1));
    }
}

void sieve_dwconv_s8__avx2(const sieve_conv_params *p, const void *packed, void *scratch) {
    const dw_view v = dw(packed, p);
    const int32_t c = p->in_c, taps = p->kernel_h * p->kernel_w, kh = p->kernel_h;
    const int32_t pixel_stride = p->stride_w * c;
    const size_t slot = slot_size(p);
    int32_t *offsets = (int32_t *)scratch;
    int8_t *ring = (int8_t *)scratch + offsets_size(p);
    int32_t staged = 0;  // span rows below this are staged
    const __m256i zlh[3] = {_mm256_set1_epi32(p->output_zero_point), _mm256_set1_epi32(p->act_min), _mm256_set1_epi32(p->act_max)};
    const __m256i zp16 = _mm256_set1_epi16((int16_t)p->output_zero_point);
    const __m256i lo8 = _mm256_set1_epi8((int8_t)p->act_min), hi8 = _mm256_set1_epi8((int8_t)p->act_max);
    const int32_t pair_stride = v.cp * 2;
    // The 3x3 tile at stride_w 1 or 2 (offsets 0, 1 and 6 are taps 0, 3 and 6: kernel rows 0-2, column 0).
    const int tile3 = uses_tile3(p);
    const int32_t step = tile3 ? PIXELS3 : PIXELS;
    for (int32_t oy = 0; oy < p->out_h; oy++) {
        const int32_t top = oy * p->stride_h;
        if (staged < top) staged = top;
        for (; staged < top + kh; staged++) {
            int8_t *slot_at = ring + (size_t)(staged % kh) * slot;
            stage_row(p, staged, slot_at);
            if (tile3) memset(slot_at + (size_t)sieve_conv_span_w(p) * c, 0, (size_t)c);  // the column past the span
        }
        for (int32_t i = 0; i <= taps; i++) {
            const int32_t t = tap_at(p, i) < taps ? tap_at(p, i) : 0;  // the odd tap's partner: any valid input, its weight is 0
            offsets[i] = (int32_t)((size_t)((top + t / p->kernel_w) % kh) * slot) + (t % p->kernel_w) * c;
        }
        const int8_t *x_row = ring;
        int8_t *out_row = p->output + (size_t)oy * p->out_w * c;
        for (int32_t c0 = 0; c0 < c; c0 += 16) {
            const int32_t n = c - c0 >= 16 ? 16 : c - c0;
            const int16_t *w = v.weights + (size_t)c0 * 2;
            const __m256i bias0 = _mm256_loadu_si256((const __m256i *)(v.lane_bias + c0));
            const __m256i bias1 = _mm256_loadu_si256((const __m256i *)(v.lane_bias + c0 + 8));
            const sieve_rq32_block_avx2 *b32 = v.blocks32 + c0 / 16;
            const short_rq *sq = v.shorts + c0 / 16;
            const int short_form = sq->usable, fast = b32->fast || short_form;
            lane_rq q;
            for (int h = 0; h < 2; h++) {
                q.m[h] = _mm256_loadu_si256((const __m256i *)((short_form ? sq->multiplier : v.lane_m + c0) + 8 * h));
                q.m_odd[h] = _mm256_loadu_si256((const __m256i *)(v.lane_m_odd + c0 + 8 * h));
                q.round[h] = _mm256_loadu_si256((const __m256i *)((short_form ? sq->round : b32->round) + 8 * h));
                q.shift[h] = _mm256_loadu_si256((const __m256i *)((short_form ? sq->shift : b32->shift) + 8 * h));
            }
            for (int32_t ox = 0; ox < p->out_w; ox += step) {
                const int pixels = p->out_w - ox < step ? p->out_w - ox : step;
                __m256i acc[2 * PIXELS];
                const int8_t *xp = x_row + (size_t)ox * pixel_stride + c0;
                int8_t *out = out_row + (size_t)ox * c + c0;
                // The 3x3 tile's kernel rows 0-2 (taps 0, 3, 6: offsets 0, 1 and 6).
                const int8_t *y0 = xp + offsets[0], *y1 = xp + offsets[1], *y2 = xp + offsets[6];
                if (tile3 && fast && n == 16) {  // every tile of a 16-channel block, the row's last included
#define DW3_FULL(px, st)                                                                                     \
    do {                                                                                                     \
        if (short_form) dw3x3_full(y0, y1, y2, c, w, pair_stride, bias0, bias1, &q, zp16, lo8, hi8, out, px, st, 1); \
        else dw3x3_full(y0, y1, y2, c, w, pair_stride, bias0, bias1, &q, zp16, lo8, hi8, out, px, st, 0);        \
    } while (0)
                    if (p->stride_w == 1) {
                        if (pixels == 4) DW3_FULL(4, 1); else if (pixels == 3) DW3_FULL(3, 1); else if (pixels == 2) DW3_FULL(2, 1); else DW3_FULL(1, 1);
                    } else {
                        if (pixels == 4) DW3_FULL(4, 2); else if (pixels == 3) DW3_FULL(3, 2); else if (pixels == 2) DW3_FULL(2, 2); else DW3_FULL(1, 2);
                    }
#undef DW3_FULL
                    continue;
                }
                if (tile3) dw3x3_tile(y0, y1, y2, c, w, pair_stride, bias0, bias1, acc, pixels, p->stride_w);
                else if (pixels == PIXELS) dw_pixels(xp, offsets, pixel_stride, w, v.pairs, pair_stride, bias0, bias1, acc, PIXELS);
                else if (pixels == 5) dw_pixels(xp, offsets, pixel_stride, w, v.pairs, pair_stride, bias0, bias1, acc, 5);
                else if (pixels == 4) dw_pixels(xp, offsets, pixel_stride, w, v.pairs, pair_stride, bias0, bias1, acc, 4);
                else if (pixels == 3) dw_pixels(xp, offsets, pixel_stride, w, v.pairs, pair_stride, bias0, bias1, acc, 3);
                else if (pixels == 2) dw_pixels(xp, offsets, pixel_stride, w, v.pairs, pair_stride, bias0, bias1, acc, 2);
                else dw_pixels(xp, offsets, pixel_stride, w, v.pairs, pair_stride, bias0, bias1, acc, 1);
                if (fast) {
                    for (int j = 0; j < pixels; j += 2) {
                        const __m256i a = short_form ? lane_rq16(&q, acc[2 * j], acc[2 * j + 1], zp16, 1)
                                                     : lane_rq16(&q, acc[2 * j], acc[2 * j + 1], zp16, 0);
                        const __m256i b = j + 1 >= pixels ? a
                                          : short_form ? lane_rq16(&q, acc[2 * j + 2], acc[2 * j + 3], zp16, 1)
                                                       : lane_rq16(&q, acc[2 * j + 2], acc[2 * j + 3], zp16, 0);
                        const __m256i bytes = narrow_two(a, b, lo8, hi8);
                        sieve_store_n_avx2(out + (size_t)j * c, _mm256_castsi256_si128(bytes), n);
                        if (j + 1 < pixels) sieve_store_n_avx2(out + (size_t)(j + 1) * c, _mm256_extracti128_si256(bytes, 1), n);
                    }
                } else {
                    for (int j = 0; j < pixels; j++) {
                        // Channel order for the 64-bit form: 0-7 and 8-15.
                        const __m256i r0 = _mm256_permute2x128_si256(acc[2 * j], acc[2 * j + 1], 0x20);
                        const __m256i r1 = _mm256_permute2x128_si256(acc[2 * j], acc[2 * j + 1], 0x31);
                        const __m128i lo = sieve_rq8_avx2(r0, v.multipliers + c0, v.blocks + c0 / 8, zlh[0], zlh[1], zlh[2]);
                        const __m128i hi = sieve_rq8_avx2(r1, v.multipliers + c0 + 8, v.blocks + c0 / 8 + 1, zlh[0], zlh[1], zlh[2]);
                        sieve_store_n_avx2(out + (size_t)j * c, _mm_unpacklo_epi64(lo, hi), n);
                    }
                }
            }
        }
    }
}

SIEVE_TARGET_END
#endif
