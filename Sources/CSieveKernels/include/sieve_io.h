// Frame streams for sieve-run: reading whole frames from stdin, a file or a FIFO; the latest-frame
// reader thread; stop signals; writing lines to a pipe that may close; the process arguments.
#ifndef SIEVE_IO_H
#define SIEVE_IO_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// Opens a frame source for reading: NULL or "-" is stdin. Returns the fd, or -errno.
int32_t sieve_open_input(const char *path);
void sieve_close_input(int32_t fd);

// Reads until `count` bytes, end of file, an error, or a stop signal. Returns the bytes read
// (fewer than count at end of file or on stop), or -errno if nothing could be read.
int64_t sieve_read_full(int32_t fd, uint8_t *buffer, int64_t count);

// Opens /dev/null (read-only) on each of fds 0, 1 and 2 that is closed, so that no file or pipe
// opened later takes their numbers (a closed stdin must not become the stop pipe). Returns a bit
// mask of the fds that were closed (1: stdin, 2: stdout, 4: stderr). Call it first.
int32_t sieve_open_standard_fds(void);

// SIGINT and SIGTERM set the stop flag and interrupt blocking reads; SIGPIPE is ignored, so a
// closed stdout shows up as EPIPE from sieve_write_all.
void sieve_install_signal_handlers(void);
// The signal that asked to stop (SIGINT, SIGTERM), or 0.
int32_t sieve_stop_signal(void);

// Writes every byte; 0, or -errno (-EPIPE when the reader has gone).
// EPIPE, for Swift code that cannot import errno.h.
int32_t sieve_errno_pipe(void);
int32_t sieve_write_all(int32_t fd, const void *data, size_t count);

// Writes `values` to `out` as "v0,v1,...", each with 9 significant digits (which read back as the
// same float32), "null" for an infinity or NaN (JSON has no such numbers). Returns the bytes
// written (whole values only, one byte of `size` kept for snprintf's NUL).
int32_t sieve_format_floats(char *out, size_t size, const float *values, int32_t count);

// The latest-frame reader: a thread reads whole frames into a fixed ring of `buffers` (>= 3)
// frame buffers allocated at start; the consumer always gets the newest complete frame, and every
// complete frame the consumer never took is counted as dropped. Memory never grows.
typedef struct sieve_latest sieve_latest;
typedef struct {
    int64_t frames_read;     // complete frames read
    int64_t frames_dropped;  // complete frames replaced by a newer one before being taken
    int64_t partial_bytes;   // bytes of a trailing partial frame (0: none)
    int32_t error_number;    // a read error that ended the stream (0: none)
} sieve_latest_counts;
// NULL (and *error_number set) if the buffers or the thread cannot be had.
sieve_latest *sieve_latest_start(int32_t fd, int64_t frame_bytes, int32_t buffers, int32_t *error_number);
// Waits for a frame newer than the last one taken and returns its bytes (valid until the next
// take) and its index in the stream (0-based, counting every complete frame read); NULL once the
// stream has ended (end of file, error or stop signal) and every frame was taken or dropped.
const uint8_t *sieve_latest_take(sieve_latest *reader, int64_t *frame_index);
sieve_latest_counts sieve_latest_get_counts(sieve_latest *reader);
// Stops the thread (if still reading) and frees the buffers.
void sieve_latest_finish(sieve_latest *reader);

// The process's arguments, captured before main (glibc passes them to constructors), so that
// Embedded Swift, which has no CommandLine, can read them.
int32_t sieve_argc(void);
const char *sieve_argv(int32_t index);

#ifdef __cplusplus
}
#endif
#endif
