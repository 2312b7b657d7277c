// The thread pool of sieve_threads.h. Each job is cut into more chunks than there are threads, and
// every thread (the caller too) claims chunks until none is left: a worker the OS has descheduled
// claims nothing, so the running threads do its share instead of waiting a time slice for it.
// Waiting threads spin for a bounded time, then sleep on a futex, so a pool beside a busy camera
// process gives its cores back between frames.
//
// Splitting only pays while the workers get a core. Beside busy processes a worker is often
// descheduled, mid-chunk or before it wakes, and a split op then takes longer than the caller alone
// would. So each op (its slot) keeps a running median of its time split and alone, and runs the way
// that is faster; the other way is probed for a few frames, at intervals that double while the
// choice holds, so a change in the machine's load is noticed. Both ways give identical results.
#define _GNU_SOURCE
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include "sieve_threads.h"
#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

// How long a thread spins before it sleeps: long enough to bridge the gap between two ops of a
// frame (a pool or add runs for a few microseconds), short against a camera's frame interval.
#define SPIN_NS 100000
// Chunks per thread: more chunks balance better when a thread is slowed; each costs a claim
// (one compare-and-swap) and a kernel call.
#define CHUNKS_PER_THREAD 4
// Per-op timing: the first WARM_FRAMES frames alternate split and alone; then the slower way is
// probed for PROBE_FRAMES frames, FIRST_GAP frames later, the gap doubling to MAX_GAP while the
// probes confirm the choice (rare probes keep a contended pool's p99 clean).
#define WARM_FRAMES 8
#define PROBE_FRAMES 4
#define FIRST_GAP 16
#define MAX_GAP 1024

// One op's running medians (ns) split and alone, and its probe schedule, in frames.
typedef struct {
    uint32_t median[2];  // [0] alone, [1] split; 0 before the first sample
    uint32_t gap;        // frames from the end of one probe to the next; 0 while warming up
    uint32_t next;       // the frame the next probe starts
    uint32_t until;      // while probing: one past the probe's last frame
    uint8_t probing;
    uint8_t way;         // the way being probed
} slot_timing;

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
    int32_t units;                 // rows (conv) or 16-channel blocks (fc) of the job
    int32_t chunks;                // the job's chunks
    _Atomic uint64_t work;         // job number << 32 | chunks not yet claimed
    _Atomic uint32_t generation;   // job number, the workers' futex word
    _Atomic uint32_t completed;    // chunks done, the caller's futex word
    _Atomic int32_t caller_sleeps;
    _Atomic int32_t workers_sleep;  // workers asleep on `generation`
    _Atomic int32_t stop;
    uint32_t frame;                // frames begun (sieve_pool_begin_frame); 0: no timing, always split
    slot_timing slots[SIEVE_POOL_SLOTS];
    uint64_t parallel_jobs, solo_jobs;
};

