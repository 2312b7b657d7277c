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
            const sieve_window w = sieve_pool_window(p, oy, ox);
            for (int32_t c = 0; c < channels; c++) out[c] = -128;
            for (int32_t iy = w.y0; iy < w.y1; iy++) {
                for (int32_t ix = w.x0; ix < w.x1; ix++) {
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
            const sieve_window w = sieve_pool_window(p, oy, ox);
            const int32_t count = (w.y1 - w.y0) * (w.x1 - w.x0);
            for (int32_t c0 = 0; c0 < p->channels; c0 += CHANNEL_CHUNK) {
                const int32_t n = p->channels - c0 < CHANNEL_CHUNK ? p->channels - c0 : CHANNEL_CHUNK;
                int32_t sums[CHANNEL_CHUNK] = {0};
                for (int32_t iy = w.y0; iy < w.y1; iy++) {
                    for (int32_t ix = w.x0; ix < w.x1; ix++) {
                        const int8_t *in = p->input + ((size_t)iy * p->in_w + ix) * p->channels + c0;
                        for (int32_t c = 0; c < n; c++) sums[c] += in[c];
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

void sieve_channel_sums_s8__scalar(const int8_t *input, int32_t *sums, int32_t pixels, int32_t channels) {
    for (int32_t c = 0; c < channels; c++) sums[c] = 0;
    for (int32_t i = 0; i < pixels; i++) {
        const int8_t *in = input + (size_t)i * channels;
        for (int32_t c = 0; c < channels; c++) sums[c] += in[c];
    }
}
