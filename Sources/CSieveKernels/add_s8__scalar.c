// Reference elementwise add of two int8 tensors with their own quantisation (docs/FORMAT.md, ADD).
#include "sieve_kernels.h"

void sieve_add_s8__scalar(const sieve_add_params *p) {
    for (int32_t i = 0; i < p->count; i++) {
        const int32_t a = sieve_requantize((p->input0[i] - p->zero_point0) * (1 << p->left_shift), p->multipliers[0], p->shifts[0]);
        const int32_t b = sieve_requantize((p->input1[i] - p->zero_point1) * (1 << p->left_shift), p->multipliers[1], p->shifts[1]);
        int32_t v = sieve_add_wrap(sieve_requantize(sieve_add_wrap(a, b), p->multipliers[2], p->shifts[2]), p->output_zero_point);
        v = v < p->act_min ? p->act_min : (v > p->act_max ? p->act_max : v);
        p->output[i] = (int8_t)v;
    }
}
