// The thread pool (sieve_threads.h) computes every op bit for bit as one thread does, and never
// hangs: thousands of jobs back to back (late workers must not touch the next job), jobs with
// fewer rows or channel blocks than chunks, pauses longer than the spin budget (workers asleep on
// the futex must be woken), more threads than cores (workers descheduled mid-job), and busy
// threads competing for the cores; with frames marked, ops switching between split and alone.
//
//   check_threads [JOBS] [--threads=2,3,4,8]
//
// Exits non-zero on the first mismatch; a watchdog fails the test when no job finishes for 120 s.
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "sieve_kernels.h"
#include "sieve_threads.h"

static uint64_t rng_state = 0x5EEDULL;
static uint64_t rng_next(void) {
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}
static int32_t uniform(int32_t lo, int32_t hi) { return lo + (int32_t)(rng_next() % (uint64_t)(hi - lo + 1)); }

static void *checked_alloc(size_t size) {
    void *p = NULL;
    if (posix_memalign(&p, 64, size ? size : 64) != 0) { perror("posix_memalign"); exit(2); }
    return p;
}
static int8_t *random_bytes(size_t n, int8_t lo) {
    int8_t *p = checked_alloc(n);
    for (size_t i = 0; i < n; i++) p[i] = (int8_t)uniform(lo, 127);
    return p;
}
static int32_t *filled(size_t n, int32_t lo, int32_t hi) {
    int32_t *p = checked_alloc(n * sizeof(int32_t));
    for (size_t i = 0; i < n; i++) p[i] = uniform(lo, hi);
    return p;
}

// One op with its packed weights, its one-thread answer and a buffer for the pool's.
typedef struct {
    int32_t kind;
    sieve_conv_params conv;
    sieve_fc_params fc;
    void *packed;
    int8_t *expected, *actual;
    size_t out_size;
    const char *name;
} op_case;

static void requant(int32_t out_c, int32_t **bias, int32_t **multipliers, int32_t **shifts) {
    *bias = filled((size_t)out_c, -5000, 5000);
    *multipliers = filled((size_t)out_c, 1 << 30, 0x7fffffff);
    *shifts = filled((size_t)out_c, 38, 44);
}

static op_case conv_case(int32_t kind, int32_t h, int32_t w, int32_t c, int32_t out_c, int32_t k, int32_t stride,
                         const char *name) {
    op_case o = {.kind = kind, .name = name};
    sieve_conv_params *p = &o.conv;
    const int depthwise = kind == SIEVE_JOB_DWCONV;
    if (depthwise) out_c = c;
    p->in_h = h; p->in_w = w; p->in_c = c; p->out_c = out_c;
    p->kernel_h = p->kernel_w = k; p->stride_h = p->stride_w = stride;
    p->pad_top = p->pad_left = k / 2;
    p->out_h = (h + 2 * (k / 2) - k) / stride + 1;
    p->out_w = (w + 2 * (k / 2) - k) / stride + 1;
    p->groups = depthwise ? c : 1;
    p->input_zero_point = -3; p->output_zero_point = 5; p->act_min = -128; p->act_max = 127;
    p->input = random_bytes((size_t)h * w * c, -128);
    p->weights = random_bytes((size_t)k * k * (depthwise ? 1 : c) * out_c, -127);
    requant(out_c, (int32_t **)&p->bias, (int32_t **)&p->multipliers, (int32_t **)&p->shifts);
    o.out_size = (size_t)p->out_h * p->out_w * out_c;
    return o;
}

static op_case fc_case(int32_t k, int32_t out_c, const char *name) {
    op_case o = {.kind = SIEVE_JOB_FC, .name = name};
    sieve_fc_params *p = &o.fc;
    p->k = k; p->out_c = out_c; p->output_zero_point = -7; p->act_min = -128; p->act_max = 127;
    p->input = random_bytes((size_t)k, -128);
    p->weights = random_bytes((size_t)k * out_c, -127);
    requant(out_c, (int32_t **)&p->bias, (int32_t **)&p->multipliers, (int32_t **)&p->shifts);
    o.out_size = (size_t)out_c;
    return o;
}

