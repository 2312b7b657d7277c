// Frame preprocessing (sieve_frames.h) against docs/FRAMES.md.
//
//   check_preprocess [COUNT] [--seed=N] [--heap] [--no-colour] [--bench]
//
// 1. sieve_format_* and sieve_frame_bytes on fixed valid and invalid cases.
// 2. The colour formulas of docs/FRAMES.md against BT.601 in double precision, for every Y, U, V:
//    within 1 LSB (how many are a nearest integer to the real value is printed); --no-colour skips
//    it (3 x 2^25 evaluations: slow under valgrind). Then every Y, U, V through sieve_preprocess itself.
// 3. COUNT random cases (every format, odd and even crop origins, padded strides, shrink, enlarge or
//    equal on each axis, 1 and 3 channels, full and limited range): sieve_preprocess against a
//    straightforward reference written here from the document (per output pixel, per source pixel,
//    2-D weights straight from the formulas, colour straight from the frame bytes), byte for byte,
//    on two frames through the same scratch; then camera-sized cases (640x480 frames, 28x28 and
//    224x168 outputs) the same way.
// 4. Round trip: a 28x28 image upscaled 16x (nearest) to 448x448 and preprocessed back to 28x28 gives
//    each pixel's own converted value, exactly, for every format, channel count and range.
// 5. --bench: time of a 640x480 frame cropped to 480x480 and shrunk to 28x28.
// Frames end at an inaccessible page (an over-read faults) and the scratch starts as garbage;
// --heap allocates everything with malloc instead, exactly sized and never filled, for valgrind.
// Deterministic for a seed. Exits non-zero on the first mismatch, printing the case.
#define _GNU_SOURCE
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include "sieve_frames.h"

// ---- Random numbers -------------------------------------------------------------------------------------
static uint64_t rng_state, rng_seed;

