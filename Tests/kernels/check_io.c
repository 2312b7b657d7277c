// Frame streams, stop signals, output pipes and the process arguments (sieve_io.h).
//
//   check_io [ARGUMENTS...]   any arguments: sieve_argc/sieve_argv must return them
//
// Pipes are fed by writer threads in odd-sized chunks; the latest-frame reader runs against a fast
// producer and a slow consumer, and against a deterministic one; stop signals are tested in forked
// children (a stop is sticky for the whole process), reaching the process three ways: on the thread
// that blocks (pthread_kill), on another thread (raise from a timer thread) and process-directed
// (kill). Exits non-zero on the first failure; takes about two seconds (more under valgrind).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "sieve_io.h"

#define CHECK(condition, ...)                                                    \
    do {                                                                         \
        if (!(condition)) {                                                      \
            fprintf(stderr, "check_io.c:%d: failed: %s: ", __LINE__, #condition); \
            fprintf(stderr, __VA_ARGS__);                                        \
            fprintf(stderr, "\n");                                               \
            exit(1);                                                             \
        }                                                                        \
    } while (0)

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void sleep_ms(int ms) {
    const struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

// Byte `i` of stream position / frame `k`: no two frames (or offsets) look alike.
static uint8_t pattern(int64_t k, int64_t i) { return (uint8_t)(k * 131 + i * 7 + (i >> 9)); }

// A frame whose first 4 bytes are its index (little-endian) and the rest the pattern.
static void fill_frame(uint8_t *frame, int64_t bytes, int64_t index) {
    for (int64_t i = 0; i < bytes; i++) frame[i] = pattern(index, i);
    for (int i = 0; i < 4 && i < bytes; i++) frame[i] = (uint8_t)(index >> (8 * i));
}

static int64_t frame_index_of(const uint8_t *frame) {
    return frame[0] | frame[1] << 8 | frame[2] << 16 | (int64_t)frame[3] << 24;
}

static int frame_intact(const uint8_t *frame, int64_t bytes, int64_t index) {
    if (frame_index_of(frame) != index) return 0;
    for (int64_t i = 4; i < bytes; i++)
        if (frame[i] != pattern(index, i)) return 0;
    return 1;
}

// ---- A writer thread: `total` pattern bytes in chunks of cycling odd sizes ----------------------
typedef struct {
    int fd;
    int64_t total;
} chunk_writer;

static void *write_chunks(void *argument) {
    chunk_writer *writer = (chunk_writer *)argument;
    static const int64_t sizes[] = {1, 7, 13, 509, 4093, 65537, 3, 8191};
    uint8_t *data = malloc((size_t)writer->total);
    for (int64_t i = 0; i < writer->total; i++) data[i] = pattern(0, i);
    int64_t done = 0;
    for (int n = 0; done < writer->total; n++) {
        int64_t size = sizes[n % 8];
        if (size > writer->total - done) size = writer->total - done;
        CHECK(sieve_write_all(writer->fd, data + done, (size_t)size) == 0, "write_all to the pipe");
        done += size;
        if (n % 16 == 15) usleep(200);  // let the reader catch up: it sees short reads
    }
    close(writer->fd);
    free(data);
    return NULL;
}

static void test_read_full_chunks(void) {
    int ends[2];
    CHECK(pipe(ends) == 0, "pipe");
    chunk_writer writer = {ends[1], 200000};
    pthread_t thread;
    pthread_create(&thread, NULL, write_chunks, &writer);
    enum { RECORD = 9973 };
    static uint8_t record[RECORD];
    int64_t position = 0, full = 0;
    for (;;) {
        const int64_t got = sieve_read_full(ends[0], record, RECORD);
        CHECK(got >= 0, "read_full: %lld", (long long)got);
        for (int64_t i = 0; i < got; i++) CHECK(record[i] == pattern(0, position + i), "byte %lld", (long long)(position + i));
        position += got;
        if (got < RECORD) {
            CHECK(got == 200000 % RECORD, "the partial record at end of file: %lld bytes", (long long)got);
            break;
        }
        full++;
    }
    CHECK(full == 200000 / RECORD && position == 200000, "%lld records, %lld bytes", (long long)full, (long long)position);
    CHECK(sieve_read_full(ends[0], record, RECORD) == 0, "read_full after end of file is 0");
    pthread_join(thread, NULL);
    close(ends[0]);
    // -errno when nothing could be read: the write end is not readable.
    int other[2];
    CHECK(pipe(other) == 0, "pipe");
    CHECK(sieve_read_full(other[1], record, 10) == -EBADF, "read_full of a write-only fd is -EBADF");
    close(other[0]);
    close(other[1]);
    printf("read_full: pipe fed in chunks of 1..65537 bytes, %lld records of %d and a partial one of %d: ok\n",
           (long long)full, RECORD, 200000 % RECORD);
}

// ---- sieve_open_input: stdin, a regular file, a FIFO, a character device, errors ---------------
typedef struct {
    const char *path;
    int64_t bytes;
} fifo_writer;

static void *write_fifo(void *argument) {
    fifo_writer *writer = (fifo_writer *)argument;
    const int fd = open(writer->path, O_WRONLY | O_CLOEXEC);  // blocks until the reader opens it
    CHECK(fd >= 0, "open the FIFO for writing: %s", strerror(errno));
    uint8_t data[1000];
    for (int i = 0; i < 1000; i++) data[i] = pattern(3, i);
    CHECK(sieve_write_all(fd, data, (size_t)writer->bytes) == 0, "write the FIFO");
    close(fd);
    return NULL;
}

static void test_open_input(void) {
    const int stdin_open = fcntl(0, F_GETFD) != -1;
    CHECK(sieve_open_input(NULL) == 0 && sieve_open_input("-") == 0, "NULL and - are stdin");
    sieve_close_input(0);
    CHECK((fcntl(0, F_GETFD) != -1) == stdin_open, "sieve_close_input(0) leaves stdin open");
    CHECK(sieve_open_input("/") == -EISDIR, "a directory is -EISDIR");
    CHECK(sieve_open_input("/nonexistent/sieve-frames") == -ENOENT, "a missing file is -ENOENT");

    char directory[] = "/tmp/check_io.XXXXXX";
    CHECK(mkdtemp(directory) != NULL, "mkdtemp");
    char path[64];
    uint8_t data[1000], back[1000];
    // A regular file of 2.5 frames of 400 bytes.
    snprintf(path, sizeof path, "%s/frames", directory);
    FILE *file = fopen(path, "wb");
    for (int i = 0; i < 1000; i++) data[i] = pattern(2, i);
    fwrite(data, 1, 1000, file);
    fclose(file);
    int fd = sieve_open_input(path);
    CHECK(fd > 2, "open a regular file: %d", fd);
    CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC, "opened close-on-exec");
    CHECK(sieve_read_full(fd, back, 400) == 400 && sieve_read_full(fd, back + 400, 400) == 400, "two frames");
    CHECK(sieve_read_full(fd, back + 800, 400) == 200, "a partial frame of 200 bytes");
    CHECK(memcmp(back, data, 1000) == 0, "file contents");
    sieve_close_input(fd);
    CHECK(fcntl(fd, F_GETFD) == -1, "sieve_close_input closes a file");
    unlink(path);
    // A FIFO: the open blocks until the writer thread opens the other end.
    snprintf(path, sizeof path, "%s/fifo", directory);
    CHECK(mkfifo(path, 0600) == 0, "mkfifo");
    fifo_writer writer = {path, 1000};
    pthread_t thread;
    pthread_create(&thread, NULL, write_fifo, &writer);
    fd = sieve_open_input(path);
    CHECK(fd > 2, "open a FIFO: %d", fd);
    for (int i = 0; i < 1000; i++) data[i] = pattern(3, i);
    CHECK(sieve_read_full(fd, back, 1000) == 1000 && memcmp(back, data, 1000) == 0, "FIFO contents");
    CHECK(sieve_read_full(fd, back, 1000) == 0, "FIFO end of file");
    pthread_join(thread, NULL);
    sieve_close_input(fd);
    unlink(path);
    rmdir(directory);
    // A character device.
    fd = sieve_open_input("/dev/zero");
    CHECK(fd > 2, "open /dev/zero: %d", fd);
    memset(back, 0xff, sizeof back);
    CHECK(sieve_read_full(fd, back, 1000) == 1000, "read /dev/zero");
    for (int i = 0; i < 1000; i++) CHECK(back[i] == 0, "/dev/zero byte %d", i);
    sieve_close_input(fd);
    printf("open_input: stdin, a regular file, a FIFO, /dev/zero; -EISDIR, -ENOENT: ok\n");
}

// ---- sieve_write_all: partial writes to a slow pipe, EPIPE -----------------------------------
typedef struct {
    int fd;
    int64_t total;
    int ok;
} slow_drain;

static void *drain_slowly(void *argument) {
    slow_drain *drain = (slow_drain *)argument;
    uint8_t chunk[3001];
    int64_t position = 0;
    drain->ok = 1;
    for (int n = 0;; n++) {
        const ssize_t got = read(drain->fd, chunk, sizeof chunk);
        if (got <= 0) break;
        for (ssize_t i = 0; i < got; i++) drain->ok &= chunk[i] == pattern(5, position + i);
        position += got;
        if (n % 64 == 0) usleep(100);
    }
    drain->ok &= position == drain->total;
    return NULL;
}

static void test_write_all(void) {
    int ends[2];
    CHECK(pipe(ends) == 0, "pipe");
    enum { TOTAL = 1 << 20 };
    uint8_t *data = malloc(TOTAL);
    for (int64_t i = 0; i < TOTAL; i++) data[i] = pattern(5, i);
    // A non-blocking write end: write() stops short or fails with EAGAIN, and write_all waits for room.
    CHECK(fcntl(ends[1], F_SETFL, O_NONBLOCK) == 0, "O_NONBLOCK");
    slow_drain drain = {ends[0], TOTAL, 0};
    pthread_t thread;
    pthread_create(&thread, NULL, drain_slowly, &drain);
    CHECK(sieve_write_all(ends[1], data, TOTAL) == 0, "write 1 MiB to a slowly drained non-blocking pipe");
    close(ends[1]);
    pthread_join(thread, NULL);
    CHECK(drain.ok, "the drained bytes are the written ones");
    close(ends[0]);

    CHECK(pipe(ends) == 0, "pipe");
    close(ends[0]);
    CHECK(sieve_write_all(ends[1], data, 10) == -EPIPE, "a closed read end is -EPIPE");
    CHECK(sieve_write_all(ends[1], data, TOTAL) == -EPIPE, "again, and for a large write");
    close(ends[1]);
    CHECK(sieve_write_all(1, data, 0) == 0, "nothing to write");
    free(data);
    printf("write_all: 1 MiB through a slow non-blocking pipe; -EPIPE on a closed pipe, process alive: ok\n");
}

// ---- The latest-frame reader -------------------------------------------------------------------
// Waits (up to two seconds) until the reader has read `frames` frames.
static sieve_latest_counts wait_for_frames(sieve_latest *reader, int64_t frames) {
    const double start = now_ms();
    sieve_latest_counts counts;
    while ((counts = sieve_latest_get_counts(reader)).frames_read < frames && now_ms() - start < 2000) sleep_ms(1);
    CHECK(counts.frames_read == frames, "%lld frames read, waited for %lld", (long long)counts.frames_read, (long long)frames);
    return counts;
}

static void write_frame(int fd, uint8_t *frame, int64_t bytes, int64_t index) {
    fill_frame(frame, bytes, index);
    CHECK(sieve_write_all(fd, frame, (size_t)bytes) == 0, "write frame %lld", (long long)index);
}

// Step by step: the newest frame is the one taken, the ones before it count as dropped.
static void test_latest_newest(void) {
    enum { FRAME = 4099 };
    static uint8_t frame[FRAME];
    int ends[2];
    CHECK(pipe(ends) == 0, "pipe");
    int32_t error_number = -1;
    CHECK(sieve_latest_start(ends[0], FRAME, 2, &error_number) == NULL && error_number == EINVAL, "2 buffers are refused");
    CHECK(sieve_latest_start(ends[0], 0, 3, &error_number) == NULL && error_number == EINVAL, "an empty frame is refused");
    sieve_latest *reader = sieve_latest_start(ends[0], FRAME, 3, &error_number);
    CHECK(reader != NULL && error_number == 0, "start: %d", error_number);
    for (int64_t k = 0; k < 3; k++) write_frame(ends[1], frame, FRAME, k);
    wait_for_frames(reader, 3);
    int64_t index = -1;
    const uint8_t *taken = sieve_latest_take(reader, &index);
    CHECK(taken != NULL && index == 2 && frame_intact(taken, FRAME, 2), "the newest of three: index %lld", (long long)index);
    CHECK(((uintptr_t)taken & 63) == 0, "64-byte aligned");
    CHECK(sieve_latest_get_counts(reader).frames_dropped == 2, "frames 0 and 1 dropped");
    for (int64_t k = 3; k < 5; k++) write_frame(ends[1], frame, FRAME, k);
    wait_for_frames(reader, 5);
    CHECK(frame_intact(taken, FRAME, 2), "the held frame is left alone while two more are read");
    taken = sieve_latest_take(reader, &index);
    CHECK(taken != NULL && index == 4 && frame_intact(taken, FRAME, 4), "the newest of five: index %lld", (long long)index);
    write_frame(ends[1], frame, FRAME, 5);
    wait_for_frames(reader, 6);
    // Half a frame, then end of file: frame 5 is still handed out, then NULL.
    CHECK(sieve_write_all(ends[1], frame, FRAME / 2) == 0, "half a frame");
    close(ends[1]);
    taken = sieve_latest_take(reader, &index);
    CHECK(taken != NULL && index == 5 && frame_intact(taken, FRAME, 5), "the last frame before end of file: %lld", (long long)index);
    CHECK(sieve_latest_take(reader, &index) == NULL && index == -1, "NULL at end of file");
    CHECK(sieve_latest_take(reader, &index) == NULL, "and NULL again");
    const sieve_latest_counts counts = sieve_latest_get_counts(reader);
    CHECK(counts.frames_read == 6 && counts.frames_dropped == 3 && counts.partial_bytes == FRAME / 2 && counts.error_number == 0,
          "counts: read %lld, dropped %lld, partial %lld, error %d", (long long)counts.frames_read,
          (long long)counts.frames_dropped, (long long)counts.partial_bytes, counts.error_number);
    sieve_latest_finish(reader);
    close(ends[0]);
    printf("latest: the newest frame is taken, older ones dropped, the last one handed out at end of file, "
           "partial %d bytes: ok\n", FRAME / 2);
}

typedef struct {
    int fd;
    int64_t frame_bytes, frames, trailing;
} frame_writer;

static void *write_frames(void *argument) {
    frame_writer *writer = (frame_writer *)argument;
    uint8_t *frame = malloc((size_t)writer->frame_bytes);
    for (int64_t k = 0; k < writer->frames; k++) write_frame(writer->fd, frame, writer->frame_bytes, k);
    CHECK(sieve_write_all(writer->fd, frame, (size_t)writer->trailing) == 0, "trailing bytes");
    close(writer->fd);
    free(frame);
    return NULL;
}

// A producer as fast as a pipe goes, a consumer that takes 2 ms per frame.
static void test_latest_slow_consumer(void) {
    enum { FRAME = 10007, FRAMES = 300, TRAILING = 1234 };
    int ends[2];
    CHECK(pipe(ends) == 0, "pipe");
    int32_t error_number;
    sieve_latest *reader = sieve_latest_start(ends[0], FRAME, 4, &error_number);
    CHECK(reader != NULL, "start: %d", error_number);
    frame_writer writer = {ends[1], FRAME, FRAMES, TRAILING};
    pthread_t thread;
    pthread_create(&thread, NULL, write_frames, &writer);
    int64_t taken_count = 0, last = -1;
    for (;;) {
        const sieve_latest_counts before = sieve_latest_get_counts(reader);
        int64_t index;
        const uint8_t *frame = sieve_latest_take(reader, &index);
        if (frame == NULL) break;
        CHECK(index > last, "indices strictly increase: %lld after %lld", (long long)index, (long long)last);
        CHECK(index >= before.frames_read - 1, "frame %lld taken when %lld was complete", (long long)index,
              (long long)(before.frames_read - 1));
        CHECK(frame_intact(frame, FRAME, index), "frame %lld's bytes (it holds %lld)", (long long)index,
              (long long)frame_index_of(frame));
        last = index;
        taken_count++;
        sleep_ms(2);
        CHECK(frame_intact(frame, FRAME, index), "frame %lld unchanged while held", (long long)index);
    }
    pthread_join(thread, NULL);
    const sieve_latest_counts counts = sieve_latest_get_counts(reader);
    sieve_latest_finish(reader);
    close(ends[0]);
    CHECK(counts.frames_read == FRAMES, "frames read: %lld", (long long)counts.frames_read);
    CHECK(counts.frames_dropped > 0, "a slow consumer drops frames");
    CHECK(counts.frames_read == taken_count + counts.frames_dropped, "read %lld == taken %lld + dropped %lld",
          (long long)counts.frames_read, (long long)taken_count, (long long)counts.frames_dropped);
    CHECK(last == FRAMES - 1, "the last frame is handed out: %lld", (long long)last);
    CHECK(counts.partial_bytes == TRAILING && counts.error_number == 0, "partial %lld, error %d",
          (long long)counts.partial_bytes, counts.error_number);
    printf("latest: %d frames against a 2 ms consumer: %lld taken, %lld dropped, newest each time: ok\n", FRAMES,
           (long long)taken_count, (long long)counts.frames_dropped);
}

// sieve_latest_finish returns promptly while the reader waits on a silent pipe.
static void test_latest_finish_blocked(void) {
    int ends[2];
    CHECK(pipe(ends) == 0, "pipe");
    int32_t error_number;
    sieve_latest *reader = sieve_latest_start(ends[0], 1000, 3, &error_number);
    CHECK(reader != NULL, "start: %d", error_number);
    CHECK(sieve_write_all(ends[1], "abc", 3) == 0, "three bytes");
    sleep_ms(50);
    const double start = now_ms();
    sieve_latest_finish(reader);
    const double took = now_ms() - start;
    CHECK(took < 1000, "finish took %.0f ms", took);
    close(ends[0]);
    close(ends[1]);
    printf("latest: finish while the reader is blocked on a silent pipe returns in %.1f ms: ok\n", took);
}

// ---- Stop signals (each case in a forked child: a stop is sticky) -------------------------------
enum { TO_BLOCKED_THREAD, FROM_OTHER_THREAD, TO_PROCESS };
static const char *const route_names[] = {"pthread_kill(blocked thread)", "raise() on another thread", "kill(process)"};

typedef struct {
    int route, signal_number, delay_ms;
    pthread_t blocked;
    double sent_ms;
} signal_timer;

static void *send_signal_later(void *argument) {
    signal_timer *timer = (signal_timer *)argument;
    sleep_ms(timer->delay_ms);
    timer->sent_ms = now_ms();
    if (timer->route == TO_BLOCKED_THREAD) pthread_kill(timer->blocked, timer->signal_number);
    else if (timer->route == FROM_OTHER_THREAD) raise(timer->signal_number);  // runs the handler on this thread
    else kill(getpid(), timer->signal_number);
    return NULL;
}

static const char *child_name;  // what the forked child tests, for its report line

static void child_done(int route, double late) {
    printf("stop: %s, signal by %s: returned %.1f ms after it: ok\n", child_name, route_names[route], late);
    exit(0);
}

static pthread_t start_timer(signal_timer *timer, int route, int signal_number) {
    *timer = (signal_timer){route, signal_number, 150, pthread_self(), 0};
    pthread_t thread;
    pthread_create(&thread, NULL, send_signal_later, timer);
    return thread;
}

// sieve_read_full blocked on a pipe whose writer went quiet after 100 bytes.
static void child_read_full(int route) {
    int ends[2];
    CHECK(pipe(ends) == 0, "pipe");
    uint8_t buffer[1000];
    memset(buffer, 7, 100);
    CHECK(sieve_write_all(ends[1], buffer, 100) == 0, "100 bytes");
    signal_timer timer;
    pthread_t thread = start_timer(&timer, route, SIGTERM);
    const int64_t got = sieve_read_full(ends[0], buffer, 1000);
    const double returned = now_ms();
    pthread_join(thread, NULL);
    const double late = returned - timer.sent_ms;
    CHECK(got == 100, "read_full returns what it had: %lld", (long long)got);
    CHECK(late < 1000, "returned %.0f ms after the signal", late);
    CHECK(sieve_stop_signal() == SIGTERM, "stop signal %d", sieve_stop_signal());
    CHECK(sieve_read_full(ends[0], buffer, 1000) == 0, "after a stop, read_full returns at once");
    child_done(route, late);
}

// sieve_latest_take waiting for a frame that never completes.
static void child_latest(int route) {
    enum { FRAME = 1000 };
    int ends[2];
    CHECK(pipe(ends) == 0, "pipe");
    uint8_t frame[FRAME];
    write_frame(ends[1], frame, FRAME, 0);
    CHECK(sieve_write_all(ends[1], frame, 300) == 0, "300 bytes of frame 1");
    int32_t error_number;
    sieve_latest *reader = sieve_latest_start(ends[0], FRAME, 3, &error_number);
    CHECK(reader != NULL, "start: %d", error_number);
    int64_t index;
    CHECK(sieve_latest_take(reader, &index) != NULL && index == 0, "frame 0");
    signal_timer timer;
    pthread_t thread = start_timer(&timer, route, SIGINT);
    const uint8_t *taken = sieve_latest_take(reader, &index);
    const double returned = now_ms();
    pthread_join(thread, NULL);
    const double late = returned - timer.sent_ms;
    CHECK(taken == NULL, "take ends with NULL on a stop");
    CHECK(late < 1000, "take returned %.0f ms after the signal", late);
    CHECK(sieve_stop_signal() == SIGINT, "stop signal %d", sieve_stop_signal());
    const sieve_latest_counts counts = sieve_latest_get_counts(reader);
    CHECK(counts.frames_read == 1 && counts.frames_dropped == 0 && counts.partial_bytes == 300 && counts.error_number == 0,
          "counts: read %lld, dropped %lld, partial %lld, error %d", (long long)counts.frames_read,
          (long long)counts.frames_dropped, (long long)counts.partial_bytes, counts.error_number);
    sieve_latest_finish(reader);
    child_done(route, late);
}

// Opening a FIFO that no writer opens: a stop signal on the opening thread ends the wait.
static void child_open_fifo(int route) {
    char directory[] = "/tmp/check_io.XXXXXX";
    CHECK(mkdtemp(directory) != NULL, "mkdtemp");
    char path[64];
    snprintf(path, sizeof path, "%s/fifo", directory);
    CHECK(mkfifo(path, 0600) == 0, "mkfifo");
    signal_timer timer;
    pthread_t thread = start_timer(&timer, route, SIGTERM);
    const int32_t fd = sieve_open_input(path);
    const double returned = now_ms();
    pthread_join(thread, NULL);
    const double late = returned - timer.sent_ms;
    unlink(path);
    rmdir(directory);
    CHECK(fd == -EINTR, "open of a FIFO without writer, stopped: %d", fd);
    CHECK(late < 1000, "returned %.0f ms after the signal", late);
    child_done(route, late);
}

// Runs `body(route)` in a child that installs the handlers; fails if it fails or hangs (5 s).
static void run_child(const char *name, void (*body)(int), int route) {
    fflush(stdout);
    child_name = name;
    const pid_t child = fork();
    CHECK(child >= 0, "fork");
    if (child == 0) {
        sieve_install_signal_handlers();
        body(route);
    }
    int status = 0;
    const double start = now_ms();
    pid_t done;
    while ((done = waitpid(child, &status, WNOHANG)) == 0 && now_ms() - start < 5000) sleep_ms(5);
    if (done == 0) { kill(child, SIGKILL); waitpid(child, &status, 0); }
    CHECK(done == child, "%s, signal %s: hangs", name, route_names[route]);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s, signal %s: child failed (status %#x)", name,
          route_names[route], status);
}

// The handlers are one-shot: a second Ctrl-C kills as usual (should a stopped run hang).
static void test_second_signal_kills(void) {
    fflush(stdout);
    const pid_t child = fork();
    CHECK(child >= 0, "fork");
    if (child == 0) {
        sieve_install_signal_handlers();
        raise(SIGINT);
        if (sieve_stop_signal() != SIGINT) exit(2);
        raise(SIGINT);
        exit(3);  // survived
    }
    int status = 0;
    waitpid(child, &status, 0);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGINT, "the second SIGINT kills (status %#x)", status);
    printf("stop: the first SIGINT sets the stop flag, the second kills: ok\n");
}

