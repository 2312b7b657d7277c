// 3x3 stride-1 convolution (groups = 1) on AVX2 by Winograd F(2,3), exact in integers
// (docs/KERNELS.md, "Winograd"): each 2x2 tile of outputs comes from a 4x4 tile of inputs with 16
// products per input channel instead of 36.
//
//   U = G2 g G2^T   the 3x3 weights of a channel pair, with G2 = 2G = [2 0 0; 1 1 1; 1 -1 1; 0 0 2]:
//                   4 times the usual transform, integers, |U| <= 9 * 128 = 1152 (int16)
//   V = B^T d B     the 4x4 input tile, B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]: adds and
//                   subtracts only, |V| <= 4 * 128 = 512 (int16)
//   M = sum over input channels of U * V, element by element: 16 int16 GEMMs (vpmaddwd into int32)
//   Y = A^T M A     A^T = [1 1 1 0; 0 1 -1 -1]: exactly 4 times the direct sum, so >> 2 gives it
//
// Everything after the products is additions in wrapping int32, so Y is 4S modulo 2^32 for the
// direct sum S; when |4S| < 2^31, Y >> 2 is S itself. |S| <= 9 * in_c * 128 * 128, so that holds for
// in_c <= 3640: the route takes at most WINO_MAX_IN_C channels. Bias, requantisation and the clamp
// are then the direct kernels' own, so the output equals sieve_conv_s8__scalar's byte for byte.
//
// A band (any run of output rows) is staged once with the zero point as padding, rounded up to
// whole tiles; tiles are taken in chunks whose transformed inputs (16 x chunk x channels int16)
// stay in L2; for each chunk and 16 output channels, the 16 GEMMs run on the int16 route's tile
// (6 tiles x 16 channels, sieve_conv_tile_s16__avx2), then the output transform, requantisation
// and the stores of the outputs inside the band.
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

#define WINO_MAX_IN_C 2048
#define WINO_CHUNK_BYTES (192 * 1024)  // transformed inputs of one chunk of tiles

// Input channels as the GEMMs run them: a multiple of 16 (one ymm of int16), zero weights past in_c.
static int32_t wino_channels(const sieve_conv_params *p) { return sieve_round_up(p->in_c, 16); }

// Where it is faster than the direct routes (measured on Zen 3, docs/KERNELS.md): below 48 input
// channels, or with more than a quarter of them padding, the transforms and the per-tile
// requantisation cost more than the products saved. Below 32 tiles (ResNet's 7x7 layers) the
// packed weights, 3.6 times the direct routes' bytes, are read for too few tiles: in a whole network
// they come from memory, not cache, and that costs more than the products saved.
int sieve_conv_wino_fits__avx2(const sieve_conv_params *p) {
    const int32_t tiles = (p->out_h + 1) / 2 * ((p->out_w + 1) / 2);
    return p->groups == 1 && p->kernel_h == 3 && p->kernel_w == 3 && p->stride_h == 1 && p->stride_w == 1 &&
           p->in_c >= 48 && p->in_c <= WINO_MAX_IN_C && 4 * wino_channels(p) <= 5 * p->in_c && tiles >= 32;
}

static int32_t wino_chunk(const sieve_conv_params *p) {
    const int32_t tiles = (p->out_h + 1) / 2 * ((p->out_w + 1) / 2);
    int32_t chunk = WINO_CHUNK_BYTES / (16 * 2 * wino_channels(p)) / CONV_TILE_PIXELS * CONV_TILE_PIXELS;
    if (chunk < CONV_TILE_PIXELS) chunk = CONV_TILE_PIXELS;
    return tiles < chunk ? tiles : chunk;
}

// Packed: int32 bias[ocp], multipliers[ocp], shifts[ocp] (the K4 header), then int16
// U[ocp / 16][16 positions][channels / 2][16 output channels][2] (the int16 tile's pairs layout per
// position), then a sieve_rq_block_avx2 per 8 output channels and a sieve_rq32_block_avx2 per 16.
static size_t header_size(const sieve_conv_params *p) { return (size_t)sieve_round_up(p->out_c, 16) * 3 * sizeof(int32_t); }
static size_t weights_size(const sieve_conv_params *p) {
    return (size_t)sieve_round_up(p->out_c, 16) * 16 * (size_t)wino_channels(p) * sizeof(int16_t);
}

size_t sieve_conv_wino_packed_size__avx2(const sieve_conv_params *p) {
    const size_t ocp = (size_t)sieve_round_up(p->out_c, 16);
    return header_size(p) + weights_size(p) + ocp / 8 * sizeof(sieve_rq_block_avx2) + ocp / 16 * sizeof(sieve_rq32_block_avx2);
}

static const sieve_rq_block_avx2 *rq_blocks(const void *packed, const sieve_conv_params *p) {
    return (const sieve_rq_block_avx2 *)((const uint8_t *)packed + header_size(p) + weights_size(p));
}

static const sieve_rq32_block_avx2 *rq32_blocks(const void *packed, const sieve_conv_params *p) {
    return (const sieve_rq32_block_avx2 *)(rq_blocks(packed, p) + sieve_round_up(p->out_c, 16) / 8);
}