static uint64_t rng_next(void) {
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void rng_case(int part, long index) { rng_state = rng_seed ^ ((uint64_t)part << 56) ^ ((uint64_t)index * 0xD1B54A32D192ED03ULL); rng_next(); }
static int32_t uniform(int32_t lo, int32_t hi) { return lo + (int32_t)(rng_next() % (uint64_t)(hi - lo + 1)); }
static int chance(int percent) { return uniform(0, 99) < percent; }

// ---- Buffers --------------------------------------------------------------------------------------------
// Guarded: `size` bytes ending at an inaccessible page, filled with garbage. Heap (--heap): malloc'd,
// exactly sized, 64-byte aligned, never filled, so valgrind sees over-reads and reads of unset bytes.
static int heap_mode;

typedef struct {
    void *map;
    size_t map_size;
    uint8_t *ptr;
} buffer;

static buffer buffer_new(size_t size) {
    buffer b = {0};
    if (heap_mode) {
        void *p = NULL;
        if (posix_memalign(&p, 64, size ? size : 1) != 0) { perror("posix_memalign"); exit(2); }
        b.ptr = p;
        return b;
    }
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    b.map_size = (size + page - 1) / page * page + page;
    b.map = mmap(NULL, b.map_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (b.map == MAP_FAILED) { perror("mmap"); exit(2); }
    if (mprotect((uint8_t *)b.map + b.map_size - page, page, PROT_NONE) != 0) { perror("mprotect"); exit(2); }
    b.ptr = (uint8_t *)b.map + b.map_size - page - size;
    for (size_t i = 0; i < size; i++) b.ptr[i] = (uint8_t)rng_next();
    return b;
}

static void buffer_free(buffer b) {
    if (heap_mode) free(b.ptr);
    else munmap(b.map, b.map_size);
}

// ---- 1. Formats and frame sizes ---------------------------------------------------------------------------
static long checks_passed;

static void expect_i64(const char *what, int64_t got, int64_t want) {
    if (got != want) { fprintf(stderr, "FAIL %s: got %lld, want %lld\n", what, (long long)got, (long long)want); exit(1); }
    checks_passed++;
}

static void check_formats(void) {
    static const struct { int32_t format, width, height, stride; int64_t bytes; } cases[] = {
        {SIEVE_FORMAT_GRAY8, 640, 480, 0, 307200}, {SIEVE_FORMAT_GRAY8, 640, 480, 640, 307200},
        {SIEVE_FORMAT_GRAY8, 640, 480, 641, 641 * 480}, {SIEVE_FORMAT_GRAY8, 640, 480, 639, -1},
        {SIEVE_FORMAT_GRAY8, 1, 1, 0, 1}, {SIEVE_FORMAT_GRAY8, 3, 5, 0, 15},
        {SIEVE_FORMAT_RGB24, 640, 480, 0, 921600}, {SIEVE_FORMAT_RGB24, 640, 480, 2048, 2048 * 480},
        {SIEVE_FORMAT_RGB24, 640, 480, 1919, -1}, {SIEVE_FORMAT_BGR24, 7, 3, 0, 63}, {SIEVE_FORMAT_BGR24, 7, 3, 22, 66},
        {SIEVE_FORMAT_I420, 640, 480, 0, 460800}, {SIEVE_FORMAT_I420, 640, 480, 704, 704 * 480 + 2 * 352 * 240},
        {SIEVE_FORMAT_I420, 640, 480, 641, -1}, {SIEVE_FORMAT_I420, 641, 480, 0, -1}, {SIEVE_FORMAT_I420, 640, 481, 0, -1},
        {SIEVE_FORMAT_I420, 2, 2, 0, 6}, {SIEVE_FORMAT_I420, 2, 2, 4, 8 + 2 * 2 * 1}, {SIEVE_FORMAT_I420, 4, 2, 2, -1},
        {SIEVE_FORMAT_NV12, 640, 480, 0, 460800}, {SIEVE_FORMAT_NV12, 640, 480, 641, 641 * 480 + 641 * 240},
        {SIEVE_FORMAT_NV12, 640, 481, 0, -1}, {SIEVE_FORMAT_NV12, 639, 480, 0, -1}, {SIEVE_FORMAT_NV12, 2, 2, 0, 6},
        {SIEVE_FORMAT_YUYV, 640, 480, 0, 614400}, {SIEVE_FORMAT_YUYV, 640, 481, 0, 1280 * 481},
        {SIEVE_FORMAT_YUYV, 641, 480, 0, -1}, {SIEVE_FORMAT_YUYV, 640, 480, 1281, 1281 * 480}, {SIEVE_FORMAT_YUYV, 640, 480, 1279, -1},
        {SIEVE_FORMAT_GRAY8, 0, 480, 0, -1}, {SIEVE_FORMAT_GRAY8, 640, 0, 0, -1}, {SIEVE_FORMAT_GRAY8, -2, 480, 0, -1},
        {SIEVE_FORMAT_GRAY8, 640, -480, 0, -1}, {SIEVE_FORMAT_GRAY8, 640, 480, -640, -1},
        {-1, 640, 480, 0, -1}, {SIEVE_FORMAT_COUNT, 640, 480, 0, -1},
        {SIEVE_FORMAT_GRAY8, 65536, 32768, 0, -2}, {SIEVE_FORMAT_GRAY8, 65536, 32769, 0, -2},
        {SIEVE_FORMAT_GRAY8, 65535, 32768, 0, 65535LL * 32768}, {SIEVE_FORMAT_GRAY8, 2147483647, 1, 0, 2147483647},
        {SIEVE_FORMAT_GRAY8, 1, 2147483647, 2147483647, -2}, {SIEVE_FORMAT_RGB24, 715827883, 1, 0, -2},
        {SIEVE_FORMAT_RGB24, 2147483647, 1, 0, -2}, {SIEVE_FORMAT_YUYV, 1073741824, 1, 0, -2},
        {SIEVE_FORMAT_I420, 65536, 21846, 0, -2}, {SIEVE_FORMAT_I420, 65536, 21844, 0, 65536LL * 21844 * 3 / 2},
    };
    char what[128];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(what, sizeof what, "sieve_frame_bytes(%d, %d, %d, %d)", cases[i].format, cases[i].width, cases[i].height, cases[i].stride);
        expect_i64(what, sieve_frame_bytes(cases[i].format, cases[i].width, cases[i].height, cases[i].stride), cases[i].bytes);
    }
    static const int64_t row_bytes_of_5[SIEVE_FORMAT_COUNT] = {5, 15, 15, 5, 5, 10};
    for (int32_t f = 0; f < SIEVE_FORMAT_COUNT; f++) {
        snprintf(what, sizeof what, "sieve_format_row_bytes(%d, 5)", f);
        expect_i64(what, sieve_format_row_bytes(f, 5), row_bytes_of_5[f]);
        snprintf(what, sizeof what, "sieve_format_named(sieve_format_name(%d))", f);
        expect_i64(what, sieve_format_named(sieve_format_name(f)), f);
    }
    expect_i64("sieve_format_row_bytes(gray8, 0)", sieve_format_row_bytes(SIEVE_FORMAT_GRAY8, 0), -1);
    expect_i64("sieve_format_row_bytes(7, 5)", sieve_format_row_bytes(7, 5), -1);
    static const struct { const char *name; int32_t format; } names[] = {
        {"gray8", 0}, {"gray", 0}, {"rgb24", 1}, {"bgr24", 2}, {"i420", 3}, {"yuv420p", 3}, {"yuv420", 3},
        {"nv12", 4}, {"yuyv", 5}, {"yuy2", 5}, {"", -1}, {"rgb", -1}, {"I420", -1}, {"yuv422", -1}};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(what, sizeof what, "sieve_format_named(\"%s\")", names[i].name);
        expect_i64(what, sieve_format_named(names[i].name), names[i].format);
    }
    expect_i64("sieve_format_named(NULL)", sieve_format_named(NULL), -1);
    const char *want_names[SIEVE_FORMAT_COUNT] = {"gray8", "rgb24", "bgr24", "i420", "nv12", "yuyv"};
    for (int32_t f = 0; f < SIEVE_FORMAT_COUNT; f++) expect_i64(want_names[f], strcmp(sieve_format_name(f), want_names[f]), 0);
    printf("formats: %ld checks passed\n", checks_passed);
}

