// Runs a network's ops, one kernel call each, on one SIMD path, for Tools/board/estimate.py to
// count under `qemu-aarch64 -d exec,nochain,in_asm`. Every op is set up first; then board_mark()
// is called before each op and once after the last, so the exec log splits into ops at the
// marker's address. Random data, every shift 38.
//
//   aarch64-linux-gnu-gcc -O3 -static -fno-strict-aliasing -std=gnu11 -ISources/CSieveKernels/include
//       -o board-ops Tools/board/board-ops.c Sources/CSieveKernels/*.c Sources/CSieveKernels/arm/*.c
//       Sources/CSieveKernels/x86/*.c -lm -lpthread
//   board-ops PATH OPS_FILE [WEIGHT_BITS]
//
// OPS_FILE: one op a line, "KIND in_h in_w in_c out_h out_w out_c kernel_h kernel_w stride_h stride_w",
// KIND as `sieve inspect --json` names it, or "CALIBRATE n": a loop of exactly 4 instructions run
// n times, so the counter's result can be checked against a number known in advance, or "PEAK n":
// the path's peak MAC loop (sieve_peak_macs) n times, whose rate the cores' guides publish.
// WEIGHT_BITS 7 draws weights in [-63, 63], as `sieve quantize --weight-bits 7` makes them (the
// neon conv's quad form is chosen at pack time from the weights); default 8: [-127, 127].
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sieve_kernels.h"
#include "../bench/bench_ops.h"

#define MAX_OPS 4096

// The exec log's op boundary. noinline and an asm barrier so it stays one distinct block.
__attribute__((noinline)) void board_mark(int32_t index) { __asm__ volatile("" ::"r"(index) : "memory"); }

typedef struct {
    char kind[32];
    int32_t in_h, in_w, in_c, out_h, out_w, out_c, kh, kw, sh, sw;
    sieve_conv_params conv;
    sieve_fc_params fc;
    sieve_pool_params pool;
    sieve_add_params add;
    sieve_mul_params mul;
    sieve_concat_params concat;
    sieve_gather_params gather;
    int8_t *in, *out, *table;
    void *packed, *scratch;
} op;

static void fail(const char *what, int line) {
    fprintf(stderr, "board-ops: line %d: %s\n", line, what);
    exit(2);
}

static void *buffer(size_t n) {
    const size_t size = (n + 63) / 64 * 64 + 64;
    void *p = aligned_alloc(64, size);
    if (p == NULL) { perror("aligned_alloc"); exit(2); }
    memset(p, 0x11, size);
    return p;
}

// xorshift, not rand(): setup runs under the tracer too, and glibc's rand() costs blocks.
static uint64_t state = 88172645463325252ull;
static int weight_max = 127;  // 63 for 7-bit weights
static uint32_t next_random(void) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return (uint32_t)(state >> 32);
}

// Bytes in [-128, 127], clamped to [lo, hi] (weights); four a random word.
static int8_t *random_bytes(size_t n, int lo, int hi) {
    int8_t *p = buffer(n);
    for (size_t i = 0; i < n; i += 4) {
        const uint32_t r = next_random();
        memcpy(p + i, &r, n - i < 4 ? n - i : 4);
    }
    if (lo > -128 || hi < 127)
        for (size_t i = 0; i < n; i++) p[i] = p[i] < lo ? (int8_t)lo : p[i] > hi ? (int8_t)hi : p[i];
    return p;
}

static void requant(int32_t n, const int32_t **bias, const int32_t **multipliers, const int32_t **shifts) {
    int32_t *b = buffer(4 * (size_t)n), *m = buffer(4 * (size_t)n), *s = buffer(4 * (size_t)n);
    for (int32_t i = 0; i < n; i++) {
        b[i] = (int32_t)(next_random() % 1000);
        m[i] = (int32_t)((1u << 30) + next_random() % (1u << 30));
        s[i] = 38;
    }
    *bias = b;
    *multipliers = m;
    *shifts = s;
}

// "Same"-style padding: what the output size needs, the odd pixel at the bottom/right (inspect
// does not print pads; the kernels' cost hardly depends on where the padding falls).
static int32_t pad_before(int32_t in, int32_t out, int32_t k, int32_t s) {
    const int32_t total = (out - 1) * s + k - in;
    return total > 0 ? total / 2 : 0;
}

static void conv_setup(op *o, int32_t isa, int depthwise) {
    sieve_conv_params *p = &o->conv;
    p->in_h = o->in_h; p->in_w = o->in_w; p->in_c = o->in_c;
    p->out_h = o->out_h; p->out_w = o->out_w; p->out_c = o->out_c;
    p->kernel_h = o->kh; p->kernel_w = o->kw; p->stride_h = o->sh; p->stride_w = o->sw;
    p->pad_top = pad_before(o->in_h, o->out_h, o->kh, o->sh);
    p->pad_left = pad_before(o->in_w, o->out_w, o->kw, o->sw);
    p->groups = depthwise ? o->in_c : 1;
    const size_t k = (size_t)o->kh * o->kw * (depthwise ? 1 : o->in_c);
    p->input = o->in;
    p->weights = random_bytes(k * o->out_c, -weight_max, weight_max);
    requant(o->out_c, &p->bias, &p->multipliers, &p->shifts);
    p->output = o->out;
    p->input_zero_point = -5;
    p->output_zero_point = 3;
    p->act_min = -128;
    p->act_max = 127;
    pack_conv_op(isa, p, depthwise, buffer, &o->packed, &o->scratch);
}

