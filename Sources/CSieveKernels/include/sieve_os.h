// Thin OS shims so the Swift core never imports Glibc or Foundation (Embedded Swift).
#ifndef SIEVE_OS_H
#define SIEVE_OS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// Error numbers of Sieve's own, beyond errno's range; sieve_error_text names them.
#define SIEVE_ENOTREGULAR 100001  // not a regular file (a device, a FIFO, a socket)
#define SIEVE_ECHANGED 100002     // the file shrank while it was read

// A whole file read into private read-only memory (never a mapping of the file itself: truncating
// or rewriting the file later changes nothing). Returns NULL and sets *error_number (an errno or
// SIEVE_E*) on failure; an empty file gives NULL with *error_number = 0 and *size = 0.
const void *sieve_map_file(const char *path, size_t *size, int32_t *error_number);
void sieve_unmap_file(const void *address, size_t size);

// Zeroed memory aligned to `alignment` (a power of two); NULL on failure.
void *sieve_alloc_aligned(size_t size, size_t alignment);
void sieve_free_aligned(void *pointer);
// Uninitialised memory (malloc), NULL when it cannot be had or `size` does not fit this target's
// size_t; freed with sieve_free_aligned.
void *sieve_alloc_bytes(int64_t size);

// Monotonic clock in nanoseconds.
uint64_t sieve_now_ns(void);

// The text of an errno value (strerror) or of a SIEVE_E* number.
const char *sieve_error_text(int32_t error_number);

// Ends the process with this status (exit: stdio flushed).
void sieve_exit(int32_t status);

#ifdef __cplusplus
}
#endif
#endif
