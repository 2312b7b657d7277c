// VGG-S's conv and classifier shapes (SET vgg), or MobileNetV2-224's depthwise convs (SET dw) or
// its stem and 1x1 convs (SET pw), or ResNet-18's 3x3 convs (SET resnet; dw, pw and resnet: each
// distinct shape once, the sum weighted by how often the network has it), one kernel call at a
// time, against the path's peak loop timed in every round beside them: each op's share of the peak is the ratio of medians of the same run,
// so a busy host slows both sides (not alike: a 100 us call is interrupted more often than the
// peak's 12 us burst, so a loaded host lowers the shares). Random data, every shift 38 (real
// layers' range, the 32-bit requantisation forms).
//
//   cc -O3 -fno-strict-aliasing -std=gnu11 -ISources/CSieveKernels/include -o kernel-ops Tools/bench/kernel-ops.c
//      Sources/CSieveKernels/*.c Sources/CSieveKernels/x86/*.c Sources/CSieveKernels/arm/*.c -lm -lpthread
//   ./kernel-ops [PATH [RUNS [COLD [SET [short] [w7]]]]]    PATH avx2 by default; COLD 1 evicts the
//   caches before each call; SET vgg (the default), dw, pw or resnet; short: conv multipliers
//   rounded as the quantiser rounds them (the kernels' short-multiplier form); w7: weights in
//   [-63, 63] as --weight-bits 7 makes them (the avx2 path's u8 x s8 route)
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sieve_kernels.h"
#include "bench_ops.h"
#include "bench_time.h"

#define MAX_RUNS 1000

static void *buffer(size_t n) {
    const size_t size = (n + 63) / 64 * 64 + 64;
    void *p = aligned_alloc(64, size);
    if (p == NULL) { perror("aligned_alloc"); exit(2); }
    memset(p, 0x11, size);
    return p;
}

static int8_t *random_bytes(size_t n, int lo, int hi) {
    int8_t *p = buffer(n);
    for (size_t i = 0; i < n; i++) p[i] = (int8_t)(lo + rand() % (hi - lo + 1));
    return p;
}

// SHORT: multipliers rounded as the quantiser rounds real conv layers' (shortMultiplierBits in
// Tools/SieveQuantize/BlobBuilder.swift), so the kernels take the short-multiplier form where it holds.
static int short_multipliers;
// W7: weights in [-63, 63], as `sieve quantize --weight-bits 7` makes them (avx2's u8 x s8 route).
static int weights7;

static void shorten(const sieve_conv_params *p, int depthwise, int32_t *multipliers) {
    const size_t k = (size_t)p->kernel_h * p->kernel_w * (depthwise ? 1 : (size_t)p->in_c);
    for (int32_t c = 0; c < p->out_c; c++) {
        int64_t sum = 0;
        for (size_t t = 0; t < k; t++) {
            const int8_t w = depthwise ? p->weights[t * (size_t)p->out_c + (size_t)c] : p->weights[(size_t)c * k + t];
            sum += w < 0 ? -w : w;
        }
        int32_t log2_ceil = 0;
        while (((int64_t)1 << log2_ceil) < 128 * (sum > 0 ? sum : 1)) log2_ceil++;
        int32_t bits = 29 - log2_ceil;
        if (bits < 11) continue;
        bits = bits < 12 ? 12 : bits > 31 ? 31 : bits;
        multipliers[c] = (int32_t)(((uint32_t)multipliers[c] >> (31 - bits)) << (31 - bits));
    }
}

static void requant(int32_t n, const int32_t **bias, const int32_t **multipliers, const int32_t **shifts) {
    int32_t *b = buffer(4 * (size_t)n), *m = buffer(4 * (size_t)n), *s = buffer(4 * (size_t)n);
    for (int32_t i = 0; i < n; i++) {
        b[i] = rand() % 1000;
        m[i] = (1 << 30) + rand() % (1 << 30);
        s[i] = 38;
    }
    *bias = b;
    *multipliers = m;
    *shifts = s;
}

typedef struct {
    const char *name;
    int32_t in_hw, in_c, out_c, kernel;  // kernel 0: fully connected, k = in_c
    int32_t stride, depthwise, count;     // count: how often the network has the shape (0 means 1)
    sieve_conv_params conv;
    sieve_fc_params fc;
    void *packed, *scratch;
    double macs, times[MAX_RUNS];
} op;

