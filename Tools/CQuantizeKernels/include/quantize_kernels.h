// The quantiser's hot loops over every calibration image's int32 accumulators (host only: the
// board never links this). Each output is the runtime's, as sieve_requantize computes it, plus
// the zero point, clamped to [act_min, act_max]; sums are [pixels][channels] without the bias.
#ifndef SIEVE_QUANTIZE_KERNELS_H
#define SIEVE_QUANTIZE_KERNELS_H

#include <stdint.h>

typedef struct {
    const int32_t *sums;         // [pixels][channels], bias-free accumulators
    int64_t pixels;
    int32_t channels;
    const int32_t *multipliers;  // per channel
    const int32_t *shifts;       // per channel, 1...62
    int32_t zero_point, act_min, act_max;
} sieve_q_layer;

// Every element's int8 output with bias[c]: out[pixel][c].
void sieve_q_outputs(const sieve_q_layer *l, const int32_t *bias, int8_t *out);

// For `trials` candidate biases per channel (bias[c * trials + j]): totals[c * trials + j] += the
// sum of candidate j's outputs over the pixels. A channel with rising[c] set has biases that rise
// with j and span about one output step; offsets[c * trials + j] = (bias_j - bias_0) * M. Its
// elements take the fast form (one requantisation and a count of the candidates past the step);
// the others requantise every candidate. Returns 0, or -1 when its scratch memory is not there.
int sieve_q_trial_totals(const sieve_q_layer *l, int32_t trials, const int32_t *bias, const int64_t *offsets,
                         const uint8_t *rising, int64_t *totals);

// Calibration histograms: counts[slot] += 1 per finite value, slot = clamp(floor(value * inverse) +
// negative_bins, 0, bins - 1), or bins for an exact zero. Infinities and NaN are skipped.
void sieve_q_histogram_add(const float *values, int64_t count, double inverse, int32_t negative_bins, int32_t bins, uint32_t *counts);

#endif
