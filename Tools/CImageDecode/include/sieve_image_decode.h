// JPEG (libjpeg-turbo) and PNG (libpng) files to 8-bit pixels, for calibrating on a folder of
// images. Host only: the quantiser links it, the board never does.
#ifndef SIEVE_IMAGE_DECODE_H
#define SIEVE_IMAGE_DECODE_H

#include <stddef.h>
#include <stdint.h>

// Decodes a whole JPEG or PNG file held in memory to rows of `*channels` bytes per pixel: 1 (gray)
// for grayscale files, else 3 (R, G, B). PNG alpha is composited onto black, 16-bit samples are
// reduced to 8 bits, palettes are expanded (libpng's simplified API). On success returns 0 and
// sets *pixels (free() it), *width, *height, *channels. On failure returns -1 with the reason in
// `error` (NUL-terminated, at most error_size bytes) and allocates nothing.
int sieve_decode_image(const uint8_t *data, size_t size, uint8_t **pixels, int32_t *width, int32_t *height,
                       int32_t *channels, char *error, size_t error_size);

#endif
