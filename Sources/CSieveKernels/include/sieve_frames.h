// Camera frames: their formats and sizes, and the fixed-point preprocessing that turns one into
// the model's int8 input (crop, resize, colour, table). docs/FRAMES.md specifies the arithmetic.
// Nothing here allocates: scratch is sized once by the caller.
#ifndef SIEVE_FRAMES_H
#define SIEVE_FRAMES_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum {
    SIEVE_FORMAT_GRAY8 = 0,  // 1 byte per pixel
    SIEVE_FORMAT_RGB24 = 1,  // R, G, B
    SIEVE_FORMAT_BGR24 = 2,  // B, G, R
    SIEVE_FORMAT_I420 = 3,   // planar Y, then U and V at half width and height (yuv420p)
    SIEVE_FORMAT_NV12 = 4,   // planar Y, then interleaved U, V at half width and height
    SIEVE_FORMAT_YUYV = 5,   // packed 4:2:2: Y0 U Y1 V per two pixels (YUY2)
    SIEVE_FORMAT_COUNT = 6
};

const char *sieve_format_name(int32_t format);  // "gray8", "rgb24", "bgr24", "i420", "nv12", "yuyv"
int32_t sieve_format_named(const char *name);   // -1 if none (also accepts "yuv420p", "yuv420", "gray", "yuy2")

// Bytes in one row of the first plane without padding (width * bytes per pixel; 2 * width for YUYV).
int64_t sieve_format_row_bytes(int32_t format, int32_t width);
// Bytes of one frame, `stride` being the first plane's row pitch (0: no padding). Chroma planes'
// pitch is stride / 2 for I420 and stride for NV12. Returns -1 when the combination cannot work:
// non-positive size, odd width or height for I420/NV12, odd width for YUYV, stride below the row
// bytes (or odd for I420); -2 for a frame of 2^31 bytes or more (its size must fit a 32-bit
// board's address arithmetic: the largest frame is 2^31 - 1 bytes).
int64_t sieve_frame_bytes(int32_t format, int32_t width, int32_t height, int32_t stride);

typedef struct {
    int32_t format, width, height, stride;  // the frame (stride 0: no padding)
    int32_t crop_x, crop_y, crop_w, crop_h; // inside the frame (the caller checks)
    int32_t out_w, out_h, channels;         // the model input; channels 1 (luma) or 3 (R, G, B)
    int32_t full_range;                     // YUV formats: 1 full range, 0 limited (16-235 luma, 16-240 chroma)
    const int8_t *table;                    // channels x 256: channel value -> int8 model input
} sieve_frame_spec;

// Scratch for sieve_preprocess (the converted crop and the resize weights), 64-byte aligned.
size_t sieve_preprocess_scratch_size(const sieve_frame_spec *spec);
// Precomputes the resize weights and colour tables into scratch; once, before any frame.
void sieve_preprocess_init(const sieve_frame_spec *spec, void *scratch);
// One frame -> the model input [out_h][out_w][channels], int8. Allocates nothing.
void sieve_preprocess(const sieve_frame_spec *spec, void *scratch, const uint8_t *frame, int8_t *input);

// Which of sieve_preprocess's equivalent implementations a spec takes (for tests and benchmarks):
// the general row path, the one-channel luma shrink, or R, G, B of a 4:2:0 frame (docs/FRAMES.md).
enum { SIEVE_PREPROCESS_GENERAL = 0, SIEVE_PREPROCESS_LUMA = 1, SIEVE_PREPROCESS_RGB420 = 2 };
int32_t sieve_preprocess_path(const sieve_frame_spec *spec);

#ifdef __cplusplus
}
#endif
#endif
