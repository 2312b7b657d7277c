// OS shims: the only place the runtime touches files, memory and clocks.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>
#include "sieve_os.h"

// The file is read into a private anonymous mapping rather than mapped: a blob truncated or
// rewritten in place while sieve-run runs then changes nothing it uses (a shared or private file
// mapping would raise SIGBUS on the pages cut off, and show bytes written after validation).
const void *sieve_map_file(const char *path, size_t *size, int32_t *error_number) {
    *size = 0;
    *error_number = 0;
    const int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) { *error_number = errno; return NULL; }
    struct stat st;
    if (fstat(fd, &st) != 0) { *error_number = errno; close(fd); return NULL; }
    if (S_ISDIR(st.st_mode)) { *error_number = EISDIR; close(fd); return NULL; }
    if (!S_ISREG(st.st_mode)) { *error_number = SIEVE_ENOTREGULAR; close(fd); return NULL; }
    if (st.st_size == 0) { close(fd); return NULL; }
    if ((uint64_t)st.st_size > (uint64_t)SIZE_MAX / 2) { *error_number = EFBIG; close(fd); return NULL; }
    const size_t length = (size_t)st.st_size;
    uint8_t *address = mmap(NULL, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (address == MAP_FAILED) { *error_number = errno; close(fd); return NULL; }
    size_t done = 0;
    while (done < length) {
        const size_t want = length - done < (size_t)0x7ffff000 ? length - done : (size_t)0x7ffff000;
        const ssize_t got = read(fd, address + done, want);
        if (got > 0) { done += (size_t)got; continue; }
        if (got < 0 && errno == EINTR) continue;
        // An error, or the file shrank since fstat (being rewritten): no blob to use.
        *error_number = got < 0 ? errno : SIEVE_ECHANGED;
        munmap(address, length);
        close(fd);
        return NULL;
    }
    close(fd);
    mprotect(address, length, PROT_READ);
    *size = length;
    return address;
}

const char *sieve_error_text(int32_t error_number) {
    if (error_number == SIEVE_ENOTREGULAR) return "not a regular file";
    if (error_number == SIEVE_ECHANGED) return "the file changed while it was read";
    return strerror(error_number);
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

void *sieve_alloc_bytes(int64_t size) {
    if (size < 0 || (uint64_t)size > (uint64_t)SIZE_MAX) return NULL;
    return malloc(size == 0 ? 1 : (size_t)size);
}

uint64_t sieve_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}


void sieve_exit(int32_t status) { exit(status); }