void sieve_conv_wino_pack__avx2(const sieve_conv_params *p, void *packed) {
    const int32_t ocp = sieve_round_up(p->out_c, 16), cv = wino_channels(p);
    int32_t *bias = (int32_t *)packed, *multipliers = bias + ocp, *shifts = multipliers + ocp;
    int16_t *u = (int16_t *)((uint8_t *)packed + header_size(p));
    memset(u, 0, weights_size(p));
    for (int32_t oc = 0; oc < ocp; oc++) {
        const int in = oc < p->out_c;
        bias[oc] = in ? p->bias[oc] : 0;
        multipliers[oc] = in ? p->multipliers[oc] : 1 << 30;
        shifts[oc] = in ? p->shifts[oc] : SIEVE_PADDING_SHIFT;
        for (int32_t c = 0; in && c < p->in_c; c++) {
            int16_t tile[16];
            sieve_wino_weights(p, oc, c, tile);
            for (int xi = 0; xi < 16; xi++) {
                const size_t at = (((size_t)(oc / 16) * 16 + (size_t)xi) * (size_t)(cv / 2) + (size_t)(c / 2)) * 32 + (size_t)(oc % 16) * 2 +
                                  (size_t)(c % 2);
                u[at] = tile[xi];
            }
        }
    }
    sieve_rq_block_avx2 *blocks = (sieve_rq_block_avx2 *)rq_blocks(packed, p);
    sieve_rq32_block_avx2 *blocks32 = (sieve_rq32_block_avx2 *)rq32_blocks(packed, p);
    for (int32_t b = 0; b < ocp / 8; b++) sieve_rq_block_avx2_fill(blocks + b, multipliers + 8 * b, shifts + 8 * b);
    for (int32_t b = 0; b < ocp / 16; b++) sieve_rq32_avx2_fill(blocks32 + b, shifts + 16 * b, p->out_c - 16 * b);
}

// The staged band (int8, with 64 bytes of slack for the 16-byte loads past its last channel),
// then the transformed inputs of a chunk.
static size_t staged_size(const sieve_conv_params *p) {
    const sieve_conv_params t = sieve_wino_tiled(p);
    return (size_t)sieve_round_up(sieve_conv_span_h(&t) * sieve_conv_span_w(&t) * p->in_c, 64) + 64;
}

size_t sieve_conv_wino_scratch_size__avx2(const sieve_conv_params *p) {
    return staged_size(p) + (size_t)16 * wino_chunk(p) * wino_channels(p) * sizeof(int16_t);
}

// V of `count` tiles from tile `first` (row-major over tiles_w tiles a row) into v[16][chunk][cv].
static void transform_inputs(const int8_t *staged, int32_t span_w, int32_t in_c, int32_t cv, int32_t tiles_w, int32_t first,
                             int32_t count, int32_t chunk, int16_t *v) {
    const size_t plane = (size_t)chunk * cv;
    for (int32_t n = 0; n < count; n++) {
        const int32_t ty = (first + n) / tiles_w, tx = (first + n) % tiles_w;
        const int8_t *base = staged + ((size_t)2 * ty * span_w + (size_t)2 * tx) * in_c;
        int16_t *out = v + (size_t)n * cv;
        for (int32_t c = 0; c < cv; c += 16) {
            __m256i d[4][4], t[4][4];
            for (int r = 0; r < 4; r++) {
                for (int col = 0; col < 4; col++) {
                    d[r][col] = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(base + ((size_t)r * span_w + col) * in_c + c)));
                }
            }
            for (int col = 0; col < 4; col++) {  // B^T d
                t[0][col] = _mm256_sub_epi16(d[0][col], d[2][col]);
                t[1][col] = _mm256_add_epi16(d[1][col], d[2][col]);
                t[2][col] = _mm256_sub_epi16(d[2][col], d[1][col]);
                t[3][col] = _mm256_sub_epi16(d[1][col], d[3][col]);
            }
            for (int r = 0; r < 4; r++) {  // (B^T d) B
                const __m256i row[4] = {_mm256_sub_epi16(t[r][0], t[r][2]), _mm256_add_epi16(t[r][1], t[r][2]),
                                        _mm256_sub_epi16(t[r][2], t[r][1]), _mm256_sub_epi16(t[r][1], t[r][3])};
                for (int col = 0; col < 4; col++) _mm256_store_si256((__m256i *)(out + (size_t)(4 * r + col) * plane + c), row[col]);
            }
        }
    }
}