// ---- The reference, from docs/FRAMES.md ---------------------------------------------------------------------
static int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
static int32_t clamp255(int64_t v) { return v < 0 ? 0 : v > 255 ? 255 : (int32_t)v; }

// "Colour": luma of a limited-range Y, and one of R, G, B (c 0, 1, 2) from Y, U, V.
static int32_t ref_limited_luma(int32_t y) { return clamp255(floor_div(2 * (y - 16) * 255 + 219, 2 * 219)); }

static int32_t ref_yuv_channel(int32_t y, int32_t u, int32_t v, int32_t c, int32_t full_range) {
    const int64_t ky = full_range ? 65536 : 76309, krv = full_range ? 91881 : 104597, kgu = full_range ? 22553 : 25675;
    const int64_t kgv = full_range ? 46802 : 53279, kbu = full_range ? 116130 : 132201;
    int64_t sum = ky * (y - (full_range ? 0 : 16)) + 32768;
    if (c == 0) sum += krv * (v - 128);
    if (c == 1) sum -= kgu * (u - 128) + kgv * (v - 128);
    if (c == 2) sum += kbu * (u - 128);
    return clamp255(floor_div(sum, 65536));
}

// Channel c of crop pixel (x, y) (frame coordinates), straight from the frame's bytes.
static int32_t ref_pixel(const sieve_frame_spec *s, const uint8_t *frame, int64_t x, int64_t y, int32_t c) {
    const int64_t bpp[SIEVE_FORMAT_COUNT] = {1, 3, 3, 1, 1, 2};
    const int64_t pitch = s->stride ? s->stride : bpp[s->format] * s->width, h = s->height;
    int32_t r, g, b, Y = 0, U = 0, V = 0;
    switch (s->format) {
    case SIEVE_FORMAT_GRAY8: return frame[y * pitch + x];
    case SIEVE_FORMAT_RGB24:
    case SIEVE_FORMAT_BGR24: {
        const uint8_t *p = frame + y * pitch + 3 * x;
        r = s->format == SIEVE_FORMAT_RGB24 ? p[0] : p[2], g = p[1], b = s->format == SIEVE_FORMAT_RGB24 ? p[2] : p[0];
        if (s->channels == 1) return (77 * r + 150 * g + 29 * b + 128) / 256;
        return c == 0 ? r : c == 1 ? g : b;
    }
    case SIEVE_FORMAT_I420:
        Y = frame[y * pitch + x];
        U = frame[pitch * h + (y / 2) * (pitch / 2) + x / 2];
        V = frame[pitch * h + (pitch / 2) * (h / 2) + (y / 2) * (pitch / 2) + x / 2];
        break;
    case SIEVE_FORMAT_NV12:
        Y = frame[y * pitch + x];
        U = frame[pitch * h + (y / 2) * pitch + 2 * (x / 2)];
        V = frame[pitch * h + (y / 2) * pitch + 2 * (x / 2) + 1];
        break;
    case SIEVE_FORMAT_YUYV:
        Y = frame[y * pitch + 2 * x];
        U = frame[y * pitch + 4 * (x / 2) + 1];
        V = frame[y * pitch + 4 * (x / 2) + 3];
        break;
    }
    if (s->channels == 1) return s->full_range ? Y : ref_limited_luma(Y);
    return ref_yuv_channel(Y, U, V, c, s->full_range);
}

// "Resize": weight of source index j in output index i, and the axis's denominator.
static int64_t ref_denominator(int64_t src, int64_t dst) { return src == dst ? 1 : src > dst ? src : 2 * dst; }

static int64_t ref_weight(int64_t src, int64_t dst, int64_t i, int64_t j) {
    if (src == dst) return i == j;
    if (src > dst) { // overlap of [i src, (i + 1) src) and [j dst, (j + 1) dst)
        const int64_t lo = i * src > j * dst ? i * src : j * dst;
        const int64_t hi = (i + 1) * src < (j + 1) * dst ? (i + 1) * src : (j + 1) * dst;
        return hi > lo ? hi - lo : 0;
    }
    int64_t t = (2 * i + 1) * src - dst; // tent of half-width 2 dst around the clamped coordinate
    if (t < 0) t = 0;
    if (t > 2 * dst * (src - 1)) t = 2 * dst * (src - 1);
    const int64_t distance = t > 2 * dst * j ? t - 2 * dst * j : 2 * dst * j - t;
    return distance < 2 * dst ? 2 * dst - distance : 0;
}