static void setup(op *o, int32_t isa, int line) {
    const size_t in_n = (size_t)o->in_h * o->in_w * o->in_c, out_n = (size_t)o->out_h * o->out_w * o->out_c;
    o->in = random_bytes(in_n, -128, 127);
    o->out = buffer(out_n);
    if (!strcmp(o->kind, "CONV")) {
        conv_setup(o, isa, 0);
    } else if (!strcmp(o->kind, "DEPTHWISE_CONV")) {
        if (o->out_c != o->in_c) fail("DEPTHWISE_CONV with a channel multiplier is not supported", line);
        conv_setup(o, isa, 1);
    } else if (!strcmp(o->kind, "FULLY_CONNECTED")) {
        sieve_fc_params *p = &o->fc;
        p->k = (int32_t)in_n;
        p->out_c = (int32_t)out_n;
        p->input = o->in;
        p->weights = random_bytes((size_t)p->k * p->out_c, -weight_max, weight_max);
        requant(p->out_c, &p->bias, &p->multipliers, &p->shifts);
        p->output = o->out;
        p->output_zero_point = 3;
        p->act_min = -128;
        p->act_max = 127;
        o->packed = buffer(sieve_fc_packed_size(isa, p));
        sieve_fc_pack(isa, p, o->packed);
        o->scratch = buffer(sieve_fc_scratch_size(isa, p));
    } else if (!strcmp(o->kind, "MAX_POOL") || !strcmp(o->kind, "AVERAGE_POOL")) {
        sieve_pool_params *p = &o->pool;
        p->input = o->in; p->output = o->out;
        p->in_h = o->in_h; p->in_w = o->in_w; p->channels = o->in_c;
        p->out_h = o->out_h; p->out_w = o->out_w;
        p->kernel_h = o->kh; p->kernel_w = o->kw; p->stride_h = o->sh; p->stride_w = o->sw;
        p->pad_top = pad_before(o->in_h, o->out_h, o->kh, o->sh);
        p->pad_left = pad_before(o->in_w, o->out_w, o->kw, o->sw);
    } else if (!strcmp(o->kind, "ADD")) {
        sieve_add_params *p = &o->add;
        p->input0 = o->in; p->input1 = random_bytes(in_n, -128, 127); p->output = o->out;
        p->count = (int32_t)in_n;
        p->zero_point0 = 1; p->zero_point1 = -2; p->output_zero_point = 3;
        for (int i = 0; i < 3; i++) { p->multipliers[i] = (int32_t)((1u << 30) + next_random() % (1u << 30)); p->shifts[i] = 31; }
        p->left_shift = 20;
        p->act_min = -128; p->act_max = 127;
    } else if (!strcmp(o->kind, "MUL")) {
        sieve_mul_params *p = &o->mul;  // both inputs full size: the dearer of MUL's two forms
        p->input0 = o->in; p->input1 = random_bytes(in_n, -128, 127); p->output = o->out;
        p->pixels = o->in_h * o->in_w; p->channels = o->in_c; p->broadcast = 0;
        p->zero_point0 = 1; p->zero_point1 = -2; p->output_zero_point = 3;
        p->multiplier = (1 << 30) + 12345; p->shift = 38;
        p->act_min = -128; p->act_max = 127;
    } else if (!strcmp(o->kind, "LUT")) {
        o->table = random_bytes(256, -128, 127);
    } else if (!strcmp(o->kind, "CONCAT")) {
        sieve_concat_params *p = &o->concat;  // inspect prints one input: two halves of the output, tables on
        const int32_t pixels = o->out_h * o->out_w, first = o->out_c / 2;
        p->input_count = 2; p->pixels = pixels; p->output = o->out;
        p->channels[0] = first; p->channels[1] = o->out_c - first;
        for (int i = 0; i < 2; i++) {
            p->inputs[i] = random_bytes((size_t)pixels * p->channels[i], -128, 127);
            p->tables[i] = random_bytes(256, -128, 127);
        }
    } else if (!strcmp(o->kind, "GATHER")) {
        // A 2-group channel shuffle of the input's channels, repeated up to out_c: ShuffleNet's
        // pattern, whose indices form no runs the kernel could copy at once (the dearer form).
        if (o->out_h != o->in_h || o->out_w != o->in_w) fail("GATHER keeps H and W", line);
        sieve_gather_params *p = &o->gather;
        int32_t *index = buffer(4 * (size_t)o->out_c);
        for (int32_t c = 0; c < o->out_c; c++) {
            const int32_t j = c % o->in_c;
            index[c] = (j % 2) * ((o->in_c + 1) / 2) + j / 2;
        }
        p->input = o->in; p->output = o->out; p->index = index;
        p->pixels = o->in_h * o->in_w; p->in_c = o->in_c; p->out_c = o->out_c;
    } else if (strcmp(o->kind, "GLOBAL_AVERAGE_POOL") != 0) {
        fail("unknown op kind", line);
    }
}