static size_t scratch_size(int32_t isa, const op_case *o) {
    if (o->kind == SIEVE_JOB_FC) return sieve_fc_scratch_size(isa, &o->fc);
    if (o->kind == SIEVE_JOB_CONV) return sieve_conv_scratch_size(isa, &o->conv);
    return sieve_dwconv_scratch_size(isa, &o->conv);
}

// Packs the op for the path and computes its answer on the calling thread alone.
static void prepare(int32_t isa, op_case *o, void *scratch) {
    o->expected = checked_alloc(o->out_size);
    o->actual = checked_alloc(o->out_size);
    if (o->kind == SIEVE_JOB_FC) {
        o->packed = checked_alloc(sieve_fc_packed_size(isa, &o->fc));
        sieve_fc_pack(isa, &o->fc, o->packed);
        o->fc.output = o->expected;
        sieve_fc_run(isa, &o->fc, o->packed, scratch, 0, o->fc.out_c);
        o->fc.output = o->actual;
        return;
    }
    const int conv = o->kind == SIEVE_JOB_CONV;
    o->packed = checked_alloc(conv ? sieve_conv_packed_size(isa, &o->conv) : sieve_dwconv_packed_size(isa, &o->conv));
    if (conv) sieve_conv_pack(isa, &o->conv, o->packed); else sieve_dwconv_pack(isa, &o->conv, o->packed);
    o->conv.output = o->expected;
    if (conv) sieve_conv_run(isa, &o->conv, o->packed, scratch); else sieve_dwconv_run(isa, &o->conv, o->packed, scratch);
    o->conv.output = o->actual;
}

// Busy threads that compete with the pool for the cores while `busy_on` is set.
static atomic_int busy_on, busy_quit;
static void *busy_main(void *unused) {
    (void)unused;
    volatile uint64_t sink = 0;
    while (!atomic_load(&busy_quit)) if (atomic_load(&busy_on)) sink++; else usleep(1000);
    return NULL;
}

// Fails the test when no job has finished for 120 s (a wake-up lost, a chunk never claimed).
static atomic_long jobs_done;
static void *watchdog_main(void *unused) {
    (void)unused;
    for (long seen = -1; seen != atomic_load(&jobs_done);) {
        seen = atomic_load(&jobs_done);
        sleep(120);
    }
    fprintf(stderr, "FAIL: the pool stalled (no job finished for 120 s)\n");
    _exit(1);
}

static void pause_us(long us) {
    struct timespec ts = {0, us * 1000};
    nanosleep(&ts, NULL);
}

