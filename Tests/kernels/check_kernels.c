// Bit-exactness of the SIMD paths against the scalar kernels (docs/KERNELS.md).
//
//   check_kernels [COUNT] [--seed=N] [--expect=neon,neondot,...] [--best=PATH] [--macs=N]
//
// For every path this CPU can run (scalar excepted), COUNT random cases of each op: conv (grouped too),
// depthwise conv and fully connected, through the public dispatch (sieve_*_packed_size / pack /
// scratch_size / run), compared byte for byte with the scalar kernel of the whole op. Each conv and
// depthwise case also runs as random bands of output rows (sieve_conv_rows) and each fully connected
// case as random output-channel ranges, in random order, checking that a band writes only its rows.
// Inputs end at an inaccessible page (an over-read faults), packed and scratch buffers are 64-byte
// aligned and guarded the same way, scratch starts as garbage, outputs carry guard bytes.
// --expect lists the non-scalar paths this CPU must have (anything else is a failure), --best the
// path sieve_isa_best() must pick; --macs bounds a case's size (multiply-accumulates of the op).
// Deterministic: the same seed and count give the same cases. Exits non-zero on the first mismatch.
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>
#include "sieve_kernels.h"
#include "sieve_isa.h"

// ---- Random numbers ---------------------------------------------------------------------------------
static uint64_t rng_state;

