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

// The float executor's depthwise conv, CHW: y[c][oy][ox] = bias[c], then += w[c][ky][kx] * x[c][iy][ix]
// for each tap inside the input, in the order ky, kx (taps in the padding add nothing). Multiply
// then add, never fused, as the Swift executor computed it before.
typedef struct {
    int32_t channels, in_h, in_w, out_h, out_w, kernel_h, kernel_w, stride_h, stride_w, pad_top, pad_left;
} sieve_q_depthwise_shape;

void sieve_q_depthwise_f32(const sieve_q_depthwise_shape *s, const float *x, const float *weights, const float *bias, float *y);

#endif
