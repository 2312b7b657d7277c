// The process arguments for Embedded Swift, which has no CommandLine (sieve_io.h).
//
// glibc calls every ELF constructor (.init_array entry) as f(argc, argv, envp), in the main
// program and in shared libraries alike; that is a glibc extension, not C or POSIX, so other C
// libraries (musl calls them with no arguments) get no constructor here and the arguments come
// from /proc/self/cmdline instead, on first use. The constructor lives in the same object as
// sieve_argc so that linking from a static library always pulls it in.
// -DSIEVE_ARGS_FROM_PROC forces the /proc path (the tests use it to cover that path on glibc).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>
#include "sieve_io.h"

// The /proc fallback's fixed room: arguments past it are left out (sieve-run's are far shorter).
#define CMDLINE_BYTES 65536
#define CMDLINE_ARGS 1024

// Set by the constructor before main, then only read.
static int constructor_argc;
static char **constructor_argv;

#if defined(__GLIBC__) && !defined(SIEVE_ARGS_FROM_PROC)
__attribute__((constructor)) static void capture_arguments(int argc, char **argv, char **envp) {
    (void)envp;
    if (argc > 0 && argv != NULL) {
        constructor_argc = argc;
        constructor_argv = argv;
    }
}
#endif

static char cmdline[CMDLINE_BYTES];
static char *cmdline_argv[CMDLINE_ARGS];
static int cmdline_argc;
static pthread_once_t cmdline_once = PTHREAD_ONCE_INIT;

// Splits /proc/self/cmdline (arguments, each ending in NUL) into cmdline_argv.
static void read_cmdline(void) {
    const int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    size_t size = 0;
    while (size < sizeof cmdline) {
        const ssize_t got = read(fd, cmdline + size, sizeof cmdline - size);
        if (got > 0) size += (size_t)got;
        else if (got == 0 || errno != EINTR) break;
    }
    close(fd);
    int count = 0;
    size_t start = 0;
    for (size_t i = 0; i < size && count < CMDLINE_ARGS; i++) {
        if (cmdline[i] != 0) continue;  // an argument cut off by the end of the buffer is left out
        cmdline_argv[count++] = cmdline + start;
        start = i + 1;
    }
    cmdline_argc = count;
}

// The constructor's arguments, or /proc/self/cmdline's when it had none (read once, thread-safe).
static char **arguments(int *count) {
    if (constructor_argv != NULL) { *count = constructor_argc; return constructor_argv; }
    pthread_once(&cmdline_once, read_cmdline);
    *count = cmdline_argc;
    return cmdline_argv;
}

int32_t sieve_argc(void) {
    int count;
    (void)arguments(&count);
    return count;
}

const char *sieve_argv(int32_t index) {
    int count;
    char **argv = arguments(&count);
    return index >= 0 && index < count ? argv[index] : NULL;
}
