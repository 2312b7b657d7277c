// Thin OS shims so the Swift core never imports Glibc or Foundation (Embedded Swift).
#ifndef SIEVE_OS_H
#define SIEVE_OS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// Maps a whole file read-only. Returns NULL and sets *error_number (errno) on failure;
// an empty file maps to NULL with *error_number = 0 and *size = 0.
const void *sieve_map_file(const char *path, size_t *size, int32_t *error_number);
void sieve_unmap_file(const void *address, size_t size);

// Zeroed memory aligned to `alignment` (a power of two); NULL on failure.
void *sieve_alloc_aligned(size_t size, size_t alignment);
void sieve_free_aligned(void *pointer);

// Monotonic clock in nanoseconds.
uint64_t sieve_now_ns(void);

// The text of an errno value (strerror).
const char *sieve_error_text(int32_t error_number);

// Ends the process with this status (exit: stdio flushed).
void sieve_exit(int32_t status);

#ifdef __cplusplus
}
#endif
#endif