static void test_stop_signals(void) {
    for (int route = TO_BLOCKED_THREAD; route <= TO_PROCESS; route++) run_child("read_full on a quiet pipe", child_read_full, route);
    for (int route = TO_BLOCKED_THREAD; route <= TO_PROCESS; route++) run_child("latest take, reader on a quiet pipe", child_latest, route);
    run_child("open of a FIFO with no writer", child_open_fifo, TO_BLOCKED_THREAD);
    test_second_signal_kills();
}

// ---- Arguments ----------------------------------------------------------------------------------
static void test_arguments(int argc, char **argv) {
    CHECK(sieve_argc() == argc, "sieve_argc %d, argc %d", sieve_argc(), argc);
    for (int i = 0; i < argc; i++)
        CHECK(sieve_argv(i) != NULL && strcmp(sieve_argv(i), argv[i]) == 0, "argument %d: %s, expected %s", i,
              sieve_argv(i) ? sieve_argv(i) : "(null)", argv[i]);
    CHECK(sieve_argv(argc) == NULL && sieve_argv(-1) == NULL, "out of range is NULL");
    printf("arguments: sieve_argc %d and sieve_argv match main's: ok\n", argc);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    // Run with stdin closed (as CI may), the pipes and files below would take fd 0 and confuse the
    // stdin checks: give it /dev/null.
    if (fcntl(0, F_GETFD) == -1) CHECK(open("/dev/null", O_RDONLY) == 0, "stdin from /dev/null");
    test_arguments(argc, argv);
    // Forked before this process installs its own handlers: children must not share its self-pipe.
    test_stop_signals();
    sieve_install_signal_handlers();
    test_open_input();
    test_read_full_chunks();
    test_write_all();
    test_latest_newest();
    test_latest_slow_consumer();
    test_latest_finish_blocked();
    CHECK(sieve_stop_signal() == 0, "no stop signal in the parent");
    printf("== io: all checks passed\n");
    return 0;
}
