// JPEG through libjpeg's classic API (its errors longjmp back here instead of exit()ing) and PNG
// through libpng's simplified API (which reports errors in png_image.message).
#include "sieve_image_decode.h"

#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>

// Larger images are refused before anything is allocated: 2^28 pixels (16384 x 16384).
#define MAX_PIXELS ((int64_t)1 << 28)

typedef struct {
    struct jpeg_error_mgr base;
    jmp_buf jump;
    char *error;
    size_t error_size;
} jpeg_failure;

static void jpeg_fail(j_common_ptr info) {
    jpeg_failure *f = (jpeg_failure *)info->err;
    char message[JMSG_LENGTH_MAX];
    f->base.format_message(info, message);
    snprintf(f->error, f->error_size, "JPEG: %s", message);
    longjmp(f->jump, 1);
}

static void jpeg_quiet(j_common_ptr info, int level) { (void)info; (void)level; }  // no warnings on stderr

static int decode_jpeg(const uint8_t *data, size_t size, uint8_t **pixels, int32_t *width, int32_t *height,
                       int32_t *channels, char *error, size_t error_size) {
    struct jpeg_decompress_struct info;
    jpeg_failure failure;
    uint8_t *volatile out = NULL;
    info.err = jpeg_std_error(&failure.base);
    failure.base.error_exit = jpeg_fail;
    failure.base.emit_message = jpeg_quiet;
    failure.error = error;
    failure.error_size = error_size;
    if (setjmp(failure.jump)) {
        jpeg_destroy_decompress(&info);
        free(out);
        return -1;
    }
    jpeg_create_decompress(&info);
    jpeg_mem_src(&info, data, (unsigned long)size);
    jpeg_read_header(&info, TRUE);
    info.out_color_space = info.num_components == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_start_decompress(&info);
    const int32_t w = (int32_t)info.output_width, h = (int32_t)info.output_height, c = info.output_components;
    if ((int64_t)w * h > MAX_PIXELS) {
        snprintf(error, error_size, "JPEG: %dx%d is more than 2^28 pixels", w, h);
        jpeg_destroy_decompress(&info);
        return -1;
    }
    out = malloc((size_t)w * h * c);
    if (!out) {
        snprintf(error, error_size, "out of memory for %dx%d pixels", w, h);
        jpeg_destroy_decompress(&info);
        return -1;
    }
    while (info.output_scanline < info.output_height) {
        JSAMPROW row = out + (size_t)info.output_scanline * w * c;
        jpeg_read_scanlines(&info, &row, 1);
    }
    jpeg_finish_decompress(&info);
    jpeg_destroy_decompress(&info);
    *pixels = out;
    *width = w; *height = h; *channels = c;
    return 0;
}

static int decode_png(const uint8_t *data, size_t size, uint8_t **pixels, int32_t *width, int32_t *height,
                      int32_t *channels, char *error, size_t error_size) {
    png_image image;
    memset(&image, 0, sizeof image);
    image.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_memory(&image, data, size)) {
        snprintf(error, error_size, "PNG: %s", image.message);
        return -1;
    }
    const int gray = (image.format & PNG_FORMAT_FLAG_COLOR) == 0;
    image.format = gray ? PNG_FORMAT_GRAY : PNG_FORMAT_RGB;
    if ((int64_t)image.width * image.height > MAX_PIXELS) {
        snprintf(error, error_size, "PNG: %ux%u is more than 2^28 pixels", image.width, image.height);
        png_image_free(&image);
        return -1;
    }
    uint8_t *out = calloc(PNG_IMAGE_SIZE(image), 1);  // zeros: alpha composites onto black
    if (!out) {
        snprintf(error, error_size, "out of memory for %ux%u pixels", image.width, image.height);
        png_image_free(&image);
        return -1;
    }
    if (!png_image_finish_read(&image, NULL, out, 0, NULL)) {
        snprintf(error, error_size, "PNG: %s", image.message);
        png_image_free(&image);
        free(out);
        return -1;
    }
    *pixels = out;
    *width = (int32_t)image.width; *height = (int32_t)image.height; *channels = gray ? 1 : 3;
    return 0;
}

int sieve_decode_image(const uint8_t *data, size_t size, uint8_t **pixels, int32_t *width, int32_t *height,
                       int32_t *channels, char *error, size_t error_size) {
    if (size >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF)
        return decode_jpeg(data, size, pixels, width, height, channels, error, error_size);
    if (size >= 8 && memcmp(data, "\x89PNG\r\n\x1a\n", 8) == 0)
        return decode_png(data, size, pixels, width, height, channels, error, error_size);
    snprintf(error, error_size, "neither a JPEG nor a PNG file (by its first bytes)");
    return -1;
}
