// Bit-exactness of the elementwise kernels of every path against the scalar kernels: MUL (same
// shape and per-channel broadcast), ADD, CONCAT (2...4 inputs, tables or plain copies), LUT (one table
// or a table per channel group), MAX_POOL,
// AVERAGE_POOL, GLOBAL_AVERAGE_POOL, the channel sums and GATHER (each of its index shapes), through
// the public dispatch (sieve_*_run).
//
//   check_elementwise [COUNT] [--seed=N]
//
// Inputs end at an inaccessible page (an over-read faults); outputs carry guard bytes. Random
// shapes, zero points, multipliers in [2^30, 2^31), shifts in 1...62 (often near the product's
// scale so outputs vary), clamps. Exits non-zero on the first mismatch.
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "sieve_kernels.h"

static uint64_t rng_state;
static uint64_t rng_next(void) {
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}
static int32_t uniform(int32_t lo, int32_t hi) { return lo + (int32_t)(rng_next() % (uint64_t)(hi - lo + 1)); }
static int chance(int percent) { return uniform(0, 99) < percent; }

// `size` bytes ending right before an inaccessible page.
static int8_t *guarded(size_t size, void **map, size_t *map_size) {
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    *map_size = (size + page - 1) / page * page + page;
    *map = mmap(NULL, *map_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (*map == MAP_FAILED) { perror("mmap"); exit(2); }
    if (mprotect((uint8_t *)*map + *map_size - page, page, PROT_NONE) != 0) { perror("mprotect"); exit(2); }
    int8_t *p = (int8_t *)*map + *map_size - page - size;
    for (size_t i = 0; i < size; i++) p[i] = (int8_t)(chance(10) ? (chance(50) ? -128 : 127) : (int8_t)rng_next());
    return p;
}

#define GUARD 64
static int8_t *output_new(size_t size) {
    uint8_t *b = malloc(size + 2 * GUARD);
    memset(b, 0x5A, size + 2 * GUARD);
    return (int8_t *)(b + GUARD);
}
static int guards_intact(const int8_t *out, size_t size) {
    const uint8_t *b = (const uint8_t *)out - GUARD;
    for (size_t i = 0; i < GUARD; i++) if (b[i] != 0x5A || b[GUARD + size + i] != 0x5A) return 0;
    return 1;
}

static void fail(const char *op, int32_t isa, long index, const char *detail) {
    fprintf(stderr, "MISMATCH: path %s, op %s, case %ld: %s\n", sieve_isa_name(isa), op, index, detail);
    exit(1);
}

static long native_mul[SIEVE_ISA_COUNT];

static long native_add[SIEVE_ISA_COUNT];

// ADD: random counts (tails of 1...7), zero points, left shifts 0...20 (the scalar's int32 product
// stays in range), multipliers in [2^30, 2^31), shifts mostly where outputs land in int8.
static void check_add(long index) {
    sieve_add_params p;
    memset(&p, 0, sizeof p);
    p.count = chance(30) ? uniform(1, 17) : uniform(1, 5000);
    p.zero_point0 = uniform(-128, 127);
    p.zero_point1 = chance(30) ? -128 : uniform(-128, 127);
    p.output_zero_point = uniform(-128, 127);
    p.left_shift = chance(60) ? 20 : uniform(0, 20);
    for (int k = 0; k < 3; k++) {
        p.multipliers[k] = chance(10) ? (chance(50) ? 1 << 30 : INT32_MAX) : (int32_t)(0x40000000u + (uint32_t)(rng_next() % 0x40000000u));
        p.shifts[k] = chance(20) ? uniform(1, 62) : (k < 2 ? uniform(31, 36) : p.left_shift + uniform(29, 34));
        // An input term with M = 2^30 is a plain shift on avx512 (left by left_shift + 30 - s, or a
        // rounding right shift, or 0 from 9 bits right): every side of those boundaries.
        if (k < 2 && p.multipliers[k] == 1 << 30 && chance(60)) p.shifts[k] = p.left_shift + 30 + uniform(-3, 12);
    }
    // As the quantiser writes them (docs/FORMAT.md): the larger-scale input's term a shift (M = 2^30,
    // s = 31), the other's s in 31...33 (avx512 takes it to the 32-bit form by shifting its input
    // further left), the output's s above 32: the kernels' fast loops.
    if (chance(30)) {
        const int big = uniform(0, 1);
        p.left_shift = 20;
        p.multipliers[big] = 1 << 30, p.shifts[big] = 31;
        p.shifts[1 - big] = uniform(31, 33);
        p.shifts[2] = uniform(33, 53);
    }
    const int r = uniform(0, 99);
    if (r < 55) { p.act_min = -128; p.act_max = 127; }
    else if (r < 75) { p.act_min = p.output_zero_point; p.act_max = 127; }
    else { p.act_min = uniform(-128, 100); p.act_max = uniform(p.act_min, 127); }
    const size_t n = (size_t)p.count;
    void *m0, *m1; size_t s0, s1;
    p.input0 = guarded(n, &m0, &s0);
    p.input1 = guarded(n, &m1, &s1);
    int8_t *expected = output_new(n), *got = output_new(n);
    p.output = expected;
    sieve_add_s8__scalar(&p);
    for (int32_t isa = 0; isa < SIEVE_ISA_COUNT; isa++) {
        if (!sieve_isa_available(isa)) continue;
        sieve_add_params run = p;
        run.output = got;
        memset(got, 0x33, n);
        sieve_add_run(isa, &run);
        if (memcmp(expected, got, n) != 0 || !guards_intact(got, n)) {
            char detail[256];
            size_t at = 0;
            while (at < n && expected[at] == got[at]) at++;
            snprintf(detail, sizeof detail, "count %d, zp %d/%d/%d, left shift %d, M %d/%d/%d, s %d/%d/%d, act [%d, %d]; first difference at %zu",
                     p.count, p.zero_point0, p.zero_point1, p.output_zero_point, p.left_shift, p.multipliers[0], p.multipliers[1],
                     p.multipliers[2], p.shifts[0], p.shifts[1], p.shifts[2], p.act_min, p.act_max, at);
            fail("add", isa, index, detail);
        }
        native_add[isa]++;
    }
    munmap(m0, s0);
    munmap(m1, s1);
    free((uint8_t *)expected - GUARD);
    free((uint8_t *)got - GUARD);
}

static void check_mul(long index) {
    sieve_mul_params p;
    memset(&p, 0, sizeof p);
    static const int32_t sizes[] = {1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 64, 96, 120, 576};
    p.channels = sizes[uniform(0, 15)];
    p.pixels = chance(20) ? 1 : uniform(1, 200);
    p.broadcast = chance(60);
    p.zero_point0 = uniform(-128, 127);
    p.zero_point1 = chance(30) ? -128 : uniform(-128, 127);
    p.output_zero_point = uniform(-128, 127);
    p.multiplier = chance(10) ? (chance(50) ? 1 << 30 : INT32_MAX) : (int32_t)(0x40000000u + (uint32_t)(rng_next() % 0x40000000u));
    p.shift = chance(70) ? uniform(36, 46) : uniform(1, 62);  // 36...46: products of up to 2^16 land in int8
    const int r = uniform(0, 99);
    if (r < 55) { p.act_min = -128; p.act_max = 127; }
    else if (r < 75) { p.act_min = p.output_zero_point; p.act_max = 127; }
    else { p.act_min = uniform(-128, 100); p.act_max = uniform(p.act_min, 127); }
    const size_t n = (size_t)p.pixels * p.channels;
    void *m0, *m1; size_t s0, s1;
    p.input0 = guarded(n, &m0, &s0);
    p.input1 = guarded(p.broadcast ? (size_t)p.channels : n, &m1, &s1);
    int8_t *expected = output_new(n), *got = output_new(n);
    p.output = expected;
    sieve_mul_s8__scalar(&p);
    for (int32_t isa = 0; isa < SIEVE_ISA_COUNT; isa++) {
        if (!sieve_isa_available(isa)) continue;
        sieve_mul_params run = p;
        run.output = got;
        memset(got, 0x33, n);
        sieve_mul_run(isa, &run);
        if (memcmp(expected, got, n) != 0 || !guards_intact(got, n)) {
            char detail[256];
            size_t at = 0;
            while (at < n && expected[at] == got[at]) at++;
            snprintf(detail, sizeof detail, "pixels %d, channels %d, broadcast %d, zp %d/%d/%d, M %d, s %d, act [%d, %d]; first difference at %zu",
                     p.pixels, p.channels, p.broadcast, p.zero_point0, p.zero_point1, p.output_zero_point, p.multiplier, p.shift,
                     p.act_min, p.act_max, at);
            fail("mul", isa, index, detail);
        }
        native_mul[isa]++;
    }
    munmap(m0, s0);
    munmap(m1, s1);
    free((uint8_t *)expected - GUARD);
    free((uint8_t *)got - GUARD);
}

// One path's pool on `p` (written to `got`) against the scalar kernel's `expected`, guards included.
static void check_pool_path(const char *op, void (*run)(int32_t, const sieve_pool_params *), int32_t isa, long index,
                            const sieve_pool_params *p, const int8_t *expected, int8_t *got) {
    const size_t n = (size_t)p->out_h * p->out_w * p->channels;
    sieve_pool_params on_path = *p;
    on_path.output = got;
    memset(got, 0x33, n);
    run(isa, &on_path);
    if (memcmp(expected, got, n) != 0 || !guards_intact(got, n)) {
        char detail[200];
        snprintf(detail, sizeof detail, "in %dx%dx%d, kernel %dx%d, stride %dx%d, pad %d/%d", p->in_h, p->in_w, p->channels,
                 p->kernel_h, p->kernel_w, p->stride_h, p->stride_w, p->pad_top, p->pad_left);
        fail(op, isa, index, detail);
    }
}

// MAX_POOL: random windows, strides and padding (padding < kernel, as load requires), channel counts
// around every vector width; the scalar kernel against the definition, then every path against it.
static void check_maxpool(long index) {
    sieve_pool_params p;
    memset(&p, 0, sizeof p);
    static const int32_t sizes[] = {1, 3, 7, 8, 9, 15, 16, 17, 24, 31, 32, 33, 64, 100};
    // Now and then rows wider than 8192 bytes: AVX-512 pools narrower rows separably, wider ones not.
    p.channels = chance(10) ? uniform(700, 800) : sizes[uniform(0, 13)];
    p.kernel_h = uniform(1, 3), p.kernel_w = uniform(1, 3);
    p.stride_h = uniform(1, 3), p.stride_w = uniform(1, 3);
    p.pad_top = uniform(0, p.kernel_h - 1), p.pad_left = uniform(0, p.kernel_w - 1);
    p.in_h = uniform(p.kernel_h, 12), p.in_w = uniform(p.kernel_w, 12);
    p.out_h = (p.in_h + p.pad_top - p.kernel_h) / p.stride_h + 1;
    p.out_w = (p.in_w + p.pad_left - p.kernel_w) / p.stride_w + 1;
    const size_t in_n = (size_t)p.in_h * p.in_w * p.channels, n = (size_t)p.out_h * p.out_w * p.channels;
    void *map; size_t map_size;
    p.input = guarded(in_n, &map, &map_size);
    int8_t *expected = output_new(n), *got = output_new(n);
    p.output = expected;
    sieve_maxpool_s8__scalar(&p);
    for (int32_t oy = 0; oy < p.out_h; oy++)
        for (int32_t ox = 0; ox < p.out_w; ox++)
            for (int32_t c = 0; c < p.channels; c++) {
                int32_t best = -129;
                for (int32_t ky = 0; ky < p.kernel_h; ky++)
                    for (int32_t kx = 0; kx < p.kernel_w; kx++) {
                        const int32_t iy = oy * p.stride_h - p.pad_top + ky, ix = ox * p.stride_w - p.pad_left + kx;
                        if (iy < 0 || iy >= p.in_h || ix < 0 || ix >= p.in_w) continue;
                        const int32_t v = p.input[((size_t)iy * p.in_w + ix) * p.channels + c];
                        if (v > best) best = v;
                    }
                if (expected[((size_t)oy * p.out_w + ox) * p.channels + c] != best) fail("maxpool", 0, index, "scalar differs from the definition");
            }
    for (int32_t isa = 0; isa < SIEVE_ISA_COUNT; isa++) {
        if (!sieve_isa_available(isa)) continue;
        check_pool_path("maxpool", sieve_maxpool_run, isa, index, &p, expected, got);
    }
    munmap(map, map_size);
    free((uint8_t *)expected - GUARD);
    free((uint8_t *)got - GUARD);
}

// round-half-away(sum / count), the definition docs/FORMAT.md gives the average pools.
static int32_t definition_mean(int64_t sum, int32_t count) {
    const int64_t a = (sum < 0 ? -sum : sum) * 2 + count, q = a / (2 * (int64_t)count);
    return (int32_t)(sum < 0 ? -q : q);
}

// AVERAGE_POOL, GLOBAL_AVERAGE_POOL and the channel sums: windows from 1 to 441 positions (the SIMD
// kernels sum 256 positions in int16 before widening), channel counts around every vector width;
// the scalar kernels against the definition, then every path against them.
static void check_avgpool(long index) {
    sieve_pool_params p;
    memset(&p, 0, sizeof p);
    static const int32_t sizes[] = {1, 3, 8, 15, 16, 17, 24, 31, 32, 33, 48, 64, 100};
    p.channels = sizes[uniform(0, 12)];
    const int32_t big = chance(20);
    p.kernel_h = big ? uniform(12, 21) : uniform(1, 4), p.kernel_w = big ? uniform(12, 21) : uniform(1, 4);
    p.stride_h = uniform(1, p.kernel_h), p.stride_w = uniform(1, p.kernel_w);
    p.pad_top = uniform(0, p.kernel_h - 1), p.pad_left = uniform(0, p.kernel_w - 1);
    p.in_h = uniform(p.kernel_h, p.kernel_h + 10), p.in_w = uniform(p.kernel_w, p.kernel_w + 10);
    p.out_h = (p.in_h + p.pad_top - p.kernel_h) / p.stride_h + 1;
    p.out_w = (p.in_w + p.pad_left - p.kernel_w) / p.stride_w + 1;
    const int32_t pixels = p.in_h * p.in_w;
    const size_t in_n = (size_t)pixels * p.channels, n = (size_t)p.out_h * p.out_w * p.channels;
    void *map; size_t map_size;
    p.input = guarded(in_n, &map, &map_size);
    if (chance(30)) memset((int8_t *)p.input, chance(50) ? -128 : 127, in_n);  // the int16 sums' extremes
    int8_t *expected = output_new(n), *got = output_new(n);
    p.output = expected;
    sieve_avgpool_s8__scalar(&p);
    for (int32_t oy = 0; oy < p.out_h; oy++)
        for (int32_t ox = 0; ox < p.out_w; ox++)
            for (int32_t c = 0; c < p.channels; c++) {
                int64_t sum = 0;
                int32_t count = 0;
                for (int32_t ky = 0; ky < p.kernel_h; ky++)
                    for (int32_t kx = 0; kx < p.kernel_w; kx++) {
                        const int32_t iy = oy * p.stride_h - p.pad_top + ky, ix = ox * p.stride_w - p.pad_left + kx;
                        if (iy < 0 || iy >= p.in_h || ix < 0 || ix >= p.in_w) continue;
                        sum += p.input[((size_t)iy * p.in_w + ix) * p.channels + c];
                        count++;
                    }
                if (expected[((size_t)oy * p.out_w + ox) * p.channels + c] != definition_mean(sum, count))
                    fail("avgpool", 0, index, "scalar differs from the definition");
            }
    // The global pool and the channel sums over the whole input.
    int8_t *global_expected = output_new((size_t)p.channels), *global_got = output_new((size_t)p.channels);
    int32_t *sums_expected = malloc((size_t)p.channels * sizeof(int32_t)), *sums_got = malloc((size_t)p.channels * sizeof(int32_t));
    sieve_global_avgpool_s8__scalar(p.input, global_expected, pixels, p.channels);
    sieve_channel_sums_s8__scalar(p.input, sums_expected, pixels, p.channels);
    for (int32_t c = 0; c < p.channels; c++) {
        int64_t sum = 0;
        for (int32_t i = 0; i < pixels; i++) sum += p.input[(size_t)i * p.channels + c];
        if (sums_expected[c] != sum || global_expected[c] != definition_mean(sum, pixels))
            fail("global avgpool", 0, index, "scalar differs from the definition");
    }
    for (int32_t isa = 0; isa < SIEVE_ISA_COUNT; isa++) {
        if (!sieve_isa_available(isa)) continue;
        check_pool_path("avgpool", sieve_avgpool_run, isa, index, &p, expected, got);
        memset(global_got, 0x33, (size_t)p.channels);
        sieve_global_avgpool_run(isa, p.input, global_got, pixels, p.channels);
        if (memcmp(global_expected, global_got, (size_t)p.channels) != 0 || !guards_intact(global_got, (size_t)p.channels))
            fail("global avgpool", isa, index, "output differs");
        sieve_channel_sums_run(isa, p.input, sums_got, pixels, p.channels);
        if (memcmp(sums_expected, sums_got, (size_t)p.channels * sizeof(int32_t)) != 0) fail("channel sums", isa, index, "output differs");
    }
    munmap(map, map_size);
    free((uint8_t *)expected - GUARD);
    free((uint8_t *)got - GUARD);
    free((uint8_t *)global_expected - GUARD);
    free((uint8_t *)global_got - GUARD);
    free(sums_expected);
    free(sums_got);
}

static void check_concat_lut(long index) {
    sieve_concat_params p;
    memset(&p, 0, sizeof p);
    p.input_count = uniform(2, 4);
    p.pixels = uniform(1, 100);
    int8_t tables[4][256];
    void *maps[4]; size_t sizes[4];
    int32_t out_c = 0;
    for (int32_t k = 0; k < p.input_count; k++) {
        p.channels[k] = uniform(1, 70);
        out_c += p.channels[k];
        p.inputs[k] = guarded((size_t)p.pixels * p.channels[k], &maps[k], &sizes[k]);
        for (int i = 0; i < 256; i++) tables[k][i] = (int8_t)rng_next();
        p.tables[k] = chance(50) ? tables[k] : NULL;
    }
    const size_t n = (size_t)p.pixels * out_c;
    int8_t *expected = output_new(n), *got = output_new(n);
    p.output = expected;
    sieve_concat_s8__scalar(&p);
    // The scalar kernel itself against the definition.
    int32_t first = 0;
    for (int32_t k = 0; k < p.input_count; k++) {
        for (int32_t i = 0; i < p.pixels; i++)
            for (int32_t c = 0; c < p.channels[k]; c++) {
                const int8_t q = p.inputs[k][(size_t)i * p.channels[k] + c];
                const int8_t want = p.tables[k] ? p.tables[k][q + 128] : q;
                if (expected[(size_t)i * out_c + first + c] != want) fail("concat", 0, index, "scalar differs from the definition");
            }
        first += p.channels[k];
    }
    for (int32_t isa = 0; isa < SIEVE_ISA_COUNT; isa++) {
        if (!sieve_isa_available(isa)) continue;
        sieve_concat_params run = p;
        run.output = got;
        memset(got, 0x33, n);
        sieve_concat_run(isa, &run);
        if (memcmp(expected, got, n) != 0 || !guards_intact(got, n)) fail("concat", isa, index, "output differs");
        memset(got, 0x33, n);
        const int32_t lut_count = p.pixels * p.channels[0];  // 1 ... 7000: every tail length
        sieve_lut_run(isa, p.inputs[0], got, tables[0], lut_count);
        for (int32_t i = 0; i < lut_count; i++)
            if (got[i] != tables[0][p.inputs[0][i] + 128]) fail("lut", isa, index, "output differs from the table");
        if (!guards_intact(got, n) || ((size_t)lut_count < n && got[lut_count] != 0x33)) fail("lut", isa, index, "wrote outside its output");
    }
    for (int32_t k = 0; k < p.input_count; k++) munmap(maps[k], sizes[k]);
    free((uint8_t *)expected - GUARD);
    free((uint8_t *)got - GUARD);
}

// LUT with channel groups: the scalar kernel against the definition, then every path. Channel
// counts below and above a 64-byte step (so a step covers several pixels, or a pixel several
// steps, and the step's first channel wraps), up to the format's limit now and then.
static void check_lut_grouped(long index) {
    sieve_lut_grouped_params p;
    p.groups = uniform(2, SIEVE_LUT_MAX_GROUPS);
    p.channels = chance(5) ? uniform(1, SIEVE_LUT_GROUPED_MAX_CHANNELS) : uniform(1, 200);
    p.pixels = uniform(1, chance(5) ? 3 : 60);
    int8_t *tables = malloc((size_t)256 * p.groups);
    uint8_t *group_map = malloc((size_t)p.channels);
    for (int32_t i = 0; i < 256 * p.groups; i++) tables[i] = (int8_t)rng_next();
    for (int32_t c = 0; c < p.channels; c++) group_map[c] = (uint8_t)uniform(0, p.groups - 1);
    p.tables = tables;
    p.map = group_map;
    void *map; size_t map_size;
    p.input = guarded((size_t)p.pixels * p.channels, &map, &map_size);
    const size_t n = (size_t)p.pixels * p.channels;
    int8_t *expected = output_new(n), *got = output_new(n);
    p.output = expected;
    sieve_lut_grouped_s8__scalar(&p);
    for (size_t i = 0; i < n; i++)
        if (expected[i] != tables[256 * group_map[i % p.channels] + p.input[i] + 128]) fail("lut grouped", 0, index, "scalar differs from the definition");
    if (!guards_intact(expected, n)) fail("lut grouped", 0, index, "scalar wrote outside its output");
    for (int32_t isa = 0; isa < SIEVE_ISA_COUNT; isa++) {
        if (!sieve_isa_available(isa)) continue;
        sieve_lut_grouped_params run = p;
        run.output = got;
        memset(got, 0x33, n);
        sieve_lut_grouped_run(isa, &run);
        if (memcmp(expected, got, n) != 0 || !guards_intact(got, n)) fail("lut grouped", isa, index, "output differs");
    }
    munmap(map, map_size);
    free(tables);
    free(group_map);
    free((uint8_t *)expected - GUARD);
    free((uint8_t *)got - GUARD);
}

// GATHER: the scalar kernel against the definition for each index shape it copies differently
// (one run, two interleaved runs, anything else: here shuffles of 2...4 groups and random indices
// with repeats), then every path through the dispatch.
static long gather_shapes[3];

static void check_gather(long index) {
    sieve_gather_params p;
    p.pixels = uniform(1, 60);
    p.in_c = uniform(1, 200);
    int32_t *idx = malloc(sizeof(int32_t) * 2 * 200);
    const int shape = uniform(0, 3);
    if (shape == 0) {                                   // a Split's part
        p.out_c = uniform(1, p.in_c);
        const int32_t start = uniform(0, p.in_c - p.out_c);
        for (int32_t c = 0; c < p.out_c; c++) idx[c] = start + c;
        gather_shapes[0]++;
    } else if (shape == 1) {                            // two runs interleaved: a half of a 2-group shuffle
        const int32_t n = uniform(1, p.in_c);
        const int32_t a = uniform(0, p.in_c - n), b = uniform(0, p.in_c - n);
        p.out_c = 2 * n;
        for (int32_t i = 0; i < n; i++) { idx[2 * i] = a + i; idx[2 * i + 1] = b + i; }
        gather_shapes[n == 1 && b == a + 1 ? 0 : 1]++;  // [a, a + 1] is one run
    } else if (shape == 2) {                            // a whole shuffle of g groups
        const int32_t g = uniform(2, 4);
        p.in_c = (p.in_c + g - 1) / g * g;
        p.out_c = p.in_c;
        for (int32_t j = 0; j < p.out_c; j++) idx[j] = (j % g) * (p.in_c / g) + j / g;
        gather_shapes[g == 2 ? 1 : 2]++;
    } else {                                            // anything: random indices, repeats allowed
        p.out_c = uniform(1, 2 * p.in_c);
        for (int32_t c = 0; c < p.out_c; c++) idx[c] = uniform(0, p.in_c - 1);
        gather_shapes[2]++;
    }
    p.index = idx;
    void *map; size_t map_size;
    p.input = guarded((size_t)p.pixels * p.in_c, &map, &map_size);
    const size_t n = (size_t)p.pixels * p.out_c;
    int8_t *expected = output_new(n), *got = output_new(n);
    p.output = expected;
    sieve_gather_s8__scalar(&p);
    for (int32_t i = 0; i < p.pixels; i++)
        for (int32_t c = 0; c < p.out_c; c++)
            if (expected[(size_t)i * p.out_c + c] != p.input[(size_t)i * p.in_c + idx[c]]) fail("gather", 0, index, "scalar differs from the definition");
    if (!guards_intact(expected, n)) fail("gather", 0, index, "scalar wrote outside its output");
    for (int32_t isa = 0; isa < SIEVE_ISA_COUNT; isa++) {
        if (!sieve_isa_available(isa)) continue;
        sieve_gather_params run = p;
        run.output = got;
        memset(got, 0x33, n);
        sieve_gather_run(isa, &run);
        if (memcmp(expected, got, n) != 0 || !guards_intact(got, n)) fail("gather", isa, index, "output differs");
    }
    munmap(map, map_size);
    free(idx);
    free((uint8_t *)expected - GUARD);
    free((uint8_t *)got - GUARD);
}

int main(int argc, char **argv) {
    long count = 2000;
    uint64_t seed = 0xE1E3E175ULL;
    for (int i = 1; i < argc; i++) {
        if (strncmp(argv[i], "--seed=", 7) == 0) seed = strtoull(argv[i] + 7, NULL, 0);
        else if (argv[i][0] >= '0' && argv[i][0] <= '9') count = strtol(argv[i], NULL, 10);
        else if (strncmp(argv[i], "--", 2) == 0) continue;  // check_kernels' --expect/--best: not needed here
        else { fprintf(stderr, "usage: %s [COUNT] [--seed=N]\n", argv[0]); return 2; }
    }
    for (long i = 0; i < count; i++) {
        rng_state = seed ^ ((uint64_t)i * 0xD1B54A32D192ED03ULL);
        check_mul(i);
        check_concat_lut(i);
        check_maxpool(i);
        check_add(i);  // after the others, so their cases stay what they were for a seed
        check_avgpool(i);
        check_gather(i);
        check_lut_grouped(i);
    }
    // Each of the kernel's three copy loops must have run.
    for (int k = 0; k < 3; k++) if (count >= 100 && gather_shapes[k] == 0) { fprintf(stderr, "gather: index shape %d never drawn\n", k); return 1; }
    printf("elementwise: %ld cases of mul, concat, lut, grouped lut, max pool, average pools and gather (runs %ld, interleaved %ld, other %ld); mul per path:",
           count, gather_shapes[0], gather_shapes[1], gather_shapes[2]);
    for (int32_t isa = 0; isa < SIEVE_ISA_COUNT; isa++) if (sieve_isa_available(isa)) printf(" %s %ld", sieve_isa_name(isa), native_mul[isa]);
    printf("; add per path:");
    for (int32_t isa = 0; isa < SIEVE_ISA_COUNT; isa++) if (sieve_isa_available(isa)) printf(" %s %ld", sieve_isa_name(isa), native_add[isa]);
    printf("\nOK\n");
    return 0;
}