static uint64_t rng_next(void) {
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

// Each case starts from its own state, so a case is the same whatever paths ran before it.
static uint64_t rng_seed;
static void rng_case(int op, long index) { rng_state = rng_seed ^ ((uint64_t)op << 56) ^ ((uint64_t)index * 0xD1B54A32D192ED03ULL); rng_next(); }

static int32_t uniform(int32_t lo, int32_t hi) { return lo + (int32_t)(rng_next() % (uint64_t)(hi - lo + 1)); }
static int chance(int percent) { return uniform(0, 99) < percent; }
#define PICK(list) (list)[uniform(0, (int32_t)(sizeof(list) / sizeof((list)[0])) - 1)]

// ---- Guarded buffers ----------------------------------------------------------------------------------
// `size` bytes ending `slack` bytes before an inaccessible page: slack 0 for tensors the kernels read
// in place (any start alignment, an over-read faults), the round-up to 64 for packed and scratch.
typedef struct {
    void *map;
    size_t map_size, size;
    uint8_t *ptr;
} buffer;

static size_t page_size(void) { return (size_t)sysconf(_SC_PAGESIZE); }

static buffer buffer_new(size_t size, int aligned) {
    buffer b;
    const size_t page = page_size(), rounded = aligned ? (size + 63) / 64 * 64 : size;
    b.map_size = (rounded + page - 1) / page * page + page;
    b.map = mmap(NULL, b.map_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (b.map == MAP_FAILED) { perror("mmap"); exit(2); }
    if (mprotect((uint8_t *)b.map + b.map_size - page, page, PROT_NONE) != 0) { perror("mprotect"); exit(2); }
    b.ptr = (uint8_t *)b.map + b.map_size - page - rounded;
    b.size = rounded;
    for (size_t i = 0; i < rounded; i++) b.ptr[i] = (uint8_t)rng_next();  // garbage
    return b;
}

static void buffer_free(buffer *b) {
    if (b->map != NULL) munmap(b->map, b->map_size);
    b->map = NULL;
    b->ptr = NULL;
}

// Output buffers: GUARD bytes of a pattern on both sides.
#define GUARD 64
static uint8_t guard_byte(size_t i) { return (uint8_t)(0xA5 ^ (i * 29)); }

static int8_t *output_new(size_t size) {
    uint8_t *b = malloc(size + 2 * GUARD);
    if (b == NULL) { perror("malloc"); exit(2); }
    for (size_t i = 0; i < GUARD; i++) { b[i] = guard_byte(i); b[GUARD + size + i] = guard_byte(i + 1000); }
    return (int8_t *)(b + GUARD);
}

static int output_guards_intact(const int8_t *out, size_t size) {
    const uint8_t *b = (const uint8_t *)out - GUARD;
    for (size_t i = 0; i < GUARD; i++) {
        if (b[i] != guard_byte(i) || b[GUARD + size + i] != guard_byte(i + 1000)) return 0;
    }
    return 1;
}

static void output_free(int8_t *out) { free((uint8_t *)out - GUARD); }

// ---- Values -------------------------------------------------------------------------------------------
// Modes: uniform int8; extremes; the blobs' weights ([-127, 127]) against inputs rich in -128; all -128;
// 7-bit blobs' weights ([-63, 63]) against inputs rich in -128 and 127; weights of +-64 (every pair
// at the edge of avx2's u8 x s8 route: 255 * 128 = 32640); 7-bit weights with one pair planted that
// breaks that route's bound (check_conv then expects the int16 route).
enum { VALUES_UNIFORM, VALUES_EXTREME, VALUES_BLOB, VALUES_ALL_MIN, VALUES_SMALL, VALUES_W7, VALUES_PAIR_EDGE, VALUES_W7_BROKEN };

static int8_t value(int mode, int is_weight) {
    static const int8_t extremes[] = {-128, -128, -127, 127, 126, -1, 0, 1};
    switch (mode) {
    case VALUES_EXTREME: return chance(70) ? PICK(extremes) : (int8_t)uniform(-128, 127);
    case VALUES_BLOB: return is_weight ? (int8_t)(chance(40) ? (chance(50) ? -127 : 127) : uniform(-127, 127))
                                       : (int8_t)(chance(40) ? -128 : uniform(-128, 127));
    case VALUES_ALL_MIN: return -128;
    case VALUES_SMALL: return (int8_t)uniform(-4, 4);
    case VALUES_W7:
    case VALUES_W7_BROKEN:
    case VALUES_PAIR_EDGE:
        if (!is_weight) return (int8_t)(chance(30) ? -128 : chance(30) ? 127 : uniform(-128, 127));
        if (mode == VALUES_PAIR_EDGE && chance(70)) return (int8_t)(chance(50) ? 64 : -64);
        return (int8_t)(chance(40) ? (chance(50) ? -63 : 63) : uniform(-63, 63));
    default: return (int8_t)uniform(-128, 127);
    }
}

static int values_mode(void) {
    const int r = uniform(0, 99);
    return r < 45 ? VALUES_UNIFORM : r < 63 ? VALUES_EXTREME : r < 78 ? VALUES_BLOB : r < 86 ? VALUES_W7 : r < 90 ? VALUES_PAIR_EDGE
         : r < 93 ? VALUES_W7_BROKEN : VALUES_ALL_MIN;
}

static const char *values_name(int mode) {
    static const char *names[] = {"uniform", "extreme", "blob", "all -128", "small", "7-bit", "pair edge +-64", "7-bit, one pair broken"};
    return names[mode];
}

static double square_root(double x) {
    double r = x > 1 ? x : 1;
    for (int i = 0; i < 60; i++) r = (r + x / r) / 2;
    return r;
}

static int log2_floor(double x) {
    int n = 0;
    while (x >= 2.0) { x /= 2.0; n++; }
    return n;
}

// Per-channel requantisation: multipliers in [2^30, 2^31); shifts either scaled to the accumulator's
// spread (outputs varied, some clamped), anywhere in 1...62, or around the 31/32 boundary.
enum { SHIFTS_SCALED, SHIFTS_ANY, SHIFTS_BOUNDARY };
static const char *shifts_name(int mode) {
    static const char *names[] = {"scaled", "any", "31/32 boundary"};
    return names[mode];
}

// Picks the value and shift modes of case `index`: boundary shifts (30...34, where the two exact
// requantisation forms meet) need small accumulators to leave outputs unclamped, so they come with
// small values.
static void modes_new(int *values, int *shifts, long index) {
    *values = index % 20 == 0 ? VALUES_ALL_MIN : values_mode();  // every 20th case all -128, whatever the count
    const int r = uniform(0, 99);
    *shifts = r < 65 ? SHIFTS_SCALED : r < 82 ? SHIFTS_ANY : SHIFTS_BOUNDARY;
    if (*shifts == SHIFTS_BOUNDARY && *values != VALUES_ALL_MIN && chance(85)) *values = VALUES_SMALL;
    if (*values == VALUES_ALL_MIN && *shifts == SHIFTS_BOUNDARY) *shifts = SHIFTS_SCALED;
}

// Per-channel requantisation: multipliers in [2^30, 2^31); shifts scaled to the accumulator's
// spread (outputs varied, some clamped), anywhere in 1...62 (or in 33...62), or around the 31/32 boundary.
static void requant_new(int32_t out_c, int32_t k, int values, int mode, int32_t *bias, int32_t *multipliers, int32_t *shifts) {
    const int bias_bits = mode == SHIFTS_BOUNDARY ? uniform(0, 6) : uniform(0, 24);
    for (int32_t c = 0; c < out_c; c++) {
        bias[c] = bias_bits == 0 ? 0 : uniform(-(1 << bias_bits), 1 << bias_bits);
        multipliers[c] = chance(10) ? (chance(50) ? 1 << 30 : INT32_MAX) : (int32_t)(0x40000000u + (uint32_t)(rng_next() % 0x40000000u));
    }
    const double spread = values == VALUES_ALL_MIN ? 16384.0 * k : 5500.0 * square_root((double)k);
    if (mode == SHIFTS_SCALED) {
        for (int32_t c = 0; c < out_c; c++) {
            const double a = spread + (bias[c] < 0 ? -(double)bias[c] : (double)bias[c]) / 4;
            int32_t s = 31 + log2_floor(a / 64.0 + 1.0) + uniform(-2, 2);
            shifts[c] = s < 1 ? 1 : s > 62 ? 62 : s;
        }
    } else if (mode == SHIFTS_ANY) {
        // Sometimes every channel in 33...62: whole blocks on the 32-bit forms (avx2, neon), up to s = 62.
        const int32_t lo = chance(30) ? 33 : 1;
        for (int32_t c = 0; c < out_c; c++) shifts[c] = uniform(lo, 62);
    } else {
        const int32_t lo = uniform(30, 32);
        for (int32_t c = 0; c < out_c; c++) shifts[c] = uniform(lo, lo + 2);
    }
}

// Multipliers as the quantiser rounds them for convs (few significant bits, so the x86 kernels'
// short-multiplier form applies, sieve_rq_short_lane): for each channel, m is chosen near the
// largest that keeps |bias| + 128 * sum|w| times m (plus the rounding term) below 2^31, at it, or
// one past it (the kernels must then keep the 64-bit product), and M = m shifted up into
// [2^30, 2^31). `at_edge`: every channel exactly at or one past the limit. Weight i of channel c
// is at weights[i * tap_stride + c * channel_stride] (depthwise: [k][out_c]; conv: [out_c][k]).
static void shorten_multipliers(int32_t out_c, int32_t k, const int8_t *weights, size_t tap_stride, size_t channel_stride,
                                const int32_t *bias, int32_t *multipliers, const int32_t *shifts, int at_edge) {
    for (int32_t c = 0; c < out_c; c++) {
        int64_t bound = bias[c] < 0 ? -(int64_t)bias[c] : bias[c];
        for (int32_t t = 0; t < k; t++) {
            const int8_t w = weights[(size_t)t * tap_stride + (size_t)c * channel_stride];
            bound += 128 * (int64_t)(w < 0 ? -w : w);
        }
        int64_t m = ((int64_t)1 << 31) / (bound > 0 ? bound : 1);  // just past the limit, before rounding terms
        if (!at_edge) m = m >> uniform(0, 3);
        if (m >= ((int64_t)1 << 31)) m = ((int64_t)1 << 31) - 1;
        if (m < 1) m = 1;
        int32_t bits = 0;
        while (((int64_t)1 << (bits + 1)) <= m) bits++;  // m in [2^bits, 2^(bits+1))
        const int32_t t = 30 - bits;
        if (shifts[c] - t < 1) continue;  // keep the drawn multiplier: no short form for it
        // At the edge: the largest m with bound * m + 2^(s'-1) < 2^31, or one more.
        if (at_edge) {
            const int64_t round = (int64_t)1 << (shifts[c] - t - 1 < 62 ? shifts[c] - t - 1 : 62);
            int64_t best = round < ((int64_t)1 << 31) ? (((int64_t)1 << 31) - 1 - round) / (bound > 0 ? bound : 1) : 0;
            if (chance(50)) best++;
            if (best >= ((int64_t)1 << bits) && best < ((int64_t)1 << (bits + 1))) m = best;
        }
        multipliers[c] = (int32_t)(m << t);
    }
}

static void clamp_new(int32_t *act_min, int32_t *act_max, int32_t zero_point) {
    const int r = uniform(0, 99);
    if (r < 55) { *act_min = -128; *act_max = 127; }
    else if (r < 75) { *act_min = zero_point; *act_max = 127; }  // ReLU
    else { *act_min = uniform(-128, 100); *act_max = uniform(*act_min, 127); }
}

// ---- A fault names the case it happened in --------------------------------------------------------------
static char current[512];

static void on_fault(int sig) {
    static const char prefix[] = "FAULT (signal) in ";
    if (write(2, prefix, sizeof prefix - 1) < 0 || write(2, current, strlen(current)) < 0 || write(2, "\n", 1) < 0) _exit(3);
    signal(sig, SIG_DFL);
    raise(sig);
}

// ---- Bookkeeping ----------------------------------------------------------------------------------------
enum { OP_CONV, OP_DWCONV, OP_FC, OP_COUNT };
static const char *const op_names[OP_COUNT] = {"conv", "dwconv", "fc"};

typedef struct {
    long passed[OP_COUNT], native[OP_COUNT], pieces[OP_COUNT];
    long conv_u8, conv_u8_expected;  // avx2 convs on the u8 x s8 route; of the cases built for it
    long conv_wino;                  // avx2 (or neon) convs on the Winograd route
    long conv_grouped;               // grouped convs run group by group on the path (conv_grouped.c)
    long fc_u8, fc_u8_expected;      // the same for fully connected ops
} path_stats;

static path_stats stats[SIEVE_ISA_COUNT];
static double op_macs[OP_COUNT];

static void describe_conv(const sieve_conv_params *p, const char *what, int values, const char *requant) {
    fprintf(stderr,
            "  %s: in %dx%dx%d -> out %dx%dx%d (groups %d), kernel %dx%d, stride %dx%d, pad top %d left %d, zp in %d out %d, "
            "act [%d, %d], values %s, shifts %s\n",
            what, p->in_h, p->in_w, p->in_c, p->out_h, p->out_w, p->out_c, p->groups, p->kernel_h, p->kernel_w, p->stride_h, p->stride_w,
            p->pad_top, p->pad_left, p->input_zero_point, p->output_zero_point, p->act_min, p->act_max, values_name(values),
            requant);
}

static void fail_conv(int op, int32_t isa, long index, const sieve_conv_params *p, const char *how, int32_t row_begin,
                      int32_t row_end, const int8_t *expected, const int8_t *got, int values, const char *requant) {
    fprintf(stderr, "MISMATCH: path %s, op %s, case %ld, %s rows [%d, %d)\n", sieve_isa_name(isa), op_names[op], index, how,
            row_begin, row_end);
    describe_conv(p, "shape", values, requant);
    const size_t n = (size_t)p->out_h * p->out_w * p->out_c;
    if (expected != NULL && got != NULL) {
        for (size_t i = 0; i < n; i++) {
            if (expected[i] != got[i]) {
                const size_t c = i % p->out_c, px = i / p->out_c;
                fprintf(stderr, "  first difference at y %zu x %zu channel %zu: scalar %d, %s %d (shift %d, multiplier %d, bias %d)\n",
                        px / p->out_w, px % p->out_w, c, expected[i], sieve_isa_name(isa), got[i], p->shifts[c],
                        p->multipliers[c], p->bias[c]);
                break;
            }
        }
    }
    exit(1);
}

// ---- Conv and depthwise conv ------------------------------------------------------------------------------
typedef struct {
    sieve_conv_params p;
    buffer input;
    int8_t *weights;
    int32_t *bias, *multipliers, *shifts;
    int values;
    const char *requant;
} conv_case;

static int32_t macs_limit;

static conv_case conv_case_new(int depthwise, long index) {
    static const int32_t channels[] = {1, 2, 3, 4, 5, 7, 8, 12, 16, 17, 20, 24, 31, 32, 33, 48, 64};
    static const int32_t outs[] = {1, 3, 4, 5, 7, 8, 12, 15, 16, 17, 20, 24, 31, 32, 33, 40, 48, 64};
    static const int32_t kernels[][2] = {{1, 1}, {1, 1}, {3, 3}, {3, 3}, {3, 3}, {5, 5}, {1, 3}, {3, 1}, {2, 2}, {1, 5}, {7, 7}};
    conv_case c;
    memset(&c, 0, sizeof c);
    sieve_conv_params *p = &c.p;
    for (;;) {
        const int32_t *kernel = kernels[uniform(0, (int32_t)(sizeof kernels / sizeof kernels[0]) - 1)];
        p->kernel_h = kernel[0];
        p->kernel_w = kernel[1];
        p->stride_h = chance(65) ? 1 : chance(85) ? 2 : 3;
        p->stride_w = chance(20) ? (chance(50) ? 1 : 2) : p->stride_h;
        p->in_c = PICK(channels);
        if (depthwise) {
            const int32_t m = chance(55) ? 1 : chance(75) ? 2 : 3;
            p->out_c = p->in_c * m;
            if (chance(25)) { p->in_c = 16 * uniform(1, 4); p->out_c = p->in_c * m; }
        } else {
            p->out_c = PICK(outs);
            if (chance(8)) p->in_c = 1;  // the stem (im2col)
            if (chance(6)) {  // the RGB stem: 3x3 stride 2 over 3 channels (avx2: im2col rows of K = 28)
                p->in_c = 3, p->kernel_h = p->kernel_w = 3, p->stride_h = p->stride_w = 2;
                p->out_c = chance(50) ? 32 : 16;
            }
        }
        p->in_h = uniform(1, 12);
        p->in_w = uniform(1, 12);
        if (chance(15)) { p->in_h = uniform(1, 3); p->in_w = uniform(12, 24); }
        const int large = chance(8);  // the models' sizes: up to 28x28, 128 channels
        if (large) {
            static const int32_t wide[] = {32, 64, 96, 128};
            p->in_h = uniform(6, 28);
            p->in_w = uniform(6, 28);
            p->in_c = chance(20) ? 1 : PICK(wide);
            if (depthwise) p->out_c = p->in_c * (chance(80) ? 1 : 2);
            else p->out_c = PICK(wide);
        }
        // MobileNetV2's depthwise convs (avx2 gives 3x3 at stride 1 and 2 a tile of its own): 3x3, pad
        // 1, multiplier 1, its channel counts and others, odd and even sizes up to 15x15.
        const int mobilenet = depthwise && chance(15);
        if (mobilenet) {
            static const int32_t mobilenet_c[] = {32, 96, 144, 192, 384, 576, 960, 17, 24, 33, 40, 200};
            p->kernel_h = p->kernel_w = 3;
            p->stride_h = p->stride_w = chance(55) ? 1 : 2;
            p->in_c = p->out_c = PICK(mobilenet_c);
            p->in_h = uniform(1, 15);
            p->in_w = uniform(1, 15);
        }
        // ResNet's 3x3 stride-1 convs (avx2 and neon run them by Winograd F(2,3)): many input channels,
        // odd and even sizes around the avx2 route's 32 tiles, output channels around neon's 32 and its
        // 8-channel blocks; up to 6.4 M MACs.
        const int resnet = !depthwise && !mobilenet && chance(16);
        if (resnet) {
            static const int32_t resnet_c[] = {32, 48, 49, 64, 100, 128, 256};
            static const int32_t resnet_out[] = {8, 16, 17, 32, 33, 40, 48, 64};
            p->kernel_h = p->kernel_w = 3;
            p->stride_h = p->stride_w = 1;
            p->in_c = PICK(resnet_c);
            p->out_c = PICK(resnet_out);
            p->in_h = uniform(8, 16);
            p->in_w = uniform(8, 16);
        }
        // Grouped convs (RegNet's 3x3 with 16 channels a group, ResNeXt's): each group runs on the
        // path's kernel (conv_grouped.c), so groups of every size the kernels take.
        const int grouped = !depthwise && !mobilenet && !resnet && chance(14);
        p->groups = 1;
        if (grouped) {
            static const int32_t group_in[] = {1, 2, 3, 4, 8, 16, 17, 24, 48};
            static const int32_t group_out[] = {1, 3, 4, 8, 16, 17, 24};
            p->groups = uniform(2, 6);
            p->in_c = p->groups * PICK(group_in);
            p->out_c = p->groups * PICK(group_out);
            if (chance(40)) { p->kernel_h = p->kernel_w = 3; p->groups = uniform(2, 4); p->in_c = p->out_c = 16 * p->groups; }
        }
        const int same = mobilenet || chance(50);
        const int32_t pt = same ? (p->kernel_h - 1) / 2 : uniform(0, p->kernel_h - 1);
        const int32_t pb = same ? p->kernel_h - 1 - pt : uniform(0, p->kernel_h - 1);
        const int32_t pl = same ? (p->kernel_w - 1) / 2 : uniform(0, p->kernel_w - 1);
        const int32_t pr = same ? p->kernel_w - 1 - pl : uniform(0, p->kernel_w - 1);
        if (!mobilenet && chance(15)) { p->in_h += p->kernel_h; p->in_w += p->kernel_w; }  // room for unpadded cases
        const int unpadded = !mobilenet && chance(15);
        p->pad_top = unpadded ? 0 : pt;
        p->pad_left = unpadded ? 0 : pl;
        const int32_t h = p->in_h + p->pad_top + (unpadded ? 0 : pb), w = p->in_w + p->pad_left + (unpadded ? 0 : pr);
        if (h < p->kernel_h || w < p->kernel_w) continue;
        p->out_h = (h - p->kernel_h) / p->stride_h + 1;
        p->out_w = (w - p->kernel_w) / p->stride_w + 1;
        const int64_t macs = (int64_t)p->out_h * p->out_w * p->out_c * p->kernel_h * p->kernel_w * (depthwise ? 1 : p->in_c / p->groups);
        if (macs <= (large || mobilenet || resnet ? 16 * (int64_t)macs_limit : macs_limit)) break;
    }
    int shift_mode;
    modes_new(&c.values, &shift_mode, index);
    const int32_t cin = p->in_c / p->groups;  // a group's input channels
    const int32_t k = depthwise ? p->kernel_h * p->kernel_w : p->kernel_h * p->kernel_w * cin;
    const size_t in_size = (size_t)p->in_h * p->in_w * p->in_c;
    const size_t w_size = depthwise ? (size_t)k * p->out_c : (size_t)p->out_c * k;
    c.input = buffer_new(in_size, 0);
    c.weights = malloc(w_size);
    c.bias = malloc(sizeof(int32_t) * p->out_c);
    c.multipliers = malloc(sizeof(int32_t) * p->out_c);
    c.shifts = malloc(sizeof(int32_t) * p->out_c);
    for (size_t i = 0; i < in_size; i++) c.input.ptr[i] = (uint8_t)value(c.values, 0);
    for (size_t i = 0; i < w_size; i++) c.weights[i] = value(c.values, 1);
    // One pair avx2's u8 x s8 route would saturate (255 * (65 + 64) > 32767, or 255 * -129 < -32768),
    // at columns (2i, 2i + 1) of a kernel row's run as the x86 paths pair them: the whole row when
    // in_c % 4 == 0, else each kernel row of kernel_w * in_c weights (a lone weight never breaks it).
    const int32_t run = cin % 4 == 0 ? k : p->kernel_w * cin;
    if (c.values == VALUES_W7_BROKEN && !depthwise && run >= 2) {
        int8_t *at = c.weights + (size_t)uniform(0, p->out_c - 1) * k + (size_t)uniform(0, k / run - 1) * run + 2 * uniform(0, run / 2 - 1);
        if (chance(50)) { at[0] = 65; at[1] = 64; } else { at[0] = -128; at[1] = -1; }
        if (chance(50)) { const int8_t t = at[0]; at[0] = at[1]; at[1] = t; }
    } else if (c.values == VALUES_W7_BROKEN) {
        c.values = VALUES_W7;
    }
    requant_new(p->out_c, k, c.values, shift_mode, c.bias, c.multipliers, c.shifts);
    c.requant = shifts_name(shift_mode);
    if ((depthwise ? p->out_c == p->in_c : p->groups == 1) && chance(40)) {
        const int at_edge = chance(50);
        if (at_edge && chance(50)) {
            // Accumulators at the bound: every input -128 and every weight of one sign.
            c.values = VALUES_ALL_MIN;
            for (size_t i = 0; i < in_size; i++) c.input.ptr[i] = (uint8_t)(int8_t)-128;
            for (size_t i = 0; i < w_size; i++) c.weights[i] = c.weights[i] == -128 ? 127 : (int8_t)(c.weights[i] < 0 ? -c.weights[i] : c.weights[i]);
        }
        if (depthwise) shorten_multipliers(p->out_c, k, c.weights, (size_t)p->out_c, 1, c.bias, c.multipliers, c.shifts, at_edge);
        else shorten_multipliers(p->out_c, k, c.weights, 1, (size_t)k, c.bias, c.multipliers, c.shifts, at_edge);
        c.requant = at_edge ? "short multipliers, at the limit" : "short multipliers";
    }
    p->input = (const int8_t *)c.input.ptr;
    p->weights = c.weights;
    p->bias = c.bias;
    p->multipliers = c.multipliers;
    p->shifts = c.shifts;
    p->input_zero_point = c.values == VALUES_ALL_MIN && chance(50) ? -128 : uniform(-128, 127);
    p->output_zero_point = uniform(-128, 127);
    clamp_new(&p->act_min, &p->act_max, p->output_zero_point);
    return c;
}

static void conv_case_free(conv_case *c) {
    buffer_free(&c->input);
    free(c->weights);
    free(c->bias);
    free(c->multipliers);
    free(c->shifts);
}

// Random band boundaries of [0, n): 1 to 4 bands.
static int32_t bands_new(int32_t n, int32_t *bounds) {
    int32_t count = 1;
    bounds[0] = 0;
    const int32_t cuts = n > 1 ? uniform(0, n - 1 < 3 ? n - 1 : 3) : 0;
    for (int32_t i = 0; i < cuts; i++) {
        const int32_t cut = uniform(1, n - 1);
        int dup = 0;
        for (int32_t j = 0; j < count; j++) dup |= bounds[j] == cut;
        if (!dup) bounds[count++] = cut;
    }
    for (int32_t i = 1; i < count; i++)  // sort
        for (int32_t j = i; j > 0 && bounds[j - 1] > bounds[j]; j--) { int32_t t = bounds[j]; bounds[j] = bounds[j - 1]; bounds[j - 1] = t; }
    bounds[count] = n;
    return count;
}

static void shuffle(int32_t *order, int32_t n) {
    for (int32_t i = 0; i < n; i++) order[i] = i;
    for (int32_t i = n - 1; i > 0; i--) { const int32_t j = uniform(0, i); const int32_t t = order[i]; order[i] = order[j]; order[j] = t; }
}

#define SENTINEL 0x5B

static void check_conv(int op, long index) {
    rng_case(op, index);
    conv_case c = conv_case_new(op == OP_DWCONV, index);
    sieve_conv_params *p = &c.p;
    const size_t out_size = (size_t)p->out_h * p->out_w * p->out_c, row_size = (size_t)p->out_w * p->out_c;
    int8_t *expected = output_new(out_size), *got = output_new(out_size);
    p->output = expected;
    op_macs[op] += (double)out_size * p->kernel_h * p->kernel_w * (op == OP_CONV ? p->in_c : 1);
    if (op == OP_CONV) sieve_conv_s8__scalar(p);
    else sieve_dwconv_s8__scalar(p);
    for (int32_t isa = 1; isa < SIEVE_ISA_COUNT; isa++) {
        if (!sieve_isa_available(isa)) continue;
        snprintf(current, sizeof current,
                 "path %s, op %s, case %ld: in %dx%dx%d -> out %dx%dx%d, kernel %dx%d, stride %dx%d, pad top %d left %d",
                 sieve_isa_name(isa), op_names[op], index, p->in_h, p->in_w, p->in_c, p->out_h, p->out_w, p->out_c, p->kernel_h,
                 p->kernel_w, p->stride_h, p->stride_w, p->pad_top, p->pad_left);
        // Pack as at load: no tensors yet.
        sieve_conv_params at_load = *p;
        at_load.input = NULL;
        at_load.output = NULL;
        const size_t packed_size = op == OP_CONV ? sieve_conv_packed_size(isa, &at_load) : sieve_dwconv_packed_size(isa, &at_load);
        buffer packed = {0}, scratch = {0};
        if (packed_size > 0) {
            packed = buffer_new(packed_size, 1);
            if (op == OP_CONV) sieve_conv_pack(isa, &at_load, packed.ptr);
            else sieve_dwconv_pack(isa, &at_load, packed.ptr);
            const size_t scratch_size = op == OP_CONV ? sieve_conv_scratch_size(isa, &at_load) : sieve_dwconv_scratch_size(isa, &at_load);
            scratch = buffer_new(scratch_size > 0 ? scratch_size : 1, 1);
            stats[isa].native[op]++;
            stats[isa].conv_grouped += op == OP_CONV && p->groups > 1;
#if defined(__x86_64__)
            // The route the pack chose, against what the case was built for: Winograd for every 3x3
            // stride-1 conv of at least 32 2x2 tiles with at least 48 input channels, at most a
            // quarter of them padding to 16, else u8 x s8 when the weights fit it.
            if (op == OP_CONV && isa == SIEVE_ISA_AVX2 && p->groups == 1) {  // a grouped op's packed data starts with its groups' stride
                const int32_t route = sieve_conv_route__avx2(packed.ptr);
                const int wino = p->kernel_h == 3 && p->kernel_w == 3 && p->stride_h == 1 && p->stride_w == 1 &&
                                 (p->out_h + 1) / 2 * ((p->out_w + 1) / 2) >= 32 && p->in_c >= 48 && 4 * ((p->in_c + 15) / 16 * 16) <= 5 * p->in_c;
                const int u8 = route == SIEVE_ROUTE_U8;
                const int expected_u8 = !wino && (c.values == VALUES_W7 || c.values == VALUES_PAIR_EDGE || c.values == VALUES_SMALL);
                stats[isa].conv_u8 += u8;
                stats[isa].conv_u8_expected += expected_u8;
                stats[isa].conv_wino += route == SIEVE_ROUTE_WINOGRAD;
                if (wino != (route == SIEVE_ROUTE_WINOGRAD)) {
                    fail_conv(op, isa, index, p, wino ? "Winograd route not taken for a 3x3 stride-1 conv," : "Winograd route taken for another shape,",
                              0, p->out_h, NULL, NULL, c.values, c.requant);
                }
                if ((c.values == VALUES_W7_BROKEN && u8) || (expected_u8 && !u8)) {
                    fail_conv(op, isa, index, p, u8 ? "u8 route taken with a pair that breaks its bound," : "int16 route taken for weights the u8 route fits,",
                              0, p->out_h, NULL, NULL, c.values, c.requant);
                }
            }
#endif
#if defined(__aarch64__)
            // neon: Winograd for every 3x3 stride-1 conv with in_c a multiple of 8 in [32, 2048], out_c
            // >= 32, and at most 1/16 more outputs when rounded up to whole 2x2 tiles; else direct.
            if (op == OP_CONV && isa == SIEVE_ISA_NEON && p->groups == 1) {
                const int32_t route = sieve_conv_route__neon(packed.ptr);
                const long area = (long)p->out_h * p->out_w, tiled = 4L * ((p->out_h + 1) / 2) * ((p->out_w + 1) / 2);
                const int wino = p->kernel_h == 3 && p->kernel_w == 3 && p->stride_h == 1 && p->stride_w == 1 && p->in_c >= 32 &&
                                 p->in_c % 8 == 0 && p->in_c <= 2048 && p->out_c >= 32 && tiled * 16 <= area * 17;
                stats[isa].conv_wino += route == SIEVE_ROUTE_WINOGRAD;
                if (wino != (route == SIEVE_ROUTE_WINOGRAD)) {
                    fail_conv(op, isa, index, p, wino ? "Winograd route not taken for a 3x3 stride-1 conv," : "Winograd route taken for another shape,",
                              0, p->out_h, NULL, NULL, c.values, c.requant);
                }
            }
#endif
        }
        // The whole op.
        sieve_conv_params run = *p;
        run.output = got;
        memset(got, SENTINEL, out_size);
        if (op == OP_CONV) sieve_conv_run(isa, &run, packed.ptr, scratch.ptr);
        else sieve_dwconv_run(isa, &run, packed.ptr, scratch.ptr);
        if (memcmp(expected, got, out_size) != 0) fail_conv(op, isa, index, p, "whole op,", 0, p->out_h, expected, got, c.values, c.requant);
        if (!output_guards_intact(got, out_size)) fail_conv(op, isa, index, p, "wrote outside its output,", 0, p->out_h, NULL, NULL, c.values, c.requant);
        // Bands of rows, in random order, on fresh garbage scratch.
        int32_t bounds[6], order[5];
        const int32_t count = bands_new(p->out_h, bounds);
        shuffle(order, count);
        memset(got, SENTINEL, out_size);
        for (int32_t i = 0; i < count; i++) {
            const int32_t b = order[i], r0 = bounds[b], r1 = bounds[b + 1];
            if (scratch.ptr != NULL) memset(scratch.ptr, (int)(rng_next() & 0xFF), scratch.size);  // garbage again
            sieve_conv_params band = sieve_conv_rows(&run, r0, r1);
            if (op == OP_CONV) sieve_conv_run(isa, &band, packed.ptr, scratch.ptr);
            else sieve_dwconv_run(isa, &band, packed.ptr, scratch.ptr);
            if (memcmp(expected + r0 * row_size, got + r0 * row_size, (size_t)(r1 - r0) * row_size) != 0)
                fail_conv(op, isa, index, p, "band", r0, r1, expected, got, c.values, c.requant);
            for (int32_t j = i + 1; j < count; j++) {  // bands not run yet are untouched
                const int32_t o = order[j];
                for (size_t q = (size_t)bounds[o] * row_size; q < (size_t)bounds[o + 1] * row_size; q++)
                    if (got[q] != SENTINEL) fail_conv(op, isa, index, p, "band wrote outside its rows, band", r0, r1, NULL, NULL, c.values, c.requant);
            }
            stats[isa].pieces[op]++;
        }
        if (!output_guards_intact(got, out_size)) fail_conv(op, isa, index, p, "band wrote outside the output,", 0, p->out_h, NULL, NULL, c.values, c.requant);
        buffer_free(&packed);
        buffer_free(&scratch);
        stats[isa].passed[op]++;
    }
    output_free(expected);
    output_free(got);
    conv_case_free(&c);
}

// ---- Fully connected ---------------------------------------------------------------------------------------
static void check_fc(long index) {
    rng_case(OP_FC, index);
    static const int32_t ks[] = {1, 2, 3, 4, 5, 7, 8, 9, 12, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 128, 256, 300, 1152};
    static const int32_t outs[] = {1, 2, 3, 5, 8, 10, 15, 16, 17, 31, 32, 33, 48, 64, 100, 256};
    sieve_fc_params p;
    memset(&p, 0, sizeof p);
    p.k = PICK(ks);
    p.out_c = PICK(outs);
    if (chance(10)) {  // the models' classifiers and heads
        static const int32_t big_k[] = {128, 256, 1152, 2048}, big_out[] = {10, 64, 256};
        p.k = PICK(big_k);
        p.out_c = PICK(big_out);
    }
    while ((int64_t)p.k * p.out_c > 2 * (int64_t)macs_limit && p.out_c > 1) p.out_c = p.out_c / 2 + 1;
    int values, shift_mode;
    modes_new(&values, &shift_mode, index);
    buffer input = buffer_new((size_t)p.k, 0);
    int8_t *weights = malloc((size_t)p.out_c * p.k);
    int32_t *bias = malloc(sizeof(int32_t) * p.out_c), *multipliers = malloc(sizeof(int32_t) * p.out_c), *shifts = malloc(sizeof(int32_t) * p.out_c);
    for (int32_t i = 0; i < p.k; i++) input.ptr[i] = (uint8_t)value(values, 0);
    for (size_t i = 0; i < (size_t)p.out_c * p.k; i++) weights[i] = value(values, 1);
    if (values == VALUES_W7_BROKEN && p.k >= 2) {  // one pair the u8 x s8 route would saturate, at columns (2i, 2i + 1)
        int8_t *at = weights + (size_t)uniform(0, p.out_c - 1) * p.k + 2 * uniform(0, p.k / 2 - 1);
        if (chance(50)) { at[0] = 65; at[1] = 64; } else { at[0] = -128; at[1] = -1; }
        if (chance(50)) { const int8_t t = at[0]; at[0] = at[1]; at[1] = t; }
    } else if (values == VALUES_W7_BROKEN) {
        values = VALUES_W7;
    }
    requant_new(p.out_c, p.k, values, shift_mode, bias, multipliers, shifts);
    const char *requant = shifts_name(shift_mode);
    p.input = (const int8_t *)input.ptr;
    p.weights = weights;
    p.bias = bias;
    p.multipliers = multipliers;
    p.shifts = shifts;
    p.output_zero_point = uniform(-128, 127);
    clamp_new(&p.act_min, &p.act_max, p.output_zero_point);
    int8_t *expected = output_new((size_t)p.out_c), *got = output_new((size_t)p.out_c);
    p.output = expected;
    op_macs[OP_FC] += (double)p.k * p.out_c;
    sieve_fc_s8__scalar(&p);
    for (int32_t isa = 1; isa < SIEVE_ISA_COUNT; isa++) {
        if (!sieve_isa_available(isa)) continue;
        snprintf(current, sizeof current, "path %s, op fc, case %ld: k %d, out_c %d", sieve_isa_name(isa), index, p.k, p.out_c);
        sieve_fc_params at_load = p;
        at_load.input = NULL;
        at_load.output = NULL;
        const size_t packed_size = sieve_fc_packed_size(isa, &at_load);
        buffer packed = {0}, scratch = {0};
        if (packed_size > 0) {
            packed = buffer_new(packed_size, 1);
            sieve_fc_pack(isa, &at_load, packed.ptr);
            const size_t scratch_size = sieve_fc_scratch_size(isa, &at_load);
            scratch = buffer_new(scratch_size > 0 ? scratch_size : 1, 1);
            stats[isa].native[OP_FC]++;
#if defined(__x86_64__)
            if (isa == SIEVE_ISA_AVX2) {  // the route the pack chose, against what the case was built for
                const int u8 = sieve_conv_route__avx2(packed.ptr) == SIEVE_ROUTE_U8;
                const int expected_u8 = values == VALUES_W7 || values == VALUES_PAIR_EDGE || values == VALUES_SMALL;
                stats[isa].fc_u8 += u8;
                stats[isa].fc_u8_expected += expected_u8;
                if ((values == VALUES_W7_BROKEN && u8) || (expected_u8 && !u8)) {
                    fprintf(stderr, "MISMATCH: path avx2, op fc, case %ld: k %d, out_c %d, values %s: %s\n", index, p.k, p.out_c, values_name(values),
                            u8 ? "u8 route taken with a pair that breaks its bound" : "int16 route taken for weights the u8 route fits");
                    exit(1);
                }
            }
#endif
        }
        sieve_fc_params run = p;
        run.output = got;
        // Ranges: cuts at multiples of 16, run in random order; the first piece is the whole layer.
        int32_t bounds[8], order[7], count = 1;
        bounds[0] = 0;
        const int32_t blocks = (p.out_c + 15) / 16;
        for (int32_t b = 1; b < blocks && count < 6; b++) if (chance(40)) bounds[count++] = 16 * b;
        bounds[count] = p.out_c;
        for (int pass = 0; pass < 2; pass++) {
            memset(got, SENTINEL, (size_t)p.out_c);
            const int32_t n = pass == 0 ? 1 : count;
            int32_t whole[2] = {0, p.out_c};
            const int32_t *bb = pass == 0 ? whole : bounds;
            shuffle(order, n);
            for (int32_t i = 0; i < n; i++) {
                const int32_t r0 = bb[order[i]], r1 = bb[order[i] + 1];
                if (scratch.ptr != NULL) memset(scratch.ptr, (int)(rng_next() & 0xFF), scratch.size);
                sieve_fc_run(isa, &run, packed.ptr, scratch.ptr, r0, r1);
                if (memcmp(expected + r0, got + r0, (size_t)(r1 - r0)) != 0 || !output_guards_intact(got, (size_t)p.out_c)) {
                    fprintf(stderr, "MISMATCH: path %s, op fc, case %ld, output channels [%d, %d)\n", sieve_isa_name(isa), index, r0, r1);
                    fprintf(stderr, "  shape: k %d, out_c %d, zp out %d, act [%d, %d], values %s, shifts %s\n", p.k, p.out_c,
                            p.output_zero_point, p.act_min, p.act_max, values_name(values), requant);
                    for (int32_t q = r0; q < r1; q++) {
                        if (expected[q] != got[q]) {
                            fprintf(stderr, "  first difference at channel %d: scalar %d, %s %d (shift %d, multiplier %d, bias %d)\n", q,
                                    expected[q], sieve_isa_name(isa), got[q], shifts[q], multipliers[q], bias[q]);
                            break;
                        }
                    }
                    exit(1);
                }
                for (int32_t j = i + 1; j < n; j++) {
                    for (int32_t q = bb[order[j]]; q < bb[order[j] + 1]; q++) {
                        if (got[q] != SENTINEL) {
                            fprintf(stderr, "MISMATCH: path %s, op fc, case %ld: range [%d, %d) wrote channel %d (k %d, out_c %d)\n",
                                    sieve_isa_name(isa), index, r0, r1, q, p.k, p.out_c);
                            exit(1);
                        }
                    }
                }
                if (pass == 1) stats[isa].pieces[OP_FC]++;
            }
        }
        buffer_free(&packed);
        buffer_free(&scratch);
        stats[isa].passed[OP_FC]++;
    }
    output_free(expected);
    output_free(got);
    buffer_free(&input);
    free(weights);
    free(bias);
    free(multipliers);
    free(shifts);
}

// ---- Main -------------------------------------------------------------------------------------------------
int main(int argc, char **argv) {
    long count = 200;
    uint64_t seed = 0x5137E5EEDULL;
    const char *expect = NULL, *best = NULL;
    macs_limit = 400000;
    for (int i = 1; i < argc; i++) {
        if (strncmp(argv[i], "--seed=", 7) == 0) seed = strtoull(argv[i] + 7, NULL, 0);
        else if (strncmp(argv[i], "--expect=", 9) == 0) expect = argv[i] + 9;
        else if (strncmp(argv[i], "--best=", 7) == 0) best = argv[i] + 7;
        else if (strncmp(argv[i], "--macs=", 7) == 0) macs_limit = (int32_t)strtol(argv[i] + 7, NULL, 0);
        else if (argv[i][0] >= '0' && argv[i][0] <= '9') count = strtol(argv[i], NULL, 10);
        else { fprintf(stderr, "usage: %s [COUNT] [--seed=N] [--expect=path,path] [--best=path] [--macs=N]\n", argv[0]); return 2; }
    }
    rng_seed = seed;
    signal(SIGSEGV, on_fault);
    signal(SIGBUS, on_fault);
    snprintf(current, sizeof current, "setup");
    printf("paths available:");
    int paths = 0;
    for (int32_t isa = 0; isa < SIEVE_ISA_COUNT; isa++) {
        if (sieve_isa_available(isa)) { printf(" %s", sieve_isa_name(isa)); paths += isa != SIEVE_ISA_SCALAR; }
    }
    printf("; best: %s\n", sieve_isa_name(sieve_isa_best()));
    if (expect != NULL) {
        for (int32_t isa = 1; isa < SIEVE_ISA_COUNT; isa++) {
            const char *name = sieve_isa_name(isa), *at = strstr(expect, name);
            const size_t len = strlen(name);
            const int listed = at != NULL && (at == expect || at[-1] == ',') && (at[len] == 0 || at[len] == ',');
            if (listed != (sieve_isa_available(isa) != 0)) {
                fprintf(stderr, "FAIL: expected paths %s, but %s is %savailable\n", expect, name, listed ? "not " : "");
                return 1;
            }
        }
    }
    if (best != NULL && strcmp(best, sieve_isa_name(sieve_isa_best())) != 0) {
        fprintf(stderr, "FAIL: expected the best path to be %s, not %s\n", best, sieve_isa_name(sieve_isa_best()));
        return 1;
    }
    for (int32_t isa = 1; isa < SIEVE_ISA_COUNT; isa++) {
        if (sieve_isa_available(isa)) printf("  %s: peak loop of 100 iterations = %llu MACs\n", sieve_isa_name(isa),
                                             (unsigned long long)sieve_peak_macs(isa, 100));
    }
    if (paths == 0) { printf("no SIMD path on this CPU: nothing to compare\n"); return 0; }
    printf("seed %#llx, %ld cases per op\n", (unsigned long long)seed, count);
    fflush(stdout);
    for (long i = 0; i < count; i++) {
        check_conv(OP_CONV, i);
        check_conv(OP_DWCONV, i);
        check_fc(i);
    }
    printf("MACs per case (mean): conv %.0f, dwconv %.0f, fc %.0f\n", op_macs[OP_CONV] / count, op_macs[OP_DWCONV] / count,
           op_macs[OP_FC] / count);
    for (int32_t isa = 1; isa < SIEVE_ISA_COUNT; isa++) {
        if (!sieve_isa_available(isa)) continue;
        printf("%-11s", sieve_isa_name(isa));
        for (int op = 0; op < OP_COUNT; op++) {
            const path_stats *s = &stats[isa];
            printf("  %s %ld/%ld passed (%ld on %s, %ld scalar; %ld %s)", op_names[op], s->passed[op], count, s->native[op],
                   s->native[op] > 0 ? sieve_isa_name(isa) : "-", s->passed[op] - s->native[op], s->pieces[op], op == OP_FC ? "ranges" : "bands");
        }
        printf("\n");
        printf("%-11s  grouped convs run group by group: %ld\n", sieve_isa_name(isa), stats[isa].conv_grouped);
        if (count >= 100 && stats[isa].conv_grouped == 0) { fprintf(stderr, "FAIL: no grouped conv ran on %s\n", sieve_isa_name(isa)); return 1; }
    }
#if defined(__x86_64__)
    if (sieve_isa_available(SIEVE_ISA_AVX2)) {
        printf("avx2 conv routes: u8 x s8 %ld of %ld native cases (%ld built for it)\n", stats[SIEVE_ISA_AVX2].conv_u8,
               stats[SIEVE_ISA_AVX2].native[OP_CONV], stats[SIEVE_ISA_AVX2].conv_u8_expected);
        printf("avx2 conv routes: Winograd F(2,3) %ld of %ld native cases\n", stats[SIEVE_ISA_AVX2].conv_wino, stats[SIEVE_ISA_AVX2].native[OP_CONV]);
        printf("avx2 fc routes: u8 x s8 %ld of %ld native cases (%ld built for it)\n", stats[SIEVE_ISA_AVX2].fc_u8,
               stats[SIEVE_ISA_AVX2].native[OP_FC], stats[SIEVE_ISA_AVX2].fc_u8_expected);
        if (count >= 100 && stats[SIEVE_ISA_AVX2].conv_u8 == 0) { fprintf(stderr, "FAIL: no conv case ran on avx2's u8 x s8 route\n"); return 1; }
        if (count >= 100 && stats[SIEVE_ISA_AVX2].conv_wino == 0) { fprintf(stderr, "FAIL: no conv case ran on avx2's Winograd route\n"); return 1; }
        if (count >= 100 && stats[SIEVE_ISA_AVX2].fc_u8 == 0) { fprintf(stderr, "FAIL: no fc case ran on avx2's u8 x s8 route\n"); return 1; }
    }
#endif
#if defined(__aarch64__)
    if (sieve_isa_available(SIEVE_ISA_NEON)) {
        printf("neon conv routes: Winograd F(2,3) %ld of %ld native cases\n", stats[SIEVE_ISA_NEON].conv_wino, stats[SIEVE_ISA_NEON].native[OP_CONV]);
        if (count >= 100 && stats[SIEVE_ISA_NEON].conv_wino == 0) { fprintf(stderr, "FAIL: no conv case ran on neon's Winograd route\n"); return 1; }
    }
#endif
    printf("OK\n");
    return 0;
}
