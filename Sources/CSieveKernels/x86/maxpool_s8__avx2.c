// Max pool on AVX2: a byte max over the window, 32 channels at a time. The last channels (fewer than
// 32) go 16 at a time, the final 16 (or 8) overlapping the block before: max is idempotent, so the
// overlap writes the same bytes, and nothing is read or written past a pixel's channels. Fewer than
// 8 channels in all go one by one. (ShuffleNet's 24-channel pool: 8 of 24 channels were scalar.)
// When an input row fits in ROW_BYTES the pool is separable, as on AVX-512: each output row first
// takes the max of its window's input rows over the whole row, 32 bytes a step, into a buffer on
// the stack, then each output pixel the max of its window's columns there, in the same blocks.
// ShuffleNetV2's 3x3/2 pool of 112x112x24 on an Ice Lake Xeon: 105 -> 51 us.
#if defined(__x86_64__)
#include <string.h>
#include "sieve_isa.h"
#include "sieve_target.h"

// Before any target region: gcc binds each intrinsic to the target in force where it is declared.
#include <immintrin.h>

SIEVE_TARGET_BEGIN("avx2")
#define ROW_BYTES 8192

// The max over columns [w.x0, w.x1) of the buffer, channels [c, c + 32) (or 16, or 8).
static inline __m256i columns_max32(const int8_t *columns, sieve_window w, int32_t channels, int32_t c) {
    __m256i best = _mm256_loadu_si256((const __m256i *)(columns + w.x0 * channels + c));
    for (int32_t x = w.x0 + 1; x < w.x1; x++) best = _mm256_max_epi8(best, _mm256_loadu_si256((const __m256i *)(columns + x * channels + c)));
    return best;
}

static inline __m128i columns_max16(const int8_t *columns, sieve_window w, int32_t channels, int32_t c) {
    __m128i best = _mm_loadu_si128((const __m128i *)(columns + w.x0 * channels + c));
    for (int32_t x = w.x0 + 1; x < w.x1; x++) best = _mm_max_epi8(best, _mm_loadu_si128((const __m128i *)(columns + x * channels + c)));
    return best;
}

static void maxpool_separable(const sieve_pool_params *p) {
    const int32_t channels = p->channels, row = p->in_w * p->channels;
    _Alignas(32) int8_t columns[ROW_BYTES + 32];  // + 32: a pixel's block may load past the row
    for (int32_t oy = 0; oy < p->out_h; oy++) {
        const sieve_window rows = sieve_pool_window(p, oy, 0);
        const int8_t *top = p->input + (size_t)rows.y0 * row;
        for (int32_t i = 0; i < row; i += 32) {
            if (i + 32 > row) {
                if (row < 32) {  // a row shorter than a step: byte by byte
                    for (int32_t j = 0; j < row; j++) {
                        int8_t best = top[j];
                        for (int32_t y = rows.y0 + 1; y < rows.y1; y++) best = p->input[(size_t)y * row + j] > best ? p->input[(size_t)y * row + j] : best;
                        columns[j] = best;
                    }
                    break;
                }
                i = row - 32;  // the last step overlaps the one before: the same bytes again
            }
            __m256i best = _mm256_loadu_si256((const __m256i *)(top + i));
            for (int32_t y = rows.y0 + 1; y < rows.y1; y++)
                best = _mm256_max_epi8(best, _mm256_loadu_si256((const __m256i *)(p->input + (size_t)y * row + i)));
            _mm256_storeu_si256((__m256i *)(columns + i), best);
        }
        for (int32_t ox = 0; ox < p->out_w; ox++) {
            const sieve_window w = sieve_pool_window(p, oy, ox);
            int8_t *out = p->output + ((size_t)oy * p->out_w + ox) * channels;
            if (channels >= 32) {
                for (int32_t c = 0;; c += 32) {
                    if (c + 32 > channels) c = channels - 32;  // the overlapping last block
                    _mm256_storeu_si256((__m256i *)(out + c), columns_max32(columns, w, channels, c));
                    if (c + 32 == channels) break;
                }
            } else if (channels >= 8) {
                const int32_t width = channels >= 16 ? 16 : 8;
                for (int32_t c = 0;; c += width) {
                    if (c + width > channels) c = channels - width;
                    const __m128i best = columns_max16(columns, w, channels, c);
                    if (width == 16) _mm_storeu_si128((__m128i *)(out + c), best); else _mm_storel_epi64((__m128i *)(out + c), best);
                    if (c + width == channels) break;
                }
            } else {
                for (int32_t c = 0; c < channels; c++) {
                    int8_t best = columns[w.x0 * channels + c];
                    for (int32_t x = w.x0 + 1; x < w.x1; x++) best = columns[x * channels + c] > best ? columns[x * channels + c] : best;
                    out[c] = best;
                }
            }
        }
    }
}