static void ref_preprocess(const sieve_frame_spec *s, const uint8_t *frame, int8_t *input) {
    const int64_t d = ref_denominator(s->crop_w, s->out_w) * ref_denominator(s->crop_h, s->out_h);
    for (int64_t oy = 0; oy < s->out_h; oy++)
        for (int64_t ox = 0; ox < s->out_w; ox++)
            for (int32_t c = 0; c < s->channels; c++) {
                uint64_t sum = 0;
                for (int64_t sy = 0; sy < s->crop_h; sy++) {
                    const int64_t wy = ref_weight(s->crop_h, s->out_h, oy, sy);
                    if (wy == 0) continue;
                    for (int64_t sx = 0; sx < s->crop_w; sx++) {
                        const int64_t w = wy * ref_weight(s->crop_w, s->out_w, ox, sx);
                        if (w != 0) sum += (uint64_t)w * (uint64_t)ref_pixel(s, frame, s->crop_x + sx, s->crop_y + sy, c);
                    }
                }
                const int32_t v = clamp255((int64_t)((sum + (uint64_t)d / 2) / (uint64_t)d));
                input[(oy * s->out_w + ox) * s->channels + c] = s->table[c * 256 + v];
            }
}

// ---- 2. Colour against BT.601 in double precision --------------------------------------------------------------
static void check_colour(void) {
    const double kr = 0.299, kb = 0.114, kg = 1 - kr - kb;
    long nearest = 0, total = 0;
    for (int32_t full = 0; full <= 1; full++) {
        const double ys = full ? 1.0 : 255.0 / 219.0, cs = full ? 1.0 : 255.0 / 224.0, y0 = full ? 0 : 16;
        double worst = 0;
        for (int32_t y = 0; y < 256; y++)
            for (int32_t u = 0; u < 256; u++)
                for (int32_t v = 0; v < 256; v++) {
                    const double l = ys * (y - y0), pu = cs * (u - 128), pv = cs * (v - 128);
                    const double real[3] = {l + 2 * (1 - kr) * pv, l - 2 * kb * (1 - kb) / kg * pu - 2 * kr * (1 - kr) / kg * pv, l + 2 * (1 - kb) * pu};
                    for (int32_t c = 0; c < 3; c++) {
                        const double want = real[c] < 0 ? 0 : real[c] > 255 ? 255 : real[c];
                        const int32_t got = ref_yuv_channel(y, u, v, c, full);
                        const double error = fabs(got - want);
                        if (error >= 1.0) {
                            fprintf(stderr, "FAIL colour: %s Y %d U %d V %d channel %d: %d, BT.601 %.4f\n", full ? "full" : "limited", y, u, v, c, got, want);
                            exit(1);
                        }
                        if (error > worst) worst = error;
                        nearest += error <= 0.5 + 1e-9, total++;
                    }
                }
        printf("colour: %s range, 3 x 2^24 YUV -> RGB within 1 LSB of BT.601 (largest error %.4f)\n", full ? "full" : "limited", worst);
    }
    printf("colour: %ld of %ld channel values are a nearest integer to the real value\n", nearest, total);
    for (int32_t y = 0; y < 256; y++) {
        const double real = (y - 16) * 255.0 / 219.0;
        const int32_t want = real < 0 ? 0 : real > 255 ? 255 : (int32_t)floor(real + 0.5);
        expect_i64("limited luma = round((Y - 16) 255 / 219)", ref_limited_luma(y), want);
        for (int32_t c = 0; c < 3; c++) { // neutral chroma: R = G = B = luma, both ranges
            expect_i64("limited R, G, B of gray = luma", ref_yuv_channel(y, 128, 128, c, 0), want);
            expect_i64("full R, G, B of gray = Y", ref_yuv_channel(y, 128, 128, c, 1), y);
        }
        expect_i64("luma of R = G = B", (77 * y + 150 * y + 29 * y + 128) >> 8, y);
    }
    printf("colour: luma expansion exact, gray -> R = G = B = luma for every Y\n");
}

