// The thread pool of sieve_threads.h: a generation counter hands out each job, workers count
// themselves done; spinning keeps the hand-off between ops to well under a microsecond.
#define _GNU_SOURCE
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include "sieve_threads.h"
#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

// Spins before a worker sleeps: long enough to bridge the gap between two ops of a frame.
#define SPINS_BEFORE_SLEEP 200000


typedef struct {
    sieve_pool *pool;
    int32_t index;
} worker_start;

struct sieve_pool {
    int32_t threads;
    worker_start starts[SIEVE_MAX_THREADS];
    pthread_t workers[SIEVE_MAX_THREADS];
    int32_t started;
    uint8_t *scratch;
    size_t scratch_stride;
    sieve_job job;
    _Atomic uint32_t generation;  // bumped once per job (the futex word)
    _Atomic int32_t remaining;    // workers still on the current job
    _Atomic int32_t sleepers;
    _Atomic int32_t stop;
};

static inline void cpu_relax(void) {
#if defined(__x86_64__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

static void futex_wait(_Atomic uint32_t *word, uint32_t expected) {
#if defined(__linux__)
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
#else
    (void)word; (void)expected;
    sched_yield();
#endif
}

static void futex_wake_all(_Atomic uint32_t *word) {
#if defined(__linux__)
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
#else
    (void)word;
#endif
}

// Thread t's share [begin, end) of `count` units, as even as integers allow.
static void share(int32_t count, int32_t t, int32_t threads, int32_t *begin, int32_t *end) {
    *begin = (int32_t)((int64_t)count * t / threads);
    *end = (int32_t)((int64_t)count * (t + 1) / threads);
}

static void run_part(sieve_pool *pool, int32_t t) {
    const sieve_job *job = &pool->job;
    void *scratch = pool->scratch + (size_t)t * pool->scratch_stride;
    int32_t begin, end;
    if (job->kind == SIEVE_JOB_FC) {
        const sieve_fc_params *p = (const sieve_fc_params *)job->params;
        share((p->out_c + 15) / 16, t, pool->threads, &begin, &end);
        begin *= 16;
        end = end * 16 < p->out_c ? end * 16 : p->out_c;
        if (begin < end) sieve_fc_run(job->isa, p, job->packed, scratch, begin, end);
        return;
    }
    const sieve_conv_params *p = (const sieve_conv_params *)job->params;
    share(p->out_h, t, pool->threads, &begin, &end);
    if (begin >= end) return;
    const sieve_conv_params band = sieve_conv_rows(p, begin, end);
    if (job->kind == SIEVE_JOB_CONV) sieve_conv_run(job->isa, &band, job->packed, scratch);
    else sieve_dwconv_run(job->isa, &band, job->packed, scratch);
}

static void *worker_main(void *argument) {
    const worker_start *start = (const worker_start *)argument;
    sieve_pool *pool = start->pool;
    uint32_t seen = 0;
    for (;;) {
        uint32_t now;
        int32_t spins = 0;
        while ((now = atomic_load_explicit(&pool->generation, memory_order_acquire)) == seen) {
            if (++spins < SPINS_BEFORE_SLEEP) { cpu_relax(); continue; }
            atomic_fetch_add(&pool->sleepers, 1);
            if (atomic_load(&pool->generation) == seen) futex_wait(&pool->generation, seen);
            atomic_fetch_sub(&pool->sleepers, 1);
            spins = 0;
        }
        seen = now;
        if (atomic_load(&pool->stop)) return NULL;
        run_part(pool, start->index);
        atomic_fetch_sub_explicit(&pool->remaining, 1, memory_order_release);
    }
}

static void publish(sieve_pool *pool) {
    atomic_store_explicit(&pool->remaining, pool->started, memory_order_relaxed);
    atomic_fetch_add(&pool->generation, 1);  // sequentially consistent: pairs with the sleepers check
    if (atomic_load(&pool->sleepers) > 0) futex_wake_all(&pool->generation);
}

sieve_pool *sieve_pool_create(int32_t threads, uint8_t *scratch, size_t scratch_stride) {
    if (threads < 2 || threads > SIEVE_MAX_THREADS) return NULL;
    sieve_pool *pool = calloc(1, sizeof *pool);
    if (pool == NULL) return NULL;
    pool->threads = threads;
    pool->scratch = scratch;
    pool->scratch_stride = scratch_stride;
    for (int32_t t = 1; t < threads; t++) {
        pool->starts[t] = (worker_start){pool, t};
        if (pthread_create(&pool->workers[pool->started], NULL, worker_main, &pool->starts[t]) != 0) break;
        pool->started++;
    }
    if (pool->started != threads - 1) { sieve_pool_destroy(pool); return NULL; }
    return pool;
}

void sieve_pool_destroy(sieve_pool *pool) {
    if (pool == NULL) return;
    atomic_store(&pool->stop, 1);
    publish(pool);
    for (int32_t i = 0; i < pool->started; i++) pthread_join(pool->workers[i], NULL);
    free(pool);
}

void sieve_pool_run(sieve_pool *pool, const sieve_job *job) {
    pool->job = *job;
    publish(pool);
    run_part(pool, 0);
    while (atomic_load_explicit(&pool->remaining, memory_order_acquire) != 0) cpu_relax();
}