static void run(const op *o, int32_t isa) {
    const size_t in_n = (size_t)o->in_h * o->in_w * o->in_c;
    if (!strcmp(o->kind, "CONV")) sieve_conv_run(isa, &o->conv, o->packed, o->scratch);
    else if (!strcmp(o->kind, "DEPTHWISE_CONV")) sieve_dwconv_run(isa, &o->conv, o->packed, o->scratch);
    else if (!strcmp(o->kind, "FULLY_CONNECTED")) sieve_fc_run(isa, &o->fc, o->packed, o->scratch, 0, o->fc.out_c);
    else if (!strcmp(o->kind, "MAX_POOL")) sieve_maxpool_run(isa, &o->pool);
    else if (!strcmp(o->kind, "AVERAGE_POOL")) sieve_avgpool_s8__scalar(&o->pool);
    else if (!strcmp(o->kind, "GLOBAL_AVERAGE_POOL")) sieve_global_avgpool_run(isa, o->in, o->out, o->in_h * o->in_w, o->in_c);
    else if (!strcmp(o->kind, "ADD")) sieve_add_run(isa, &o->add);
    else if (!strcmp(o->kind, "MUL")) sieve_mul_run(isa, &o->mul);
    else if (!strcmp(o->kind, "LUT")) sieve_lut_run(isa, o->in, o->out, o->table, (int32_t)in_n);
    else if (!strcmp(o->kind, "CONCAT")) sieve_concat_run(isa, &o->concat);
    else if (!strcmp(o->kind, "GATHER")) sieve_gather_run(isa, &o->gather);
}

// Exactly 4 instructions an iteration (subs, add, eor, b.ne), n iterations.
static void calibrate(long n) {
#if defined(__aarch64__)
    long a = 0, b = 1;
    __asm__ volatile("1: subs %0, %0, #1\n add %1, %1, %2\n eor %2, %2, %1\n b.ne 1b\n" : "+r"(n), "+r"(a), "+r"(b) : : "cc");
#else
    (void)n;
#endif
}

static op ops[MAX_OPS];

int main(int argc, char **argv) {
    if (argc != 3 && argc != 4) { fprintf(stderr, "usage: board-ops PATH OPS_FILE [WEIGHT_BITS]\n"); return 2; }
    if (argc == 4) {
        if (strcmp(argv[3], "7") != 0 && strcmp(argv[3], "8") != 0) { fprintf(stderr, "board-ops: WEIGHT_BITS must be 7 or 8\n"); return 2; }
        weight_max = argv[3][0] == '7' ? 63 : 127;
    }
    const int32_t isa = sieve_isa_named(argv[1]);
    if (isa < 0) { fprintf(stderr, "board-ops: no SIMD path named %s\n", argv[1]); return 2; }
    if (!sieve_isa_available(isa)) { fprintf(stderr, "board-ops: path %s is not available on this CPU\n", argv[1]); return 2; }
    FILE *f = fopen(argv[2], "r");
    if (f == NULL) { perror(argv[2]); return 2; }
    int n = 0, line = 0;
    static long calibration[MAX_OPS], peak[MAX_OPS];
    char text[256];
    while (fgets(text, sizeof text, f) != NULL) {
        line++;
        if (text[0] == '\n' || text[0] == '#') continue;
        if (n == MAX_OPS) fail("too many ops", line);
        op *o = &ops[n];
        if (sscanf(text, "CALIBRATE %ld", &calibration[n]) == 1) {
            if (calibration[n] < 1) fail("CALIBRATE needs a positive count", line);
            strcpy(o->kind, "CALIBRATE");
            n++;
            continue;
        }
        if (sscanf(text, "PEAK %ld", &peak[n]) == 1) {
            if (peak[n] < 1) fail("PEAK needs a positive count", line);
            strcpy(o->kind, "PEAK");
            n++;
            continue;
        }
        if (sscanf(text, "%31s %d %d %d %d %d %d %d %d %d %d", o->kind, &o->in_h, &o->in_w, &o->in_c, &o->out_h, &o->out_w,
                   &o->out_c, &o->kh, &o->kw, &o->sh, &o->sw) != 11)
            fail("expected KIND and 10 integers", line);
        if (o->in_h < 1 || o->in_w < 1 || o->in_c < 1 || o->out_h < 1 || o->out_w < 1 || o->out_c < 1 || o->kh < 1 || o->kw < 1 ||
            o->sh < 1 || o->sw < 1)
            fail("every size must be at least 1", line);
        setup(o, isa, line);
        n++;
    }
    fclose(f);
    for (int i = 0; i < n; i++) {
        board_mark(i);
        if (calibration[i]) calibrate(calibration[i]);
        else if (peak[i]) sieve_peak_macs(isa, (uint64_t)peak[i]);
        else run(&ops[i], isa);
    }
    board_mark(n);
    printf("board-ops: %d ops on %s\n", n, sieve_isa_name(isa));
    return 0;
}
