// Reference depthwise convolution, NHWC int8, weights [kh][kw][out_c] (docs/FORMAT.md, DEPTHWISE_CONV).
#include "sieve_kernels.h"

void sieve_dwconv_s8__scalar(const sieve_conv_params *p) {
    const int32_t multiplier = p->out_c / p->in_c;
    const int32_t zp = p->input_zero_point;
    for (int32_t oy = 0; oy < p->out_h; oy++) {
        for (int32_t ox = 0; ox < p->out_w; ox++) {
            int8_t *out = p->output + ((size_t)oy * p->out_w + ox) * p->out_c;
            for (int32_t oc = 0; oc < p->out_c; oc++) {
                const int32_t ic = oc / multiplier;
                int32_t acc = p->bias[oc];
                for (int32_t ky = 0; ky < p->kernel_h; ky++) {
                    const int32_t iy = oy * p->stride_h - p->pad_top + ky;
                    for (int32_t kx = 0; kx < p->kernel_w; kx++) {
                        const int32_t ix = ox * p->stride_w - p->pad_left + kx;
                        const int32_t w = p->weights[((size_t)ky * p->kernel_w + kx) * p->out_c + oc];
                        const int inside = iy >= 0 && iy < p->in_h && ix >= 0 && ix < p->in_w;
                        const int32_t x = inside ? p->input[((size_t)iy * p->in_w + ix) * p->in_c + ic] : zp;
                        acc = sieve_add_wrap(acc, w * x);
                    }
                }
                int32_t v = sieve_add_wrap(sieve_requantize(acc, p->multipliers[oc], p->shifts[oc]), p->output_zero_point);
                v = v < p->act_min ? p->act_min : (v > p->act_max ? p->act_max : v);
                out[oc] = (int8_t)v;
            }
        }
    }
}
