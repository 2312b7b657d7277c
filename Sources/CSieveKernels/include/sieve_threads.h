// A fixed pool of threads that splits one op at a time: conv and depthwise by bands of output
// rows, fully connected by blocks of 16 output channels. Each op is cut into a few chunks per
// thread that the threads, the caller included, claim as they come free, so a descheduled worker
// holds up at most the chunk it is running. Created once at load; running a job allocates nothing.
// Waiting threads spin for a bounded time (100 us), then sleep on a futex. Once frames are marked
// (sieve_pool_begin_frame), each op runs split or on the caller alone, whichever its running median
// time says is faster (busy processes on the cores make splitting slower), with the same results.
#ifndef SIEVE_THREADS_H
#define SIEVE_THREADS_H

#include <stddef.h>
#include <stdint.h>
#include "sieve_kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SIEVE_MAX_THREADS 64
// Ops timed separately (job slots); jobs of other slots always split.
#define SIEVE_POOL_SLOTS 1024

enum { SIEVE_JOB_CONV = 0, SIEVE_JOB_DWCONV = 1, SIEVE_JOB_FC = 2 };

typedef struct {
    int32_t kind;        // SIEVE_JOB_*
    int32_t isa;
    const void *params;  // sieve_conv_params or sieve_fc_params
    const void *packed;  // as for sieve_conv_run / sieve_fc_run
    int32_t slot;        // the op's index in the network (0 ... SIEVE_POOL_SLOTS - 1): its timing slot
} sieve_job;

typedef struct sieve_pool sieve_pool;

// `threads` in 2 ... SIEVE_MAX_THREADS: threads - 1 workers plus the caller. Each thread's kernel
// scratch is scratch + t * scratch_stride. NULL if the threads cannot be started.
sieve_pool *sieve_pool_create(int32_t threads, uint8_t *scratch, size_t scratch_stride);
void sieve_pool_destroy(sieve_pool *pool);

// Runs the job on the threads of the pool (or on the caller alone, when its slot's timing says so)
// and returns when all parts are done.
void sieve_pool_run(sieve_pool *pool, const sieve_job *job);

// Marks the start of a frame: each op's split-or-alone choice is made and probed per frame. Before
// the first call every job is split and nothing is timed.
void sieve_pool_begin_frame(sieve_pool *pool);

// Jobs run so far split over the threads, and on the caller alone.
void sieve_pool_counts(const sieve_pool *pool, uint64_t *parallel, uint64_t *solo);

#ifdef __cplusplus
}
#endif
#endif
