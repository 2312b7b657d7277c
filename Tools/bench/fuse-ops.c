// Would fusing a 1x1 expansion conv with the depthwise conv after it pay on this CPU? MobileNetV2's
// pairs (112x112x16 -> 96 then 3x3 stride 2; 56x56x24 -> 144 then 3x3 stride 1) run two ways on
// the same kernels: whole tensors (the 1x1 conv writes its full output, then the depthwise conv reads
// it), and row bands (the 1x1 conv fills only the rows the next depthwise band reads into a small
// window that stays in cache, the rows the next band shares moved to its front). Both ways give
// the same bytes, checked every run. Random data, every shift 38; medians of RUNS calls,
// alternating the two ways.
//
//   cc -O3 -fno-strict-aliasing -std=gnu11 -ISources/CSieveKernels/include -o fuse-ops Tools/bench/fuse-ops.c
//      Sources/CSieveKernels/*.c Sources/CSieveKernels/x86/*.c Sources/CSieveKernels/arm/*.c -lm -lpthread
//   ./fuse-ops [PATH [RUNS]]    PATH a path's name, or best (the default): the best this CPU has
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sieve_kernels.h"
#include "bench_time.h"

#define MAX_RUNS 1000

static uint64_t rng = 88172645463325252ull;
static uint32_t random32(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (uint32_t)rng;
}

static void *buffer(size_t n) {
    void *p = aligned_alloc(64, (n + 63) / 64 * 64 + 64);
    if (p == NULL) { perror("aligned_alloc"); exit(2); }
    return p;
}

static int8_t *random_bytes(size_t n) {
    int8_t *p = buffer(n);
    for (size_t i = 0; i < n; i++) p[i] = (int8_t)random32();
    return p;
}

static void requantisation(sieve_conv_params *p) {
    int32_t *bias = buffer(4 * (size_t)p->out_c), *multipliers = buffer(4 * (size_t)p->out_c), *shifts = buffer(4 * (size_t)p->out_c);
    for (int32_t c = 0; c < p->out_c; c++) {
        bias[c] = (int32_t)(random32() % 20000) - 10000;
        multipliers[c] = (int32_t)(0x40000000u + random32() % 0x40000000u);
        shifts[c] = 38;
    }
    p->bias = bias, p->multipliers = multipliers, p->shifts = shifts;
}

typedef struct {
    sieve_conv_params expand, depthwise;
    const void *expand_packed, *depthwise_packed;
    int8_t *window;
} pair;

static pair pair_new(int32_t isa, int32_t size, int32_t in_c, int32_t mid_c, int32_t stride) {
    pair q;
    sieve_conv_params *a = &q.expand, *b = &q.depthwise;
    memset(a, 0, sizeof *a), memset(b, 0, sizeof *b);
    a->input = random_bytes((size_t)size * size * in_c);
    a->in_h = a->in_w = a->out_h = a->out_w = size;
    a->in_c = in_c, a->out_c = mid_c;
    a->kernel_h = a->kernel_w = a->stride_h = a->stride_w = a->groups = 1;
    a->input_zero_point = 3, a->output_zero_point = -128, a->act_min = -128, a->act_max = 127;
    a->weights = random_bytes((size_t)mid_c * in_c);
    a->output = buffer((size_t)size * size * mid_c);
    requantisation(a);
    b->input = a->output;
    b->in_h = b->in_w = size;
    b->out_h = b->out_w = (size - 1) / stride + 1;
    b->in_c = b->out_c = b->groups = mid_c;
    b->kernel_h = b->kernel_w = 3, b->stride_h = b->stride_w = stride, b->pad_top = b->pad_left = 1;
    b->input_zero_point = -128, b->output_zero_point = 5, b->act_min = -128, b->act_max = 127;
    b->weights = random_bytes(9 * (size_t)mid_c);
    b->output = buffer((size_t)b->out_h * b->out_w * mid_c);
    requantisation(b);
    void *packed = buffer(sieve_conv_packed_size(isa, a));
    sieve_conv_pack(isa, a, packed);
    q.expand_packed = packed;
    packed = buffer(sieve_dwconv_packed_size(isa, b));
    sieve_dwconv_pack(isa, b, packed);
    q.depthwise_packed = packed;
    q.window = NULL;
    return q;
}

static void run_whole(const pair *q, int32_t isa, void *scratch) {
    sieve_conv_run(isa, &q->expand, q->expand_packed, scratch);
    sieve_dwconv_run(isa, &q->depthwise, q->depthwise_packed, scratch);
}

