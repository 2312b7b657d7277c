// Counts heap allocations made by the calling thread between start and stop, by interposing
// malloc and friends in the test executable (glibc's __libc_* do the real work).
#ifndef ALLOCATION_COUNTER_H
#define ALLOCATION_COUNTER_H
#include <stdint.h>
void allocation_counter_start(void);
/// Returns the number of malloc/calloc/realloc/posix_memalign/aligned_alloc calls since start.
int64_t allocation_counter_stop(void);
#endif
