// Reference MUL of two int8 tensors, the second the same shape or one value per channel
// (docs/FORMAT.md, MUL). The product of two zero-point-free int8 values fits int32 (|v| <= 255^2).
#include "sieve_kernels.h"

void sieve_mul_s8__scalar(const sieve_mul_params *p) {
    for (int32_t i = 0; i < p->pixels; i++) {
        const int8_t *x0 = p->input0 + (size_t)i * p->channels;
        const int8_t *x1 = p->broadcast ? p->input1 : p->input1 + (size_t)i * p->channels;
        int8_t *y = p->output + (size_t)i * p->channels;
        for (int32_t c = 0; c < p->channels; c++) {
            const int32_t product = (x0[c] - p->zero_point0) * (x1[c] - p->zero_point1);
            int32_t v = sieve_add_wrap(sieve_requantize(product, p->multiplier, p->shift), p->output_zero_point);
            v = v < p->act_min ? p->act_min : (v > p->act_max ? p->act_max : v);
            y[c] = (int8_t)v;
        }
    }
}