// Every Y, U, V of both ranges through sieve_preprocess: per Y, a 512x256 YUYV frame whose pixel pair k
// of row v is (Y, U = k, Y, V = v), at output size = crop size (no resize), table = identity + 128.
static void check_colour_path(void) {
    static uint8_t frame[256 * 1024];
    static int8_t out[512 * 256 * 3];
    static uint8_t scratch[64 * 1024] __attribute__((aligned(64)));
    int8_t table[3 * 256];
    for (int32_t c = 0; c < 3; c++)
        for (int32_t v = 0; v < 256; v++) table[c * 256 + v] = (int8_t)(v - 128);
    for (int32_t full = 0; full <= 1; full++) {
        const sieve_frame_spec s = {SIEVE_FORMAT_YUYV, 512, 256, 0, 0, 0, 512, 256, 512, 256, 3, full, table};
        if (sieve_preprocess_scratch_size(&s) > sizeof scratch) { fprintf(stderr, "colour path: scratch too small\n"); exit(2); }
        sieve_preprocess_init(&s, scratch);
        for (int32_t y = 0; y < 256; y++) {
            for (int32_t v = 0; v < 256; v++)
                for (int32_t u = 0; u < 256; u++) {
                    uint8_t *p = frame + v * 1024 + 4 * u;
                    p[0] = (uint8_t)y, p[1] = (uint8_t)u, p[2] = (uint8_t)y, p[3] = (uint8_t)v;
                }
            sieve_preprocess(&s, scratch, frame, out);
            for (int32_t v = 0; v < 256; v++)
                for (int32_t x = 0; x < 512; x++)
                    for (int32_t c = 0; c < 3; c++) {
                        const int32_t got = out[(v * 512 + x) * 3 + c] + 128, want = ref_yuv_channel(y, x / 2, v, c, full);
                        if (got != want) {
                            fprintf(stderr, "FAIL colour path: %s range Y %d U %d V %d channel %d: %d, want %d\n", full ? "full" : "limited", y, x / 2, v, c, got, want);
                            exit(1);
                        }
                    }
        }
    }
    printf("colour: sieve_preprocess converts every Y, U, V of both ranges as the formulas do\n");
}

// ---- Cases ------------------------------------------------------------------------------------------------
static void print_case(const char *what, long index, const sieve_frame_spec *s) {
    fprintf(stderr, "FAIL %s, case %ld (seed %llu): %s %dx%d stride %d, crop (%d, %d) %dx%d -> %dx%dx%d, %s range\n", what, index,
            (unsigned long long)rng_seed, sieve_format_name(s->format), s->width, s->height, s->stride, s->crop_x, s->crop_y,
            s->crop_w, s->crop_h, s->out_w, s->out_h, s->channels, s->full_range ? "full" : "limited");
}

// A one-to-one table per channel, so that every wrong value shows.
static void random_table(int8_t *table, int32_t channels) {
    for (int32_t c = 0; c < channels; c++) {
        const int32_t scale = 2 * uniform(0, 127) + 1, offset = uniform(0, 255);
        for (int32_t v = 0; v < 256; v++) table[c * 256 + v] = (int8_t)(uint8_t)((v * scale + offset) & 255);
    }
}

// Output size along an axis of `src` crop pixels: 0 shrink, 1 enlarge, 2 equal.
static int32_t random_out(int32_t src, int *mode) {
    if (src == 1 && *mode == 0) *mode = chance(50) ? 1 : 2;
    if (*mode == 0) return chance(20) ? uniform(1, src < 4 ? 1 : src / 4) : uniform(1, src - 1);
    if (*mode == 1) return chance(30) ? uniform(src + 1, src + 3) : uniform(src + 1, 4 * src + 8);
    return src;
}

static int32_t random_size(int32_t even) {
    int32_t n = chance(10) ? uniform(1, 160) : chance(30) ? uniform(1, 6) : uniform(1, 48);
    if (even && n % 2) n += 1;
    return n;
}

static int32_t random_stride(int32_t format, int32_t width) {
    const int64_t row = sieve_format_row_bytes(format, width);
    if (chance(40)) return 0;
    if (chance(20)) return (int32_t)row;
    int32_t stride = (int32_t)row + uniform(1, 70);
    if (format == SIEVE_FORMAT_I420 && stride % 2) stride += 1;
    return stride;
}

static sieve_frame_spec random_spec(int mode[2]) {
    sieve_frame_spec s;
    memset(&s, 0, sizeof s);
    s.format = uniform(0, SIEVE_FORMAT_COUNT - 1);
    const int subsampled = s.format == SIEVE_FORMAT_I420 || s.format == SIEVE_FORMAT_NV12;
    s.width = random_size(subsampled || s.format == SIEVE_FORMAT_YUYV);
    s.height = random_size(subsampled);
    s.stride = random_stride(s.format, s.width);
    if (chance(15)) s.crop_x = 0, s.crop_w = s.width;
    else s.crop_x = uniform(0, s.width - 1), s.crop_w = uniform(1, s.width - s.crop_x);
    if (chance(15)) s.crop_y = 0, s.crop_h = s.height;
    else s.crop_y = uniform(0, s.height - 1), s.crop_h = uniform(1, s.height - s.crop_y);
    mode[0] = uniform(0, 2), mode[1] = uniform(0, 2);
    s.out_w = random_out(s.crop_w, &mode[0]);
    s.out_h = random_out(s.crop_h, &mode[1]);
    s.channels = chance(50) ? 1 : 3;
    s.full_range = chance(50);
    return s;
}

// Work of the reference: per output value, a pass over crop rows and a crop row per nonzero row weight.
static double reference_cost(const sieve_frame_spec *s) {
    const double rows = s->crop_h > s->out_h ? (double)s->crop_h / s->out_h + 1 : 2;
    return (double)s->out_w * s->out_h * s->channels * (s->crop_h + rows * s->crop_w);
}