int main(int argc, char **argv) {
    long jobs = 3000;
    int32_t thread_counts[8] = {2, 3, 4, 8}, counts = 4;
    for (int i = 1; i < argc; i++) {
        if (strncmp(argv[i], "--threads=", 10) == 0) {
            counts = 0;
            for (char *s = argv[i] + 10; *s && counts < 8; s++) {
                thread_counts[counts++] = (int32_t)strtol(s, &s, 10);
                if (*s != ',') break;
            }
        } else jobs = strtol(argv[i], NULL, 10);
    }
    pthread_t watchdog;
    pthread_create(&watchdog, NULL, watchdog_main, NULL);
    const int32_t isa = sieve_isa_best();
    op_case ops[] = {
        conv_case(SIEVE_JOB_CONV, 14, 14, 16, 32, 3, 1, "conv 14x14x16 -> 32, 3x3"),
        conv_case(SIEVE_JOB_CONV, 14, 14, 64, 40, 3, 1, "conv 14x14x64 -> 40, 3x3 (Winograd F(2,3) on avx2 and neon)"),
        conv_case(SIEVE_JOB_CONV, 9, 7, 3, 24, 3, 2, "conv 9x7x3 -> 24, 3x3 stride 2 (5 rows)"),
        conv_case(SIEVE_JOB_CONV, 2, 5, 8, 8, 1, 1, "conv 2x5x8 -> 8, 1x1 (2 rows: fewer than the chunks)"),
        conv_case(SIEVE_JOB_DWCONV, 15, 11, 40, 0, 3, 1, "dwconv 15x11x40, 3x3"),
        conv_case(SIEVE_JOB_DWCONV, 1, 9, 24, 0, 3, 1, "dwconv 1x9x24, 3x3 (1 row)"),
        fc_case(300, 100, "fc 300 -> 100"),
        fc_case(64, 5, "fc 64 -> 5 (one block)"),
        // Chunks that outlast the spin budget, so the caller sleeps until the last one is done.
        conv_case(SIEVE_JOB_CONV, 64, 64, 32, 64, 3, 1, "conv 64x64x32 -> 64, 3x3 (long chunks)"),
    };
    const int op_count = (int)(sizeof ops / sizeof ops[0]);
    size_t stride = 64;
    for (int i = 0; i < op_count; i++) {
        const size_t s = (scratch_size(isa, &ops[i]) + 63) / 64 * 64;
        if (s > stride) stride = s;
    }
    uint8_t *scratch = checked_alloc(stride * 8);
    for (int i = 0; i < op_count; i++) prepare(isa, &ops[i], scratch);

    pthread_t busy[2];
    for (int i = 0; i < 2; i++) pthread_create(&busy[i], NULL, busy_main, NULL);
    for (int n = 0; n < counts; n++) {
        const int32_t threads = thread_counts[n];
        sieve_pool *pool = sieve_pool_create(threads, scratch, stride);
        if (pool == NULL) { fprintf(stderr, "FAIL: no pool of %d threads\n", threads); return 1; }
        for (long j = 0; j < jobs; j++) {
            // The long op is one job in 20: it would dominate the run time.
            op_case *o = j % 20 == 0 ? &ops[op_count - 1] : &ops[uniform(0, op_count - 2)];
            atomic_store(&busy_on, j % 1000 >= 500);       // half the jobs with the cores contended
            if (j % 97 == 0) pause_us(300);                 // beyond the spin budget: workers sleep
            memset(o->actual, 0xA5, o->out_size);
            // The second half in frames of 7 jobs: each op then runs split or alone as its timing says.
            if (j >= jobs / 2 && j % 7 == 0) sieve_pool_begin_frame(pool);
            const sieve_job job = {o->kind, isa, o->kind == SIEVE_JOB_FC ? (const void *)&o->fc : (const void *)&o->conv,
                                   o->packed, (int32_t)(o - ops)};
            sieve_pool_run(pool, &job);
            atomic_fetch_add(&jobs_done, 1);
            if (memcmp(o->actual, o->expected, o->out_size) != 0) {
                size_t at = 0;
                while (o->actual[at] == o->expected[at]) at++;
                fprintf(stderr, "FAIL: %s on %s, %d threads, job %ld: byte %zu is %d, one thread gives %d\n", o->name,
                        sieve_isa_name(isa), threads, j, at, o->actual[at], o->expected[at]);
                return 1;
            }
        }
        uint64_t parallel, solo;
        sieve_pool_counts(pool, &parallel, &solo);
        sieve_pool_destroy(pool);
        // Every job of the first half is split; the first frames alternate the two ways.
        if (parallel == 0 || solo == 0 || parallel + solo != (uint64_t)jobs) {
            fprintf(stderr, "FAIL: %d threads: %llu jobs split, %llu alone, of %ld\n", threads,
                    (unsigned long long)parallel, (unsigned long long)solo, jobs);
            return 1;
        }
        printf("%d threads: %ld jobs on %s equal to one thread (%llu split, %llu on the caller alone)\n",
               threads, jobs, sieve_isa_name(isa), (unsigned long long)parallel, (unsigned long long)solo);
    }
    atomic_store(&busy_quit, 1);
    for (int i = 0; i < 2; i++) pthread_join(busy[i], NULL);
    printf("the pool matches one thread on every job\n");
    return 0;
}
