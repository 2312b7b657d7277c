// Reference pooling (docs/FORMAT.md, MAX_POOL, AVERAGE_POOL, GLOBAL_AVERAGE_POOL).
// Pooling keeps the input's quantisation, so it works on raw int8 values.
#include "sieve_kernels.h"

// Rounds half away from zero with C's truncating division.
static inline int32_t rounded_mean(int32_t sum, int32_t count) {
    return sum >= 0 ? (sum + count / 2) / count : (sum - count / 2) / count;
}

void sieve_maxpool_s8__scalar(const sieve_pool_params *p) {
    for (int32_t oy = 0; oy < p->out_h; oy++) {
        for (int32_t ox = 0; ox < p->out_w; ox++) {
            for (int32_t c = 0; c < p->channels; c++) {
                int32_t best = -128;
                for (int32_t ky = 0; ky < p->kernel_h; ky++) {
                    const int32_t iy = oy * p->stride_h - p->pad_top + ky;
                    if (iy < 0 || iy >= p->in_h) continue;
                    for (int32_t kx = 0; kx < p->kernel_w; kx++) {
                        const int32_t ix = ox * p->stride_w - p->pad_left + kx;
                        if (ix < 0 || ix >= p->in_w) continue;
                        const int32_t v = p->input[((size_t)iy * p->in_w + ix) * p->channels + c];
                        if (v > best) best = v;
                    }
                }
                p->output[((size_t)oy * p->out_w + ox) * p->channels + c] = (int8_t)best;
            }
        }
    }
}

void sieve_avgpool_s8__scalar(const sieve_pool_params *p) {
    for (int32_t oy = 0; oy < p->out_h; oy++) {
        for (int32_t ox = 0; ox < p->out_w; ox++) {
            for (int32_t c = 0; c < p->channels; c++) {
                int32_t sum = 0, count = 0;
                for (int32_t ky = 0; ky < p->kernel_h; ky++) {
                    const int32_t iy = oy * p->stride_h - p->pad_top + ky;
                    if (iy < 0 || iy >= p->in_h) continue;
                    for (int32_t kx = 0; kx < p->kernel_w; kx++) {
                        const int32_t ix = ox * p->stride_w - p->pad_left + kx;
                        if (ix < 0 || ix >= p->in_w) continue;
                        sum += p->input[((size_t)iy * p->in_w + ix) * p->channels + c];
                        count++;
                    }
                }
                // Load guarantees padding < kernel, so every window holds at least one position.
                p->output[((size_t)oy * p->out_w + ox) * p->channels + c] = (int8_t)rounded_mean(sum, count);
            }
        }
    }
}

void sieve_global_avgpool_s8__scalar(const int8_t *input, int8_t *output, int32_t pixels, int32_t channels) {
    for (int32_t c = 0; c < channels; c++) {
        int32_t sum = 0;
        for (int32_t i = 0; i < pixels; i++) sum += input[(size_t)i * channels + c];
        output[c] = (int8_t)rounded_mean(sum, pixels);
    }
}
