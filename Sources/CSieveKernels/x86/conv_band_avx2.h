// The band driver both AVX2 conv routes share (conv_s8__avx2.c: int16 x int16; conv_s8__avx2_u8.c:
// u8 x s8): walks the staged band in tiles of up to CONV_TILE_PIXELS output pixels (running on
// across output rows) x 16 channels, calls the route's tile for the accumulators, then requantises
// and stores them. The routes differ only in the tile and in the size of an element of the staged
// band and of the packed weights (`elem` bytes: 2 or 1). Included inside the avx2 target region,
// after requantize_avx2.h.
#ifndef SIEVE_CONV_BAND_AVX2_H
#define SIEVE_CONV_BAND_AVX2_H

#define CONV_TILE_PIXELS 6

// The tiles' assembly shares its operands (the pixels' pointers p0-p5, the weights w, runs and the
// loop counter i) and its step to the next run: every pixel's pointer `stride` bytes on.
#define SIEVE_TILE_OUTPUTS                                                                                   \
    [p0] "+r"(p0), [p1] "+r"(p1), [p2] "+r"(p2), [p3] "+r"(p3), [p4] "+r"(p4), [p5] "+r"(p5), [w] "+r"(w), \
        [runs] "+r"(runs), [i] "=&r"(i)
#define SIEVE_TILE_NEXT_RUN_ASM                                                                   \
    "add %[stride], %[p0]\n\t" "add %[stride], %[p1]\n\t" "add %[stride], %[p2]\n\t"             \
    "add %[stride], %[p3]\n\t" "add %[stride], %[p4]\n\t" "add %[stride], %[p5]\n\t"             \
    "dec %[runs]\n\t" "jnz 1b\n\t"

// A tile's assembly for its pixel count: ASM(STEPS1) ... ASM(STEPS6), STEPSn the n pixels' steps.
#define SIEVE_TILE_SWITCH(ASM, STEPS) \
    switch (pixels) {                 \
    case 6: ASM(STEPS##6); break;     \
    case 5: ASM(STEPS##5); break;     \
    case 4: ASM(STEPS##4); break;     \
    case 3: ASM(STEPS##3); break;     \
    case 2: ASM(STEPS##2); break;     \
    default: ASM(STEPS##1); break;    \
    }

// acc = bias + the products of `pixels` pixels (x[j]: end of the pixel's first run, in bytes) by 16
// channels' weights w, over `runs` runs of run_len elements (a multiple of 4), run_stride elements apart.
typedef void sieve_conv_tile_avx2(const uint8_t *const x[CONV_TILE_PIXELS], const void *w, const int32_t *bias, intptr_t runs, intptr_t run_len,
                                  intptr_t run_stride, __m256i acc[2 * CONV_TILE_PIXELS], int pixels);

// The int16 route's tile (conv_s8__avx2.c), which the Winograd route's GEMMs run too.
sieve_conv_tile_avx2 sieve_conv_tile_s16__avx2;

// One block of 16 channels (n of them in the tensor) over the whole band, in tiles.
static inline __attribute__((always_inline)) void sieve_conv_band_block_avx2(const sieve_conv_params *p, sieve_k4_view v, const sieve_rq16_avx2 *rq,
                                                                             const sieve_rq_out_avx2 *o, sieve_conv_walk t, const uint8_t *x,
                                                                             const uint8_t *w, size_t elem, int32_t oc, int32_t n,
                                                                             sieve_conv_tile_avx2 *tile) {
    const intptr_t run_len = (intptr_t)t.taps_w * t.groups * 4;
    const int32_t pixels_total = p->out_h * p->out_w;
    const int32_t tiles = (pixels_total + CONV_TILE_PIXELS - 1) / CONV_TILE_PIXELS;
    int32_t oy = 0, ox = 0, pixel = 0;
    for (int32_t tile_index = 0; tile_index < tiles; tile_index++) {
        const int pixels = pixels_total / tiles + (tile_index < pixels_total % tiles ? 1 : 0);
        const uint8_t *xp[CONV_TILE_PIXELS];
        __m256i a[2 * CONV_TILE_PIXELS];
        for (int j = 0; j < CONV_TILE_PIXELS; j++) {  // pixels past the tile's repeat its last: computed, not stored
            xp[j] = x + elem * ((size_t)oy * t.pixel_row_stride + (size_t)ox * t.pixel_stride + (size_t)run_len);
            if (j < pixels - 1 && ++ox == p->out_w) { ox = 0; oy++; }
        }
        if (++ox == p->out_w) { ox = 0; oy++; }
        tile(xp, w, v.bias + oc, t.taps_h, run_len, t.row_stride, a, pixels);
        int8_t *out = p->output + (size_t)pixel * p->out_c + oc;
        for (int j = 0; j < pixels; j++) sieve_rq16_avx2_store(rq, o, a[2 * j], a[2 * j + 1], out + (size_t)j * p->out_c, n);
        pixel += pixels;
    }
}

// Inlined into each route, with its tiles constants: direct calls, as before the routes shared it.
// `half` (or 0): the route's tile for a block's first 8 channels, run where the last block has 8 or fewer.
static inline __attribute__((always_inline)) void sieve_conv_band_avx2(const sieve_conv_params *p, sieve_k4_view v, const sieve_rq_block_avx2 *blocks,
                                                                       const sieve_rq32_block_avx2 *blocks32, sieve_conv_walk t, const uint8_t *x,
                                                                       const uint8_t *weights, size_t elem, sieve_conv_tile_avx2 *tile,
                                                                       sieve_conv_tile_avx2 *half) {
    const sieve_rq_out_avx2 o = sieve_rq_out_avx2_init(p->output_zero_point, p->act_min, p->act_max);
    for (int32_t oc = 0; oc < v.ocp; oc += 16) {
        const int32_t n = p->out_c - oc < 16 ? p->out_c - oc : 16;
        const uint8_t *w = weights + elem * (size_t)oc * v.k4;
        const sieve_rq16_avx2 rq = sieve_rq16_avx2_load(v.multipliers + oc, blocks + oc / 8, blocks32 + oc / 16);
        if (half && n <= 8) sieve_conv_band_block_avx2(p, v, &rq, &o, t, x, w, elem, oc, n, half);
        else sieve_conv_band_block_avx2(p, v, &rq, &o, t, x, w, elem, oc, n, tile);
    }
}

#endif