static void op_setup(op *o, int32_t isa) {
    if (o->kernel == 0) {
        sieve_fc_params *p = &o->fc;
        p->k = o->in_c;
        p->out_c = o->out_c;
        p->input = random_bytes((size_t)p->k, -128, 127);
        p->weights = random_bytes((size_t)p->k * p->out_c, -127, 127);
        requant(p->out_c, &p->bias, &p->multipliers, &p->shifts);
        p->output = buffer((size_t)p->out_c);
        p->output_zero_point = 3;
        p->act_min = -128;
        p->act_max = 127;
        o->packed = buffer(sieve_fc_packed_size(isa, p));
        sieve_fc_pack(isa, p, o->packed);
        o->scratch = buffer(sieve_fc_scratch_size(isa, p));
        o->macs = (double)p->k * p->out_c;
        return;
    }
    sieve_conv_params *p = &o->conv;
    const int32_t stride = o->stride > 0 ? o->stride : 1, out_hw = (o->in_hw - 1) / stride + 1;
    p->in_h = p->in_w = o->in_hw;
    p->out_h = p->out_w = out_hw;
    p->in_c = o->in_c;
    p->out_c = o->out_c;
    p->kernel_h = p->kernel_w = o->kernel;
    p->stride_h = p->stride_w = stride;
    p->pad_top = p->pad_left = o->kernel / 2;
    p->groups = 1;  // depthwise convs run their own kernel
    const size_t k = (size_t)o->kernel * o->kernel * (o->depthwise ? 1 : o->in_c);
    p->input = random_bytes((size_t)o->in_hw * o->in_hw * o->in_c, -128, 127);
    p->weights = random_bytes(k * o->out_c, weights7 ? -63 : -127, weights7 ? 63 : 127);
    requant(p->out_c, &p->bias, &p->multipliers, &p->shifts);
    if (short_multipliers) shorten(p, o->depthwise, (int32_t *)p->multipliers);
    p->output = buffer((size_t)out_hw * out_hw * o->out_c);
    p->input_zero_point = -5;
    p->output_zero_point = 3;
    p->act_min = -128;
    p->act_max = 127;
    pack_conv_op(isa, p, o->depthwise, buffer, &o->packed, &o->scratch);
    o->macs = (double)out_hw * out_hw * o->out_c * k;
}