static inline void cpu_relax(void) {
#if defined(__x86_64__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
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

// Waits until *word differs from `value`: spins for SPIN_NS, then sleeps. `sleeping`, when not
// NULL, is raised while asleep so the waker knows a futex wake is needed.
static uint32_t wait_while_equal(_Atomic uint32_t *word, uint32_t value, _Atomic int32_t *sleeping) {
    uint32_t now;
    uint64_t deadline = 0;
    for (uint32_t spins = 0; (now = atomic_load_explicit(word, memory_order_acquire)) == value; spins++) {
        if ((spins & 63) != 63) { cpu_relax(); continue; }
        const uint64_t t = now_ns();
        if (deadline == 0) { deadline = t + SPIN_NS; continue; }
        if (t < deadline) continue;
        if (sleeping) atomic_fetch_add(sleeping, 1);
        if (atomic_load(word) == value) futex_wait(word, value);
        if (sleeping) atomic_fetch_sub(sleeping, 1);
        deadline = 0;
    }
    return now;
}

// Units [begin, end) of chunk c: the job's units as evenly as integers allow.
static void chunk_units(const sieve_pool *pool, int32_t c, int32_t *begin, int32_t *end) {
    *begin = (int32_t)((int64_t)pool->units * c / pool->chunks);
    *end = (int32_t)((int64_t)pool->units * (c + 1) / pool->chunks);
}

// Runs units [begin, end) of the current job on thread t.
static void run_units(sieve_pool *pool, int32_t t, int32_t begin, int32_t end) {
    const sieve_job *job = &pool->job;
    void *scratch = pool->scratch + (size_t)t * pool->scratch_stride;
    if (begin >= end) return;
    if (job->kind == SIEVE_JOB_FC) {
        const sieve_fc_params *p = (const sieve_fc_params *)job->params;
        const int32_t oc_end = end * 16 < p->out_c ? end * 16 : p->out_c;
        sieve_fc_run(job->isa, p, job->packed, scratch, begin * 16, oc_end);
        return;
    }
    const sieve_conv_params band = sieve_conv_rows((const sieve_conv_params *)job->params, begin, end);
    if (job->kind == SIEVE_JOB_CONV) sieve_conv_run(job->isa, &band, job->packed, scratch);
    else sieve_dwconv_run(job->isa, &band, job->packed, scratch);
}

static void run_chunk(sieve_pool *pool, int32_t t, int32_t c) {
    int32_t begin, end;
    chunk_units(pool, c, &begin, &end);
    run_units(pool, t, begin, end);
}

// Claims and runs chunks of job `number` on thread t until none is left. A claim succeeds only
// while the job is current, so a late worker never touches the next job's chunks; the job cannot
// complete (and be replaced) while a claimed chunk runs. Returns the chunks it ran.
static int32_t claim_chunks(sieve_pool *pool, int32_t t, uint32_t number) {
    uint64_t work = atomic_load_explicit(&pool->work, memory_order_acquire);
    for (int32_t ran = 0;; ran++) {
        if ((uint32_t)(work >> 32) != number || (uint32_t)work == 0) return ran;
        if (!atomic_compare_exchange_weak_explicit(&pool->work, &work, work - 1, memory_order_acq_rel,
                                                   memory_order_acquire)) continue;
        const uint32_t chunks = (uint32_t)pool->chunks;  // read before the job can complete
        run_chunk(pool, t, (int32_t)(uint32_t)work - 1);
        const uint32_t done = atomic_fetch_add(&pool->completed, 1) + 1;
        if (done == chunks && t != 0 && atomic_load(&pool->caller_sleeps) > 0)
            futex_wake_all(&pool->completed);
        work = atomic_load_explicit(&pool->work, memory_order_acquire);
    }
}

static void *worker_main(void *argument) {
    const worker_start *start = (const worker_start *)argument;
    sieve_pool *pool = start->pool;
    uint32_t seen = 0;
    for (;;) {
        seen = wait_while_equal(&pool->generation, seen, &pool->workers_sleep);
        if (atomic_load(&pool->stop)) return NULL;
        claim_chunks(pool, start->index, seen);
    }
}

// Makes job `number` of `chunks` chunks current and wakes the workers.
static void publish(sieve_pool *pool, uint32_t number, uint32_t chunks) {
    atomic_store_explicit(&pool->completed, 0, memory_order_relaxed);
    atomic_store_explicit(&pool->work, (uint64_t)number << 32 | chunks, memory_order_release);
    atomic_store(&pool->generation, number);  // sequentially consistent: pairs with the sleepers' count
    if (atomic_load(&pool->workers_sleep) > 0) futex_wake_all(&pool->generation);
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
    publish(pool, atomic_load(&pool->generation) + 1, 0);
    for (int32_t i = 0; i < pool->started; i++) pthread_join(pool->workers[i], NULL);
    free(pool);
}

void sieve_pool_begin_frame(sieve_pool *pool) {
    if (++pool->frame == 0) pool->frame = 1;
}

// Moves a running median one step (1/8 of it) toward the sample; the first sample sets it.
static void track_median(uint32_t *median, uint64_t sample) {
    const uint32_t t = sample > UINT32_MAX ? UINT32_MAX : (uint32_t)sample;
    const uint32_t step = *median / 8 > 0 ? *median / 8 : 1;
    if (*median == 0) *median = t;
    else if (t > *median) *median = UINT32_MAX - *median < step ? UINT32_MAX : *median + step;
    else if (t < *median) *median = *median - step < t ? t : *median - step;
}

// The way (1 split, 0 alone) slot s runs in the current frame.
static int32_t choose_way(sieve_pool *pool, int32_t s) {
    if (pool->frame == 0 || s < 0 || s >= SIEVE_POOL_SLOTS) return 1;
    slot_timing *slot = &pool->slots[s];
    const uint32_t frame = pool->frame;
    const int32_t best = slot->median[1] <= slot->median[0];
    if (!slot->probing && (int32_t)(frame - slot->next) >= 0) {  // a probe (or the warm-up) is due
        slot->probing = 1;
        slot->until = frame + (slot->gap ? PROBE_FRAMES : WARM_FRAMES);
        slot->way = (uint8_t)(best ^ 1);
    }
    if (slot->probing) {
        if ((int32_t)(frame - slot->until) < 0) return slot->gap ? slot->way : (int32_t)(frame & 1);
        const int32_t confirmed = slot->gap && best != slot->way;
        slot->gap = confirmed ? (slot->gap < MAX_GAP ? slot->gap * 2 : MAX_GAP) : FIRST_GAP;
        slot->next = frame + slot->gap;
        slot->probing = 0;
    }
    return best;
}

void sieve_pool_run(sieve_pool *pool, const sieve_job *job) {
    pool->job = *job;
    pool->units = job->kind == SIEVE_JOB_FC ? (((const sieve_fc_params *)job->params)->out_c + 15) / 16
                                            : ((const sieve_conv_params *)job->params)->out_h;
    const int32_t most = pool->threads * CHUNKS_PER_THREAD;
    pool->chunks = pool->units < most ? pool->units : most;
    if (pool->chunks < 1) return;
    const int32_t split = choose_way(pool, job->slot);
    const uint64_t start = pool->frame ? now_ns() : 0;
    if (!split) {
        pool->solo_jobs++;
        run_units(pool, 0, 0, pool->units);
    } else {
        // The job number never repeats the one a worker last saw (0 is skipped so workers start waiting).
        uint32_t number = atomic_load(&pool->generation) + 1;
        if (number == 0) number = 1;
        publish(pool, number, (uint32_t)pool->chunks);
        pool->parallel_jobs++;
        claim_chunks(pool, 0, number);
        // The chunks other threads claimed: wait for them (only the last one done wakes the caller).
        for (uint32_t done; (done = atomic_load(&pool->completed)) != (uint32_t)pool->chunks;)
            wait_while_equal(&pool->completed, done, &pool->caller_sleeps);
    }
    if (pool->frame && job->slot >= 0 && job->slot < SIEVE_POOL_SLOTS)
        track_median(&pool->slots[job->slot].median[split], now_ns() - start);
}

void sieve_pool_counts(const sieve_pool *pool, uint64_t *parallel, uint64_t *solo) {
    *parallel = pool->parallel_jobs;
    *solo = pool->solo_jobs;
}
