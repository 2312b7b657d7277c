// Counts heap allocations made by the calling thread between start and stop. Normally by
// interposing malloc and friends; under AddressSanitizer, which owns malloc, through its hooks.
#define _GNU_SOURCE
#include <errno.h>
#include <stddef.h>
#include "allocation_counter.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SIEVE_UNDER_ASAN 1
#endif
#endif

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);

static _Thread_local int counting;
static _Thread_local int64_t count;

void allocation_counter_start(void) { count = 0; counting = 1; }
int64_t allocation_counter_stop(void) { counting = 0; return count; }

#if SIEVE_UNDER_ASAN
#include <sanitizer/allocator_interface.h>

static void on_allocation(const volatile void *pointer, size_t size) {
    (void)pointer; (void)size;
    if (counting) count++;
}
static void on_free(const volatile void *pointer) { (void)pointer; }
__attribute__((constructor)) static void install_hooks(void) { __sanitizer_install_malloc_and_free_hooks(on_allocation, on_free); }
#else
void *malloc(size_t size) { if (counting) count++; return __libc_malloc(size); }
void *calloc(size_t n, size_t size) { if (counting) count++; return __libc_calloc(n, size); }
void *realloc(void *p, size_t size) { if (counting) count++; return __libc_realloc(p, size); }
void free(void *p) { __libc_free(p); }
void *aligned_alloc(size_t alignment, size_t size) { if (counting) count++; return __libc_memalign(alignment, size); }
void *memalign(size_t alignment, size_t size) { if (counting) count++; return __libc_memalign(alignment, size); }
int posix_memalign(void **out, size_t alignment, size_t size) {
    if (counting) count++;
    void *p = __libc_memalign(alignment, size);
    if (p == NULL) return ENOMEM;
    *out = p;
    return 0;
}
#endif