void sieve_maxpool_s8__avx2(const sieve_pool_params *p) {
    if ((int64_t)p->in_w * p->channels <= ROW_BYTES) {
        maxpool_separable(p);
        return;
    }
    for (int32_t oy = 0; oy < p->out_h; oy++) {
        // The window's rows and columns inside the input (padding never wins a max: it is skipped).
        const int32_t y0 = oy * p->stride_h - p->pad_top;
        const int32_t ky0 = y0 < 0 ? -y0 : 0, ky1 = y0 + p->kernel_h > p->in_h ? p->in_h - y0 : p->kernel_h;
        for (int32_t ox = 0; ox < p->out_w; ox++) {
            const int32_t x0 = ox * p->stride_w - p->pad_left;
            const int32_t kx0 = x0 < 0 ? -x0 : 0, kx1 = x0 + p->kernel_w > p->in_w ? p->in_w - x0 : p->kernel_w;
            int8_t *out = p->output + ((size_t)oy * p->out_w + ox) * p->channels;
            // The window's first input pixel inside the input, and its rows and columns there.
            const int8_t *corner = p->input + ((size_t)(y0 + ky0) * p->in_w + (x0 + kx0)) * p->channels;
            const int32_t rows = ky1 - ky0, cols = kx1 - kx0;
            int32_t c = 0;
            for (; c + 32 <= p->channels; c += 32) {
                __m256i best = _mm256_set1_epi8(-128);
                for (int32_t ky = 0; ky < rows; ky++) {
                    for (int32_t kx = 0; kx < cols; kx++) {
                        const int8_t *in = corner + ((ptrdiff_t)ky * p->in_w + kx) * p->channels + c;
                        best = _mm256_max_epi8(best, _mm256_loadu_si256((const __m256i *)in));
                    }
                }
                _mm256_storeu_si256((__m256i *)(out + c), best);
            }
            const int32_t channels = p->channels, width = channels >= 16 ? 16 : 8;
            if (c < channels && channels >= 8) {
                for (;; c += width) {
                    if (c + width > channels) c = channels - width;  // the overlapping last block
                    __m128i best = _mm_set1_epi8(-128);
                    for (int32_t ky = 0; ky < rows; ky++) {
                        for (int32_t kx = 0; kx < cols; kx++) {
                            const __m128i *in = (const __m128i *)(corner + ((ptrdiff_t)ky * p->in_w + kx) * channels + c);
                            best = _mm_max_epi8(best, width == 16 ? _mm_loadu_si128(in) : _mm_loadl_epi64(in));
                        }
                    }
                    if (width == 16) _mm_storeu_si128((__m128i *)(out + c), best); else _mm_storel_epi64((__m128i *)(out + c), best);
                    if (c + width == channels) break;
                }
                c = channels;
            }
            for (; c < p->channels; c++) {
                int8_t best = -128;
                for (int32_t ky = 0; ky < rows; ky++) {
                    for (int32_t kx = 0; kx < cols; kx++) {
                        const int8_t v = corner[((ptrdiff_t)ky * p->in_w + kx) * p->channels + c];
                        if (v > best) best = v;
                    }
                }
                out[c] = best;
            }
        }
    }
}
SIEVE_TARGET_END
#endif
