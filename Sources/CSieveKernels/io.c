// Frame sources, stop signals and output pipes (sieve_io.h). Every blocking read polls the input
// together with a self-pipe that the signal handler writes to, so a stop wakes every reading
// thread at once, whichever thread the kernel ran the handler on.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
#include "sieve_io.h"

// Longest single read or write: Linux moves at most this much per call anyway.
#define MAX_CHUNK ((int64_t)0x7ffff000)
// Poll timeout when there is no self-pipe (handlers not installed, or pipe2 failed): the flag is
// then seen within this many milliseconds instead of at once.
#define STOP_RECHECK_MS 100

// The first stop signal, or 0. Written by the handler, read by any thread: atomic builtins on the
// sig_atomic_t make that a race-free access as well as an async-signal-safe one.
static volatile sig_atomic_t stop_signal;
// The self-pipe: the handler writes one byte per signal and nobody drains it, so once stopped
// every poll on stop_pipe_read returns at once (level-triggered, any number of threads).
static int stop_pipe_read = -1;
static int stop_pipe_write = -1;

static void on_stop_signal(int signal_number) {
    const int saved = errno;
    if (__atomic_load_n(&stop_signal, __ATOMIC_RELAXED) == 0)
        __atomic_store_n(&stop_signal, signal_number, __ATOMIC_RELEASE);
    if (stop_pipe_write >= 0) {
        const char byte = 1;
        (void)!write(stop_pipe_write, &byte, 1);  // non-blocking: a full pipe already wakes everyone
    }
    errno = saved;
}

int32_t sieve_open_standard_fds(void) {
    int32_t reopened = 0;
    for (int fd = 0; fd <= 2; fd++) {
        if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF) continue;
        // open() takes the lowest free number, which is this one (the lower ones are open now).
        // Read-only: a closed stdin reads as empty, writes to a closed stdout fail with EBADF.
        const int got = open("/dev/null", O_RDONLY);
        if (got >= 0 && got != fd) close(got);
        reopened |= 1 << fd;
    }
    return reopened;
}

void sieve_install_signal_handlers(void) {
    if (stop_pipe_read < 0) {
        int ends[2];
        if (pipe2(ends, O_CLOEXEC | O_NONBLOCK) == 0) {
            __atomic_store_n(&stop_pipe_write, ends[1], __ATOMIC_RELEASE);
            __atomic_store_n(&stop_pipe_read, ends[0], __ATOMIC_RELEASE);
        }
    }
    // No SA_RESTART: a blocking call on the thread that takes the signal returns EINTR.
    // SA_RESETHAND: a second Ctrl-C kills as usual, should a stopped run hang on a stalled writer.
    struct sigaction action = {0};
    action.sa_handler = on_stop_signal;
    action.sa_flags = SA_RESETHAND;
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, NULL);
    sigaction(SIGTERM, &action, NULL);
    struct sigaction ignore = {0};
    ignore.sa_handler = SIG_IGN;
    sigemptyset(&ignore.sa_mask);
    sigaction(SIGPIPE, &ignore, NULL);
}

int32_t sieve_errno_pipe(void) { return EPIPE; }

int32_t sieve_stop_signal(void) { return __atomic_load_n(&stop_signal, __ATOMIC_ACQUIRE); }

int32_t sieve_open_input(const char *path) {
    if (path == NULL || (path[0] == '-' && path[1] == 0)) return STDIN_FILENO;
    int fd;
    // Opening a FIFO blocks until a writer opens it; a stop signal on this thread ends the wait.
    while ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
        if (errno != EINTR || sieve_stop_signal() != 0) return -errno;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) { const int saved = errno; close(fd); return -saved; }
    if (S_ISDIR(st.st_mode)) { close(fd); return -EISDIR; }
    return fd;
}

void sieve_close_input(int32_t fd) {
    if (fd > STDIN_FILENO) close(fd);
}

// Waits until `fd` has something to read (data, end of file or an error: read() tells which).
// Returns false when a stop signal arrived or `quit_fd` (-1: none) became readable.
static bool wait_readable(int fd, int quit_fd) {
    for (;;) {
        if (sieve_stop_signal() != 0) return false;
        const int stop_fd = __atomic_load_n(&stop_pipe_read, __ATOMIC_ACQUIRE);
        struct pollfd fds[3] = {{fd, POLLIN, 0}, {stop_fd, POLLIN, 0}, {quit_fd, POLLIN, 0}};
        const int ready = poll(fds, 3, stop_fd < 0 ? STOP_RECHECK_MS : -1);  // negative fds are skipped
        if (ready < 0 && errno != EINTR) return true;  // let read() report the problem
        if (ready <= 0) continue;
        if (fds[1].revents != 0 || fds[2].revents != 0) return false;
        return true;
    }
}

// sieve_read_full with a second way to be woken (the latest-frame reader's quit pipe). Returns the
// bytes read; *error_number is the errno that ended the read early (0 at end of file or on stop).
int64_t sieve_io_read_until(int32_t fd, uint8_t *buffer, int64_t count, int quit_fd, int32_t *error_number) {
    int64_t done = 0;
    *error_number = 0;
    // poll() would wait forever on an fd not open for reading (a pipe's write end): read() would not.
    const int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || (flags & O_ACCMODE) == O_WRONLY) { *error_number = flags < 0 ? errno : EBADF; return 0; }
    while (done < count) {
        if (!wait_readable(fd, quit_fd)) break;
        const int64_t want = count - done < MAX_CHUNK ? count - done : MAX_CHUNK;
        const ssize_t got = read(fd, buffer + done, (size_t)want);
        if (got > 0) { done += got; continue; }
        if (got == 0) break;  // end of file
        if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;  // poll again
        *error_number = errno;
        break;
    }
    return done;
}

int64_t sieve_read_full(int32_t fd, uint8_t *buffer, int64_t count) {
    if (count <= 0) return count == 0 ? 0 : -EINVAL;
    int32_t error_number;
    const int64_t done = sieve_io_read_until(fd, buffer, count, -1, &error_number);
    return done == 0 && error_number != 0 ? -error_number : done;
}

int32_t sieve_write_all(int32_t fd, const void *data, size_t count) {
    const uint8_t *bytes = (const uint8_t *)data;
    while (count > 0) {
        const size_t want = count < (size_t)MAX_CHUNK ? count : (size_t)MAX_CHUNK;
        const ssize_t wrote = write(fd, bytes, want);
        if (wrote > 0) { bytes += wrote; count -= (size_t)wrote; continue; }
        if (wrote < 0 && errno == EINTR) continue;
        if (wrote < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            // A non-blocking stdout (shared with a parent that set O_NONBLOCK): wait for room.
            struct pollfd out = {fd, POLLOUT, 0};
            poll(&out, 1, -1);
            continue;
        }
        return wrote < 0 ? -errno : -EIO;
    }
    return 0;
}

int32_t sieve_format_floats(char *out, size_t size, const float *values, int32_t count) {
    size_t used = 0;
    for (int32_t i = 0; i < count; i++) {
        const size_t room = size - used;  // a value that does not fit is cut by snprintf and not counted
        const int n = snprintf(out + used, room, isfinite(values[i]) ? "%s%.9g" : "%snull", i ? "," : "", (double)values[i]);
        if (n < 0 || (size_t)n >= room) break;
        used += (size_t)n;
    }
    return (int32_t)used;
}