// Depthwise output rows [y0, y0 + band) read input rows [y0 * s - 1, (y0 + band - 1) * s + 2),
// clipped to the input; the window holds exactly those, so the depthwise band's own padding logic
// (rows outside its input are padding) stays right.
static void run_banded(const pair *q, int32_t isa, void *scratch, int32_t band, int8_t *out) {
    const sieve_conv_params *a = &q->expand, *b = &q->depthwise;
    const size_t row_bytes = (size_t)a->out_w * a->out_c;
    int32_t have_begin = 0, have_end = 0;  // expansion rows in the window
    for (int32_t y0 = 0; y0 < b->out_h; y0 += band) {
        const int32_t y1 = y0 + band < b->out_h ? y0 + band : b->out_h;
        int32_t begin = y0 * b->stride_h - b->pad_top, end = (y1 - 1) * b->stride_h - b->pad_top + b->kernel_h;
        if (begin < 0) begin = 0;
        if (end > b->in_h) end = b->in_h;
        const int32_t keep = begin > have_begin ? begin : have_begin;
        if (have_end > keep) memmove(q->window, q->window + (size_t)(keep - have_begin) * row_bytes, (size_t)(have_end - keep) * row_bytes);
        const int32_t first_new = have_end > begin ? have_end : begin;
        sieve_conv_params rows = sieve_conv_rows(a, first_new, end);
        rows.output = q->window + (size_t)(first_new - begin) * row_bytes;
        sieve_conv_run(isa, &rows, q->expand_packed, scratch);
        have_begin = begin, have_end = end;
        sieve_conv_params dw = sieve_conv_rows(b, y0, y1);
        dw.input = q->window;
        dw.in_h = end - begin;
        dw.pad_top = b->pad_top - y0 * b->stride_h + begin;
        dw.output = out + (size_t)y0 * b->out_w * b->out_c;
        sieve_dwconv_run(isa, &dw, q->depthwise_packed, scratch);
    }
}

int main(int argc, char **argv) {
    const int32_t isa = argc > 1 && strcmp(argv[1], "best") != 0 ? sieve_isa_named(argv[1]) : sieve_isa_best();
    if (isa < 0 || !sieve_isa_available(isa)) { fprintf(stderr, "fuse-ops: path '%s' is not available here\n", argv[1]); return 2; }
    const int runs = argc > 2 ? atoi(argv[2]) : 200;
    if (runs < 1 || runs > MAX_RUNS) { fprintf(stderr, "fuse-ops: RUNS must be 1...%d\n", MAX_RUNS); return 2; }
    const struct { int32_t size, in_c, mid_c, stride; } shapes[] = {{112, 16, 96, 2}, {56, 24, 144, 1}, {28, 32, 192, 1}};
    const int32_t bands[] = {2, 4, 8};
    printf("%s path, %d runs each, medians (us)\n\n", sieve_isa_name(isa), runs);
    printf("%-30s %8s %5s %8s %6s\n", "pair", "whole", "band", "banded", "ratio");
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        pair q = pair_new(isa, shapes[s].size, shapes[s].in_c, shapes[s].mid_c, shapes[s].stride);
        size_t scratch_bytes = sieve_conv_scratch_size(isa, &q.expand);
        if (sieve_dwconv_scratch_size(isa, &q.depthwise) > scratch_bytes) scratch_bytes = sieve_dwconv_scratch_size(isa, &q.depthwise);
        void *scratch = buffer(scratch_bytes);
        const size_t out_bytes = (size_t)q.depthwise.out_h * q.depthwise.out_w * q.depthwise.out_c;
        int8_t *banded_out = buffer(out_bytes);
        for (size_t bi = 0; bi < sizeof bands / sizeof bands[0]; bi++) {
            const int32_t band = bands[bi];
            q.window = buffer((size_t)((band - 1) * shapes[s].stride + 3) * shapes[s].size * shapes[s].mid_c);
            static double whole[MAX_RUNS], banded[MAX_RUNS];
            for (int r = 0; r < runs; r++) {
                double t0 = now_us();
                run_whole(&q, isa, scratch);
                whole[r] = now_us() - t0;
                t0 = now_us();
                run_banded(&q, isa, scratch, band, banded_out);
                banded[r] = now_us() - t0;
                if (memcmp(banded_out, q.depthwise.output, out_bytes) != 0) {
                    fprintf(stderr, "fuse-ops: banded output differs from whole-tensor output (%dx%dx%d, band %d)\n",
                            shapes[s].size, shapes[s].size, shapes[s].in_c, band);
                    return 1;
                }
            }
            char name[64];
            snprintf(name, sizeof name, "%dx%dx%d -> %d, dw s%d", shapes[s].size, shapes[s].size, shapes[s].in_c, shapes[s].mid_c,
                     shapes[s].stride);
            const double w = median(whole, runs), b = median(banded, runs);
            printf("%-30s %8.1f %5d %8.1f %6.2f\n", name, w, band, b, b / w);
            free(q.window);
        }
    }
    return 0;
}
