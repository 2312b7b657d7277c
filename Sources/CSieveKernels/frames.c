// Camera frame formats: names, row bytes and frame sizes (docs/FRAMES.md, "Formats").
#include <string.h>
#include "sieve_frames.h"

static const char *const format_names[SIEVE_FORMAT_COUNT] = {"gray8", "rgb24", "bgr24", "i420", "nv12", "yuyv"};

static int valid_format(int32_t format) { return format >= 0 && format < SIEVE_FORMAT_COUNT; }

const char *sieve_format_name(int32_t format) { return valid_format(format) ? format_names[format] : "unknown"; }

int32_t sieve_format_named(const char *name) {
    static const struct { const char *name; int32_t format; } aliases[] = {
        {"gray", SIEVE_FORMAT_GRAY8}, {"yuv420p", SIEVE_FORMAT_I420}, {"yuv420", SIEVE_FORMAT_I420}, {"yuy2", SIEVE_FORMAT_YUYV}};
    if (name == NULL) return -1;
    for (int32_t f = 0; f < SIEVE_FORMAT_COUNT; f++) if (strcmp(name, format_names[f]) == 0) return f;
    for (size_t i = 0; i < sizeof(aliases) / sizeof(aliases[0]); i++) if (strcmp(name, aliases[i].name) == 0) return aliases[i].format;
    return -1;
}

int64_t sieve_format_row_bytes(int32_t format, int32_t width) {
    if (!valid_format(format) || width <= 0) return -1;
    static const int64_t bytes_per_pixel[SIEVE_FORMAT_COUNT] = {1, 3, 3, 1, 1, 2};
    return bytes_per_pixel[format] * width;
}

int64_t sieve_frame_bytes(int32_t format, int32_t width, int32_t height, int32_t stride) {
    const int64_t row = sieve_format_row_bytes(format, width);
    if (row < 0 || height <= 0 || stride < 0) return -1;
    const int subsampled = format == SIEVE_FORMAT_I420 || format == SIEVE_FORMAT_NV12;
    if (subsampled && (width % 2 != 0 || height % 2 != 0)) return -1;
    if (format == SIEVE_FORMAT_YUYV && width % 2 != 0) return -1;
    const int64_t pitch = stride == 0 ? row : stride;
    if (pitch < row || (format == SIEVE_FORMAT_I420 && pitch % 2 != 0)) return -1;
    int64_t bytes = pitch * height;                                      // the first (or only) plane
    if (format == SIEVE_FORMAT_I420) bytes += 2 * (pitch / 2) * (height / 2); // U, then V
    if (format == SIEVE_FORMAT_NV12) bytes += pitch * (height / 2);           // interleaved U, V
    return bytes >= ((int64_t)1 << 31) ? -2 : bytes;
}