// Runs sieve_preprocess on `frames` frames through one scratch and compares each with the reference.
static void run_case(const char *what, long index, const sieve_frame_spec *s, int frames) {
    const int64_t frame_bytes = sieve_frame_bytes(s->format, s->width, s->height, s->stride);
    if (frame_bytes < 0) { print_case("invalid generated frame", index, s); exit(2); }
    const size_t scratch_size = sieve_preprocess_scratch_size(s), out_bytes = (size_t)s->out_w * s->out_h * s->channels;
    buffer scratch = buffer_new(scratch_size), out = buffer_new(out_bytes + 128);
    if (((uintptr_t)scratch.ptr & 63) != 0) { fprintf(stderr, "scratch size %zu is not a multiple of 64\n", scratch_size); exit(1); }
    int8_t *want = malloc(out_bytes), *got = (int8_t *)out.ptr + 64;
    sieve_preprocess_init(s, scratch.ptr);
    for (int f = 0; f < frames; f++) {
        buffer frame = buffer_new((size_t)frame_bytes);
        if (heap_mode) for (int64_t i = 0; i < frame_bytes; i++) frame.ptr[i] = (uint8_t)rng_next();
        memset(out.ptr, 0x5A, out_bytes + 128);
        sieve_preprocess(s, scratch.ptr, frame.ptr, got);
        ref_preprocess(s, frame.ptr, want);
        for (size_t i = 0; i < 64; i++)
            if (out.ptr[i] != 0x5A || out.ptr[64 + out_bytes + i] != 0x5A) { print_case("write outside the input", index, s); exit(1); }
        for (size_t i = 0; i < out_bytes; i++)
            if (got[i] != want[i]) {
                print_case(what, index, s);
                const size_t ch = (size_t)s->channels, x = i / ch % (size_t)s->out_w, y = i / ch / (size_t)s->out_w;
                fprintf(stderr, "  frame %d, output (x %zu, y %zu, channel %zu): %d, reference %d\n", f, x, y, i % ch, got[i], want[i]);
                exit(1);
            }
        buffer_free(frame);
    }
    free(want);
    buffer_free(scratch);
    buffer_free(out);
}

// ---- 3. Random cases against the reference ---------------------------------------------------------------------
static void check_random(long count) {
    static const char *const modes[3] = {"shrink", "enlarge", "equal"};
    long by_format[SIEVE_FORMAT_COUNT][2] = {{0}}, by_mode[3][3] = {{0}}, odd_origin = 0, padded = 0, values = 0, paths[3] = {0};
    int8_t table[3 * 256];
    for (long index = 0; index < count; index++) {
        rng_case(3, index);
        int mode[2];
        sieve_frame_spec s = random_spec(mode);
        while (reference_cost(&s) > 3e6) s = random_spec(mode);
        random_table(table, s.channels);
        s.table = table;
        run_case("sieve_preprocess differs from the reference", index, &s, 2);
        by_format[s.format][s.channels == 3]++, by_mode[mode[0]][mode[1]]++, paths[sieve_preprocess_path(&s)]++;
        odd_origin += (s.crop_x % 2) || (s.crop_y % 2), padded += s.stride > sieve_format_row_bytes(s.format, s.width);
        values += 2L * s.out_w * s.out_h * s.channels;
    }
    printf("random: %ld cases (2 frames each, %ld output values) equal to the reference\n", count, values);
    printf("  by path: %ld general, %ld luma shrink, %ld 4:2:0 R, G, B\n", paths[SIEVE_PREPROCESS_GENERAL], paths[SIEVE_PREPROCESS_LUMA],
           paths[SIEVE_PREPROCESS_RGB420]);
    printf("  by format (1 channel / 3 channels):");
    for (int32_t f = 0; f < SIEVE_FORMAT_COUNT; f++) printf(" %s %ld/%ld", sieve_format_name(f), by_format[f][0], by_format[f][1]);
    printf("\n  by resize (x, y):");
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) printf(" %s-%s %ld", modes[i], modes[j], by_mode[i][j]);
    printf("\n  odd crop origin %ld, padded stride %ld\n", odd_origin, padded);
}

