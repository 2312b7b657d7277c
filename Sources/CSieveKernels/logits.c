// Exact class logits for exit decisions and answers (docs/FORMAT.md, "Exact logits"): the fully
// connected op that writes a head's or the classifier's logits, read before its requantisation,
// and with a global average pool in front of it folded in as exact channel sums.
#include <math.h>
#include "sieve_kernels.h"

void sieve_exact_logits(int32_t isa, const sieve_logits_params *p, const uint8_t *row_mask, float *logits) {
    const int32_t n = p->channels, pixels = p->pixels;
    if (pixels > 1) {
        sieve_channel_sums_run(isa, p->input, p->sums, pixels, n);
    } else {
        for (int32_t c = 0; c < n; c++) p->sums[c] = p->input[c];
    }
    const int32_t *restrict sums = p->sums;
    for (int32_t o = 0; o < p->classes; o++) {
        if (row_mask && !row_mask[o]) { logits[o] = -INFINITY; continue; }
        const int8_t *restrict w = p->weights + (size_t)o * n;
        int64_t acc = (int64_t)pixels * p->bias[o];
        for (int32_t c = 0; c < n; c++) acc += (int64_t)w[c] * sums[c];
        // z = acc * (M / 2^s) * scale / pixels, in this order, in double: every platform rounds alike.
        double z = (double)acc * ldexp((double)p->multipliers[o], -p->shifts[o]) * (double)p->output_scale / (double)pixels;
        if (z < p->lower) z = p->lower;
        if (z > p->upper) z = p->upper;
        logits[o] = (float)z;
    }
}

// Logits a global average pool writes: its input's channel means before int8 rounding,
// scale * (S[c] / pixels - zero_point) in double, rounded to float once. pixels <= 2^24, so
// the sums stay in int32.
void sieve_pool_logits(int32_t isa, const int8_t *input, int32_t pixels, int32_t channels, float scale,
                       int32_t zero_point, int32_t *sums, float *logits) {
    sieve_channel_sums_run(isa, input, sums, pixels, channels);
    for (int32_t c = 0; c < channels; c++)
        logits[c] = (float)((double)scale * ((double)sums[c] / (double)pixels - (double)zero_point));
}
