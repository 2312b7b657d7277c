// Reference pooling (docs/FORMAT.md, MAX_POOL, AVERAGE_POOL, GLOBAL_AVERAGE_POOL).
// Pooling keeps the input's quantisation, so it works on raw int8 values. The channel loop is
// innermost and branch-free so the compiler vectorises it on every target.
#include "sieve_kernels.h"

// Rounds half away from zero with C's truncating division.
static inline int32_t rounded_mean(int32_t sum, int32_t count) {
    return sum >= 0 ? (sum + count / 2) / count : (sum - count / 2) / count;
}

// Channels summed per pass: the int32 sums stay on the stack.
#define CHANNEL_CHUNK 64

void sieve_maxpool_s8__scalar(const sieve_pool_params *p) {
    const int32_t channels = p->channels;
    for (int32_t oy = 0; oy < p->out_h; oy++) {
        for (int32_t ox = 0; ox < p->out_w; ox++) {
            int8_t *out = p->output + ((size_t)oy * p->out_w + ox) * channels;
            for (int32_t c = 0; c < channels; c++) out[c] = -128;
            for (int32_t ky = 0; ky < p->kernel_h; ky++) {
                const int32_t iy = oy * p->stride_h - p->pad_top + ky;
                if (iy < 0 || iy >= p->in_h) continue;
                for (int32_t kx = 0; kx < p->kernel_w; kx++) {
                    const int32_t ix = ox * p->stride_w - p->pad_left + kx;
                    if (ix < 0 || ix >= p->in_w) continue;
                    const int8_t *in = p->input + ((size_t)iy * p->in_w + ix) * channels;
                    for (int32_t c = 0; c < channels; c++) out[c] = in[c] > out[c] ? in[c] : out[c];
                }
            }
        }
    }
}

void sieve_avgpool_s8__scalar(const sieve_pool_params *p) {
    for (int32_t oy = 0; oy < p->out_h; oy++) {
        for (int32_t ox = 0; ox < p->out_w; ox++) {
            int8_t *out = p->output + ((size_t)oy * p->out_w + ox) * p->channels;
            for (int32_t c0 = 0; c0 < p->channels; c0 += CHANNEL_CHUNK) {
                const int32_t n = p->channels - c0 < CHANNEL_CHUNK ? p->channels - c0 : CHANNEL_CHUNK;
                int32_t sums[CHANNEL_CHUNK] = {0};
                int32_t count = 0;
                for (int32_t ky = 0; ky < p->kernel_h; ky++) {
                    const int32_t iy = oy * p->stride_h - p->pad_top + ky;
                    if (iy < 0 || iy >= p->in_h) continue;
                    for (int32_t kx = 0; kx < p->kernel_w; kx++) {
                        const int32_t ix = ox * p->stride_w - p->pad_left + kx;
                        if (ix < 0 || ix >= p->in_w) continue;
                        const int8_t *in = p->input + ((size_t)iy * p->in_w + ix) * p->channels + c0;
                        for (int32_t c = 0; c < n; c++) sums[c] += in[c];
                        count++;
                    }
                }
                // Load guarantees padding < kernel, so every window holds at least one position.
                for (int32_t c = 0; c < n; c++) out[c0 + c] = (int8_t)rounded_mean(sums[c], count);
            }
        }
    }
}

void sieve_global_avgpool_s8__scalar(const int8_t *input, int8_t *output, int32_t pixels, int32_t channels) {
    for (int32_t c0 = 0; c0 < channels; c0 += CHANNEL_CHUNK) {
        const int32_t n = channels - c0 < CHANNEL_CHUNK ? channels - c0 : CHANNEL_CHUNK;
        int32_t sums[CHANNEL_CHUNK] = {0};
        for (int32_t i = 0; i < pixels; i++) {
            const int8_t *in = input + (size_t)i * channels + c0;
            for (int32_t c = 0; c < n; c++) sums[c] += in[c];
        }
        for (int32_t c = 0; c < n; c++) output[c0 + c] = (int8_t)rounded_mean(sums[c], pixels);
    }
}