// A^T M A for 8 channels: the 2x2 outputs' direct sums (y >> 2), in order (0,0) (0,1) (1,0) (1,1).
static inline void transform_outputs(const __m256i m[16], __m256i y[4]) {
    __m256i s0[4], s1[4];
    for (int col = 0; col < 4; col++) {
        s0[col] = _mm256_add_epi32(_mm256_add_epi32(m[col], m[4 + col]), m[8 + col]);
        s1[col] = _mm256_sub_epi32(_mm256_sub_epi32(m[4 + col], m[8 + col]), m[12 + col]);
    }
    y[0] = _mm256_srai_epi32(_mm256_add_epi32(_mm256_add_epi32(s0[0], s0[1]), s0[2]), 2);
    y[1] = _mm256_srai_epi32(_mm256_sub_epi32(_mm256_sub_epi32(s0[1], s0[2]), s0[3]), 2);
    y[2] = _mm256_srai_epi32(_mm256_add_epi32(_mm256_add_epi32(s1[0], s1[1]), s1[2]), 2);
    y[3] = _mm256_srai_epi32(_mm256_sub_epi32(_mm256_sub_epi32(s1[1], s1[2]), s1[3]), 2);
}

static const int32_t zeros32[16] __attribute__((aligned(32))) = {0};

void sieve_conv_wino_s8__avx2(const sieve_conv_params *p, const void *packed, void *scratch) {
    if (p->out_h <= 0 || p->out_w <= 0) return;
    const int32_t ocp = sieve_round_up(p->out_c, 16), cv = wino_channels(p), chunk = wino_chunk(p);
    const int32_t tiles_w = (p->out_w + 1) / 2, tiles = (p->out_h + 1) / 2 * tiles_w;
    const int32_t *bias = (const int32_t *)packed, *multipliers = bias + ocp;
    const int16_t *u = (const int16_t *)((const uint8_t *)packed + header_size(p));
    const sieve_rq_block_avx2 *blocks = rq_blocks(packed, p);
    const sieve_rq32_block_avx2 *blocks32 = rq32_blocks(packed, p);

    const sieve_conv_params t = sieve_wino_tiled(p);
    int8_t *staged = (int8_t *)scratch;
    const size_t staged_bytes = (size_t)sieve_conv_span_h(&t) * sieve_conv_span_w(&t) * p->in_c;
    sieve_pad_input(&t, 0, (uint8_t *)staged);
    memset(staged + staged_bytes, 0, 64);  // the slack the last channels' loads read (their weights are 0)
    const int32_t span_w = sieve_conv_span_w(&t);
    int16_t *v = (int16_t *)((uint8_t *)scratch + staged_size(p));

    const sieve_rq_out_avx2 o = sieve_rq_out_avx2_init(p->output_zero_point, p->act_min, p->act_max);
    const size_t plane = (size_t)chunk * cv;

    for (int32_t first = 0; first < tiles; first += chunk) {
        const int32_t count = tiles - first < chunk ? tiles - first : chunk;
        transform_inputs(staged, span_w, p->in_c, cv, tiles_w, first, count, chunk, v);
        for (int32_t oc = 0; oc < ocp; oc += 16) {
            const int32_t n = p->out_c - oc < 16 ? p->out_c - oc : 16;
            const int16_t *w = u + (size_t)oc * 16 * cv;
            const __m256i b0 = _mm256_loadu_si256((const __m256i *)(bias + oc)), b1 = _mm256_loadu_si256((const __m256i *)(bias + oc + 8));
            const sieve_rq16_avx2 rq = sieve_rq16_avx2_load(multipliers + oc, blocks + oc / 8, blocks32 + oc / 16);
            for (int32_t g = 0; g < count; g += CONV_TILE_PIXELS) {
                const int pixels = count - g < CONV_TILE_PIXELS ? count - g : CONV_TILE_PIXELS;
                __m256i acc[16][2 * CONV_TILE_PIXELS];
                for (int xi = 0; xi < 16; xi++) {  // M at position xi: the tiles' V by the channels' U
                    const uint8_t *xp[CONV_TILE_PIXELS];
                    for (int j = 0; j < CONV_TILE_PIXELS; j++) {  // tiles past the group repeat its last: computed, not stored
                        const int32_t tile = g + (j < pixels ? j : pixels - 1);
                        xp[j] = (const uint8_t *)(v + (size_t)xi * plane + (size_t)tile * cv + cv);
                    }
                    sieve_conv_tile_s16__avx2(xp, w + (size_t)xi * cv * 16, zeros32, 1, cv, 0, acc[xi], pixels);
                }
                for (int j = 0; j < pixels; j++) {
                    const int32_t tile = first + g + j, oy = tile / tiles_w * 2, ox = tile % tiles_w * 2;
                    __m256i m[16], y0[4], y1[4];
                    for (int xi = 0; xi < 16; xi++) m[xi] = acc[xi][2 * j];
                    transform_outputs(m, y0);
                    for (int xi = 0; xi < 16; xi++) m[xi] = acc[xi][2 * j + 1];
                    transform_outputs(m, y1);
                    for (int k = 0; k < 4; k++) {
                        const int32_t y = oy + k / 2, x = ox + k % 2;
                        if (y >= p->out_h || x >= p->out_w) continue;
                        sieve_rq16_avx2_store(&rq, &o, _mm256_add_epi32(y0[k], b0), _mm256_add_epi32(y1[k], b1),
                                              p->output + ((size_t)y * p->out_w + x) * p->out_c + oc, n);
                    }
                }
            }
        }
    }
}

SIEVE_TARGET_END
#endif
