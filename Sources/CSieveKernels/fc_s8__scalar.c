// Reference fully connected layer (docs/FORMAT.md, FULLY_CONNECTED).
#include "sieve_kernels.h"

void sieve_fc_s8__scalar(const sieve_fc_params *p) {
    for (int32_t o = 0; o < p->out_c; o++) {
        const int8_t *w = p->weights + (size_t)o * p->k;
        int32_t acc = p->bias[o];
        for (int32_t i = 0; i < p->k; i++) acc = sieve_add_wrap(acc, (int32_t)w[i] * (int32_t)p->input[i]);
        int32_t v = sieve_add_wrap(sieve_requantize(acc, p->multipliers[o], p->shifts[o]), p->output_zero_point);
        v = v < p->act_min ? p->act_min : (v > p->act_max ? p->act_max : v);
        p->output[o] = (int8_t)v;
    }
}
