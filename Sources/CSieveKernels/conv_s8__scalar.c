// Reference grouped convolution, NHWC int8 (docs/FORMAT.md, CONV). The specification, not fast by design.
#include "sieve_kernels.h"

static inline int8_t clamp_to_int8(int32_t value, int32_t lo, int32_t hi) {
    return (int8_t)(value < lo ? lo : (value > hi ? hi : value));
}

void sieve_conv_s8__scalar(const sieve_conv_params *p) {
    const int32_t cg = p->in_c / p->groups;
    const int32_t oc_per_group = p->out_c / p->groups;
    const int32_t zp = p->input_zero_point;
    for (int32_t oy = 0; oy < p->out_h; oy++) {
        for (int32_t ox = 0; ox < p->out_w; ox++) {
            int8_t *out = p->output + ((size_t)oy * p->out_w + ox) * p->out_c;
            for (int32_t oc = 0; oc < p->out_c; oc++) {
                const int32_t g = oc / oc_per_group;
                int32_t acc = p->bias[oc];
                for (int32_t ky = 0; ky < p->kernel_h; ky++) {
                    const int32_t iy = oy * p->stride_h - p->pad_top + ky;
                    for (int32_t kx = 0; kx < p->kernel_w; kx++) {
                        const int32_t ix = ox * p->stride_w - p->pad_left + kx;
                        const int8_t *w = p->weights + (((size_t)oc * p->kernel_h + ky) * p->kernel_w + kx) * cg;
                        if (iy < 0 || iy >= p->in_h || ix < 0 || ix >= p->in_w) {
                            for (int32_t ci = 0; ci < cg; ci++) acc = sieve_add_wrap(acc, (int32_t)w[ci] * zp);
                            continue;
                        }
                        const int8_t *x = p->input + ((size_t)iy * p->in_w + ix) * p->in_c + (size_t)g * cg;
                        for (int32_t ci = 0; ci < cg; ci++) acc = sieve_add_wrap(acc, (int32_t)w[ci] * (int32_t)x[ci]);
                    }
                }
                const int32_t scaled = sieve_requantize(acc, p->multipliers[oc], p->shifts[oc]);
                out[oc] = clamp_to_int8(sieve_add_wrap(scaled, p->output_zero_point), p->act_min, p->act_max);
            }
        }
    }
}
