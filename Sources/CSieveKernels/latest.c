// The latest-frame reader of sieve_io.h: one thread reads whole frames into a fixed ring of
// buffers and publishes each as the newest; the consumer takes the newest and holds it until its
// next take. Three buffers always suffice: one held by the consumer, one newest, one being filled.
//
// Wake-ups: the reader blocks in poll() on the input, the stop self-pipe (io.c) and its own quit
// pipe, so a stop signal (handled on whatever thread) or sieve_latest_finish wakes it at once; it
// then marks the stream ended and broadcasts, which wakes a consumer waiting in take. Only the
// reader ends the stream, so the counts are final once take has returned NULL.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>
#include "sieve_io.h"
#include "sieve_os.h"

// Defined in io.c: sieve_read_full that also returns when `quit_fd` becomes readable.
int64_t sieve_io_read_until(int32_t fd, uint8_t *buffer, int64_t count, int quit_fd, int32_t *error_number);

#define BUFFER_ALIGNMENT 64
#define MAX_BUFFERS 64

struct sieve_latest {
    int32_t fd;
    int64_t frame_bytes;
    size_t stride;           // frame_bytes rounded up to the alignment
    int32_t buffers;
    uint8_t *memory;         // buffers x stride, allocated once
    int quit[2];             // sieve_latest_finish writes to quit[1] to wake the reader
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t changed;  // a frame was published or the stream ended
    // Under lock:
    int32_t newest;          // buffer of the newest complete frame not yet taken, or -1
    int64_t newest_index;
    int32_t held;            // buffer the consumer holds until its next take, or -1
    bool ended;              // the reader has stopped: end of file, error, stop or quit
    sieve_latest_counts counts;
};

static uint8_t *buffer_at(sieve_latest *reader, int32_t index) {
    return reader->memory + (size_t)index * reader->stride;
}

// A buffer neither held nor newest (under lock); the one being filled was just published.
static int32_t free_buffer(const sieve_latest *reader, int32_t after) {
    for (int32_t step = 1; step <= reader->buffers; step++) {
        const int32_t index = (after + step) % reader->buffers;
        if (index != reader->held && index != reader->newest) return index;
    }
    return -1;  // unreachable with three buffers or more
}

static void *reader_main(void *argument) {
    sieve_latest *reader = (sieve_latest *)argument;
    int32_t filling = 0;
    for (;;) {
        int32_t error_number;
        const int64_t got = sieve_io_read_until(reader->fd, buffer_at(reader, filling), reader->frame_bytes,
                                                reader->quit[0], &error_number);
        pthread_mutex_lock(&reader->lock);
        if (got == reader->frame_bytes) {
            if (reader->newest >= 0) reader->counts.frames_dropped++;  // never taken: its buffer is free again
            reader->newest = filling;
            reader->newest_index = reader->counts.frames_read++;
            filling = free_buffer(reader, filling);
            pthread_cond_signal(&reader->changed);
            pthread_mutex_unlock(&reader->lock);
            continue;
        }
        reader->counts.partial_bytes = got;
        reader->counts.error_number = error_number;
        reader->ended = true;
        pthread_cond_broadcast(&reader->changed);
        pthread_mutex_unlock(&reader->lock);
        return NULL;
    }
}

const uint8_t *sieve_latest_take(sieve_latest *reader, int64_t *frame_index) {
    pthread_mutex_lock(&reader->lock);
    reader->held = -1;  // the previous frame's bytes are no longer needed
    while (reader->newest < 0 && !reader->ended) pthread_cond_wait(&reader->changed, &reader->lock);
    const uint8_t *frame = NULL;
    int64_t index = -1;
    if (reader->newest >= 0) {
        reader->held = reader->newest;
        reader->newest = -1;
        index = reader->newest_index;
        frame = buffer_at(reader, reader->held);
    }
    pthread_mutex_unlock(&reader->lock);
    if (frame_index != NULL) *frame_index = index;
    return frame;
}

sieve_latest_counts sieve_latest_get_counts(sieve_latest *reader) {
    pthread_mutex_lock(&reader->lock);
    const sieve_latest_counts counts = reader->counts;
    pthread_mutex_unlock(&reader->lock);
    return counts;
}

// Frees what sieve_latest_start got before it failed (or everything, once the thread is joined).
static void release(sieve_latest *reader) {
    if (reader->quit[0] >= 0) close(reader->quit[0]);
    if (reader->quit[1] >= 0) close(reader->quit[1]);
    sieve_free_aligned(reader->memory);
    free(reader);
}

// Starts the thread with SIGINT and SIGTERM blocked, so the kernel delivers them to a thread that
// wants them (the main thread); the reader learns of a stop from the self-pipe instead.
static int start_thread(sieve_latest *reader) {
    sigset_t stops, previous;
    sigemptyset(&stops);
    sigaddset(&stops, SIGINT);
    sigaddset(&stops, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stops, &previous);
    const int result = pthread_create(&reader->thread, NULL, reader_main, reader);
    pthread_sigmask(SIG_SETMASK, &previous, NULL);
    return result;
}

sieve_latest *sieve_latest_start(int32_t fd, int64_t frame_bytes, int32_t buffers, int32_t *error_number) {
    int32_t ignored;
    if (error_number == NULL) error_number = &ignored;
    *error_number = EINVAL;
    if (fd < 0 || frame_bytes <= 0 || buffers < 3 || buffers > MAX_BUFFERS) return NULL;
    const uint64_t stride = ((uint64_t)frame_bytes + BUFFER_ALIGNMENT - 1) / BUFFER_ALIGNMENT * BUFFER_ALIGNMENT;
    *error_number = ENOMEM;
    if (stride > SIZE_MAX / (uint64_t)buffers) return NULL;
    sieve_latest *reader = calloc(1, sizeof *reader);
    if (reader == NULL) return NULL;
    reader->quit[0] = reader->quit[1] = -1;
    reader->fd = fd;
    reader->frame_bytes = frame_bytes;
    reader->stride = (size_t)stride;
    reader->buffers = buffers;
    reader->newest = reader->held = -1;
    // Zeroed memory: every page is touched now rather than faulted in while frames stream.
    reader->memory = sieve_alloc_aligned(reader->stride * (size_t)buffers, BUFFER_ALIGNMENT);
    if (reader->memory == NULL) { release(reader); return NULL; }
    if (pipe2(reader->quit, O_CLOEXEC) != 0) { *error_number = errno; release(reader); return NULL; }
    pthread_mutex_init(&reader->lock, NULL);
    pthread_cond_init(&reader->changed, NULL);
    const int result = start_thread(reader);
    if (result != 0) {
        pthread_cond_destroy(&reader->changed);
        pthread_mutex_destroy(&reader->lock);
        *error_number = result;
        release(reader);
        return NULL;
    }
    *error_number = 0;
    return reader;
}

void sieve_latest_finish(sieve_latest *reader) {
    if (reader == NULL) return;
    const char byte = 1;
    (void)!write(reader->quit[1], &byte, 1);  // wakes the reader's poll; harmless if it has ended
    pthread_join(reader->thread, NULL);
    pthread_cond_destroy(&reader->changed);
    pthread_mutex_destroy(&reader->lock);
    release(reader);
}