// Camera-sized cases: 640x480 frames of every format cropped to 480x480 at even and odd origins,
// shrunk to 28x28 or to 224x224 (the camera-resolution networks' input), or 64x48 crops enlarged to
// 224x168 (skipped under --heap: slow under valgrind). Counts the cases each runtime path took.
static void check_camera(void) {
    int8_t table[3 * 256];
    long cases = 0, paths[3] = {0};
    for (int32_t format = 0; format < SIEVE_FORMAT_COUNT; format++)
        for (int32_t channels = 1; channels <= 3; channels += 2)
            for (int32_t full = 0; full <= 1; full++) {
                rng_case(5, cases);
                for (int32_t big = 0; big <= 1; big++) {
                    const int32_t odd = (int32_t)(cases % 2), shrink = big || (int32_t)(cases / 2 % 2) == 0;
                    const int32_t side = big ? 224 : 28;
                    sieve_frame_spec s = {format, 640, 480, cases % 3 == 0 ? 0 : (int32_t)sieve_format_row_bytes(format, 640) + 64,
                                          80 + odd, odd, shrink ? 480 - odd : 64, shrink ? 480 - odd : 48,
                                          shrink ? side : 224, shrink ? side : 168, channels, full, table};
                    random_table(table, channels);
                    run_case("camera case differs from the reference", cases, &s, 1);
                    paths[sieve_preprocess_path(&s)]++;
                    cases++;
                }
            }
    // 480x480 I420 and NV12 to 224x224x3, both ranges, even and odd origins: four cases at least.
    if (paths[SIEVE_PREPROCESS_RGB420] < 4) {
        fprintf(stderr, "FAIL: only %ld camera cases took the 4:2:0 R, G, B path\n", paths[SIEVE_PREPROCESS_RGB420]);
        exit(1);
    }
    printf("camera: %ld cases of 640x480 frames equal to the reference (paths: %ld general, %ld luma shrink, %ld 4:2:0 R, G, B)\n",
           cases, paths[SIEVE_PREPROCESS_GENERAL], paths[SIEVE_PREPROCESS_LUMA], paths[SIEVE_PREPROCESS_RGB420]);
}

// ---- 4. The 16x round trip ---------------------------------------------------------------------------------------
// Writes pixel (x, y) of a frame: value[0 ... 2] is gray, (R, G, B) or (Y, U, V) by format; chroma
// of a YUV format is written at the chroma sample of (x, y).
static void put_pixel(const sieve_frame_spec *s, uint8_t *frame, int64_t x, int64_t y, const uint8_t value[3]) {
    const int64_t bpp[SIEVE_FORMAT_COUNT] = {1, 3, 3, 1, 1, 2};
    const int64_t pitch = s->stride ? s->stride : bpp[s->format] * s->width, h = s->height;
    uint8_t *row = frame + y * pitch;
    switch (s->format) {
    case SIEVE_FORMAT_GRAY8: row[x] = value[0]; break;
    case SIEVE_FORMAT_RGB24: row[3 * x] = value[0], row[3 * x + 1] = value[1], row[3 * x + 2] = value[2]; break;
    case SIEVE_FORMAT_BGR24: row[3 * x] = value[2], row[3 * x + 1] = value[1], row[3 * x + 2] = value[0]; break;
    case SIEVE_FORMAT_I420:
        row[x] = value[0];
        frame[pitch * h + (y / 2) * (pitch / 2) + x / 2] = value[1];
        frame[pitch * h + (pitch / 2) * (h / 2) + (y / 2) * (pitch / 2) + x / 2] = value[2];
        break;
    case SIEVE_FORMAT_NV12:
        row[x] = value[0];
        frame[pitch * h + (y / 2) * pitch + 2 * (x / 2)] = value[1];
        frame[pitch * h + (y / 2) * pitch + 2 * (x / 2) + 1] = value[2];
        break;
    case SIEVE_FORMAT_YUYV: row[2 * x] = value[0], row[4 * (x / 2) + 1] = value[1], row[4 * (x / 2) + 3] = value[2]; break;
    }
}

