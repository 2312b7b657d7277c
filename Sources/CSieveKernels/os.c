// OS shims: the only place the runtime touches files, memory and clocks.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "sieve_os.h"

const void *sieve_map_file(const char *path, size_t *size, int32_t *error_number) {
    *size = 0;
    *error_number = 0;
    const int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) { *error_number = errno; return NULL; }
    struct stat st;
    if (fstat(fd, &st) != 0) { *error_number = errno; close(fd); return NULL; }
    if (!S_ISREG(st.st_mode)) { *error_number = EISDIR; close(fd); return NULL; }
    if (st.st_size == 0) { close(fd); return NULL; }
    void *address = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    const int saved = errno;
    close(fd);
    if (address == MAP_FAILED) { *error_number = saved; return NULL; }
    *size = (size_t)st.st_size;
    return address;
}

void sieve_unmap_file(const void *address, size_t size) {
    if (address != NULL) munmap((void *)address, size);
}

void *sieve_alloc_aligned(size_t size, size_t alignment) {
    void *pointer = NULL;
    if (posix_memalign(&pointer, alignment, size == 0 ? alignment : size) != 0) return NULL;
    memset(pointer, 0, size);
    return pointer;
}

void sieve_free_aligned(void *pointer) { free(pointer); }

uint64_t sieve_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

const char *sieve_error_text(int32_t error_number) { return strerror(error_number); }

void sieve_exit(int32_t status) { exit(status); }