int main(int argc, char **argv) {
    const int32_t isa = sieve_isa_named(argc > 1 ? argv[1] : "avx2");
    int runs = argc > 2 ? atoi(argv[2]) : 200;
    const int cold = argc > 3 ? atoi(argv[3]) : 0;
    if (isa <= 0 || !sieve_isa_available(isa)) { fprintf(stderr, "kernel-ops: no such SIMD path on this CPU\n"); return 2; }
    if (runs < 1 || runs > MAX_RUNS) runs = 200;
    static op vgg[] = {
        {"stem 28x28x1->32", 28, 1, 32, 3},      {"conv 28x28x32->32", 28, 32, 32, 3}, {"conv 14x14x32->64", 14, 32, 64, 3},
        {"conv 14x14x64->64", 14, 64, 64, 3},    {"conv 7x7x64->128", 7, 64, 128, 3},  {"conv 7x7x128->128", 7, 128, 128, 3},
        {"fc 1152->256", 0, 1152, 256, 0},
    };
    static op dw[] = {
        {"dw 112x112x32 s1", 112, 32, 32, 3, 1, 1, 1}, {"dw 112x112x96 s2", 112, 96, 96, 3, 2, 1, 1},
        {"dw 56x56x144 s1", 56, 144, 144, 3, 1, 1, 1}, {"dw 56x56x144 s2", 56, 144, 144, 3, 2, 1, 1},
        {"dw 28x28x192 s1", 28, 192, 192, 3, 1, 1, 2}, {"dw 28x28x192 s2", 28, 192, 192, 3, 2, 1, 1},
        {"dw 14x14x384 s1", 14, 384, 384, 3, 1, 1, 4}, {"dw 14x14x576 s1", 14, 576, 576, 3, 1, 1, 2},
        {"dw 14x14x576 s2", 14, 576, 576, 3, 2, 1, 1}, {"dw 7x7x960 s1", 7, 960, 960, 3, 1, 1, 3},
    };
    // MobileNetV2's stem and 1x1 convs (its 35 convs, counted by shape).
    static op pw[] = {
        {"stem 224x224x3 s2", 224, 3, 32, 3, 2, 0, 1},  {"pw 112x112 32->16", 112, 32, 16, 1, 1, 0, 1},
        {"pw 112x112 16->96", 112, 16, 96, 1, 1, 0, 1}, {"pw 56x56 96->24", 56, 96, 24, 1, 1, 0, 1},
        {"pw 56x56 24->144", 56, 24, 144, 1, 1, 0, 2},  {"pw 56x56 144->24", 56, 144, 24, 1, 1, 0, 1},
        {"pw 28x28 144->32", 28, 144, 32, 1, 1, 0, 1},  {"pw 28x28 32->192", 28, 32, 192, 1, 1, 0, 3},
        {"pw 28x28 192->32", 28, 192, 32, 1, 1, 0, 2},  {"pw 14x14 192->64", 14, 192, 64, 1, 1, 0, 1},
        {"pw 14x14 64->384", 14, 64, 384, 1, 1, 0, 4},  {"pw 14x14 384->64", 14, 384, 64, 1, 1, 0, 3},
        {"pw 14x14 384->96", 14, 384, 96, 1, 1, 0, 1},  {"pw 14x14 96->576", 14, 96, 576, 1, 1, 0, 3},
        {"pw 14x14 576->96", 14, 576, 96, 1, 1, 0, 2},  {"pw 7x7 576->160", 7, 576, 160, 1, 1, 0, 1},
        {"pw 7x7 160->960", 7, 160, 960, 1, 1, 0, 3},   {"pw 7x7 960->160", 7, 960, 160, 1, 1, 0, 2},
        {"pw 7x7 960->320", 7, 960, 320, 1, 1, 0, 1},   {"pw 7x7 320->1280", 7, 320, 1280, 1, 1, 0, 1},
    };
    // ResNet-18's 3x3 convs at 224x224 (its 16 in the body, counted by shape; the 7x7 stem and 1x1 shortcuts left out).
    static op resnet[] = {
        {"3x3 56x56 64->64", 56, 64, 64, 3, 1, 0, 4},      {"3x3 56x56 64->128 s2", 56, 64, 128, 3, 2, 0, 1},
        {"3x3 28x28 128->128", 28, 128, 128, 3, 1, 0, 3},  {"3x3 28x28 128->256 s2", 28, 128, 256, 3, 2, 0, 1},
        {"3x3 14x14 256->256", 14, 256, 256, 3, 1, 0, 3},  {"3x3 14x14 256->512 s2", 14, 256, 512, 3, 2, 0, 1},
        {"3x3 7x7 512->512", 7, 512, 512, 3, 1, 0, 3},
    };
    const char *set = argc > 4 ? argv[4] : "vgg";
    for (int i = 5; i < argc; i++) {
        if (strcmp(argv[i], "short") == 0) short_multipliers = 1;
        else if (strcmp(argv[i], "w7") == 0) weights7 = 1;
        else { fprintf(stderr, "kernel-ops: unknown option %s (short, w7)\n", argv[i]); return 2; }
    }
    op *ops = strcmp(set, "dw") == 0 ? dw : strcmp(set, "pw") == 0 ? pw : strcmp(set, "resnet") == 0 ? resnet : strcmp(set, "vgg") == 0 ? vgg : 0;
    if (!ops) { fprintf(stderr, "kernel-ops: SET must be vgg, dw, pw or resnet\n"); return 2; }
    const int n = ops == dw ? (int)(sizeof dw / sizeof dw[0]) : ops == pw ? (int)(sizeof pw / sizeof pw[0])
                : ops == resnet ? (int)(sizeof resnet / sizeof resnet[0]) : (int)(sizeof vgg / sizeof vgg[0]);
    srand(1);
    for (int i = 0; i < n; i++) op_setup(&ops[i], isa);
    const size_t evict_size = (size_t)8 << 20;
    char *evict = buffer(evict_size);
    static double peaks[MAX_RUNS];
    for (int r = -10; r < runs; r++) {
        const double start = now_us();
        const uint64_t macs = sieve_peak_macs(isa, 2000);
        if (r >= 0) peaks[r] = (double)macs / (now_us() - start) / 1e3;
        for (int i = 0; i < n; i++) {
            if (cold) for (size_t j = 0; j < evict_size; j += 64) evict[j]++;
            const double t0 = now_us();
            if (ops[i].kernel == 0) sieve_fc_run(isa, &ops[i].fc, ops[i].packed, ops[i].scratch, 0, ops[i].fc.out_c);
            else if (ops[i].depthwise) sieve_dwconv_run(isa, &ops[i].conv, ops[i].packed, ops[i].scratch);
            else sieve_conv_run(isa, &ops[i].conv, ops[i].packed, ops[i].scratch);
            if (r >= 0) ops[i].times[r] = now_us() - t0;
        }
    }
    const double peak = median(peaks, runs);
    printf("%s, %d runs%s: peak loop median %.1f GMAC/s\n", sieve_isa_name(isa), runs, cold ? ", caches evicted" : "", peak);
    double total_us = 0, total_macs = 0;
    for (int i = 0; i < n; i++) {
        const double us = median(ops[i].times, runs), gmacs = ops[i].macs / us / 1e3;
        const int count = ops[i].count > 0 ? ops[i].count : 1;
        total_us += count * us;
        total_macs += count * ops[i].macs;
        printf("%-20s %8.1f us %7.2f GMAC/s %4.0f %%\n", ops[i].name, us, gmacs, 100 * gmacs / peak);
    }
    printf("%-20s %8.1f us %7.2f GMAC/s %4.0f %%\n", ops != vgg ? "network's sum" : "sum", total_us, total_macs / total_us / 1e3,
           100 * total_macs / total_us / 1e3 / peak);
    return 0;
}