static void check_round_trip(void) {
    enum { small = 28, factor = 16, big = small * factor };
    static uint8_t image[small][small][3];
    int8_t table[3 * 256];
    for (int32_t c = 0; c < 3; c++)
        for (int32_t v = 0; v < 256; v++) table[c * 256 + v] = (int8_t)(v - 128);
    long trips = 0;
    for (int32_t format = 0; format < SIEVE_FORMAT_COUNT; format++)
        for (int32_t channels = 1; channels <= 3; channels += 2)
            for (int32_t full = 0; full <= 1; full++) {
                if (format < SIEVE_FORMAT_I420 && full == 0) continue; // the range is a YUV matter
                rng_case(4, trips);
                sieve_frame_spec s = {format, big + 2 * uniform(0, 20), big + 2 * uniform(0, 20), 0, 0, 0, big, big, small, small, channels, full, table};
                s.crop_x = 2 * uniform(0, (s.width - big) / 2), s.crop_y = 2 * uniform(0, (s.height - big) / 2);
                if (format < SIEVE_FORMAT_I420) s.crop_x += uniform(0, s.width - big - s.crop_x); // any origin without chroma
                s.stride = random_stride(format, s.width);
                buffer frame = buffer_new((size_t)sieve_frame_bytes(format, s.width, s.height, s.stride));
                if (heap_mode) memset(frame.ptr, 0, (size_t)sieve_frame_bytes(format, s.width, s.height, s.stride));
                for (int32_t y = 0; y < small; y++)
                    for (int32_t x = 0; x < small; x++)
                        for (int32_t c = 0; c < 3; c++) image[y][x][c] = (uint8_t)rng_next();
                for (int32_t y = 0; y < big; y++)
                    for (int32_t x = 0; x < big; x++) put_pixel(&s, frame.ptr, s.crop_x + x, s.crop_y + y, image[y / factor][x / factor]);
                buffer scratch = buffer_new(sieve_preprocess_scratch_size(&s));
                int8_t out[small * small * 3];
                sieve_preprocess_init(&s, scratch.ptr);
                sieve_preprocess(&s, scratch.ptr, frame.ptr, out);
                for (int32_t y = 0; y < small; y++)
                    for (int32_t x = 0; x < small; x++)
                        for (int32_t c = 0; c < channels; c++) {
                            const int32_t want = ref_pixel(&s, frame.ptr, s.crop_x + factor * x, s.crop_y + factor * y, c);
                            const int32_t got = out[(y * small + x) * channels + c] + 128;
                            const int32_t original = format == SIEVE_FORMAT_GRAY8 || (format > SIEVE_FORMAT_BGR24 && channels == 1 && full)
                                                             ? image[y][x][0] : format <= SIEVE_FORMAT_BGR24 && channels == 3 ? image[y][x][c] : want;
                            if (got != want || got != original) {
                                print_case("16x round trip", trips, &s);
                                fprintf(stderr, "  pixel (%d, %d) channel %d: %d, want %d (original %d)\n", x, y, c, got, want, original);
                                exit(1);
                            }
                        }
                buffer_free(frame);
                buffer_free(scratch);
                trips++;
            }
    printf("round trip: %d -> %d -> %d exact for %ld format, channel and range combinations\n", small, big, small, trips);
}

// ---- 5. Timing ----------------------------------------------------------------------------------------------------
static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static void bench(int32_t format, int32_t channels, int32_t full_range, int32_t out) {
    int8_t table[3 * 256] = {0};
    sieve_frame_spec s = {format, 640, 480, 0, 80, 0, 480, 480, out, out, channels, full_range, table};
    const int64_t bytes = sieve_frame_bytes(format, 640, 480, 0);
    uint8_t *frame = malloc((size_t)bytes), *input = malloc((size_t)out * out * channels);
    void *scratch = NULL;
    if (posix_memalign(&scratch, 64, sieve_preprocess_scratch_size(&s)) != 0) exit(2);
    for (int64_t i = 0; i < bytes; i++) frame[i] = (uint8_t)rng_next();
    sieve_preprocess_init(&s, scratch);
    long runs = 0;
    double best = 1e9;
    const double start = now();
    while (now() - start < 0.3 || runs < 20) {
        const double t = now();
        sieve_preprocess(&s, scratch, frame, (int8_t *)input);
        const double dt = now() - t;
        if (dt < best) best = dt;
        runs++;
    }
    const double mean = (now() - start) / runs;
    printf("bench: %s 640x480 crop 480x480 -> %dx%dx%d, %s range: %.1f us mean, %.1f us best (%ld runs, scratch %zu bytes)\n",
           sieve_format_name(format), out, out, channels, full_range ? "full" : "limited", mean * 1e6, best * 1e6, runs,
           sieve_preprocess_scratch_size(&s));
    free(frame), free(input), free(scratch);
}

int main(int argc, char **argv) {
    long count = 2000;
    int run_bench = 0, colour = 1;
    rng_seed = 1;
    for (int i = 1; i < argc; i++) {
        if (strncmp(argv[i], "--seed=", 7) == 0) rng_seed = strtoull(argv[i] + 7, NULL, 10);
        else if (strcmp(argv[i], "--heap") == 0) heap_mode = 1;
        else if (strcmp(argv[i], "--bench") == 0) run_bench = 1;
        else if (strcmp(argv[i], "--no-colour") == 0) colour = 0;
        else if (argv[i][0] != '-') count = atol(argv[i]);
        else { fprintf(stderr, "usage: %s [COUNT] [--seed=N] [--heap] [--no-colour] [--bench]\n", argv[0]); return 2; }
    }
    check_formats();
    if (colour) check_colour(), check_colour_path();
    check_random(count);
    if (!heap_mode) check_camera();
    check_round_trip();
    if (run_bench) {
        bench(SIEVE_FORMAT_I420, 1, 0, 28);
        bench(SIEVE_FORMAT_I420, 1, 1, 28);
        bench(SIEVE_FORMAT_I420, 3, 0, 28);
        bench(SIEVE_FORMAT_NV12, 3, 1, 28);
        bench(SIEVE_FORMAT_YUYV, 1, 0, 28);
        bench(SIEVE_FORMAT_RGB24, 3, 1, 28);
        bench(SIEVE_FORMAT_I420, 3, 0, 224);
    }
    printf("== preprocessing matches docs/FRAMES.md\n");
    return 0;
}
