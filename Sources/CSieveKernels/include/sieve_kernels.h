// Sieve's int8 kernels. The __scalar functions are the specification (docs/FORMAT.md,
// "The arithmetic"): plain loops, not fast by design. Every SIMD path must match them bit for bit.
// This header includes only <stdint.h>/<stddef.h> so it imports into Embedded Swift.
#ifndef SIEVE_KERNELS_H
#define SIEVE_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// One flat parameter block shared by every convolution-like kernel and every ISA.
// Tensors are NHWC int8 with n = 1. Requantisation is per output channel.
typedef struct {
    const int8_t *input;        // [in_h][in_w][in_c]
    const int8_t *weights;      // CONV: [out_c][kernel_h][kernel_w][in_c/groups]; DEPTHWISE: [kernel_h][kernel_w][out_c]
    const int32_t *bias;        // [out_c], zero-point terms folded in
    const int32_t *multipliers; // [out_c], in [2^30, 2^31)
    const int32_t *shifts;      // [out_c], right shifts in 1...62
    int8_t *output;             // [out_h][out_w][out_c]
    int32_t in_h, in_w, in_c;
    int32_t out_h, out_w, out_c;
    int32_t kernel_h, kernel_w, stride_h, stride_w;
    int32_t pad_top, pad_left;
    int32_t groups;
    int32_t input_zero_point;   // value of padded taps
    int32_t output_zero_point;
    int32_t act_min, act_max;   // output clamp in the int8 domain
} sieve_conv_params;

typedef struct {
    const int8_t *input;        // [k]
    const int8_t *weights;      // [out_c][k]
    const int32_t *bias;
    const int32_t *multipliers;
    const int32_t *shifts;
    int8_t *output;             // [out_c]
    int32_t k, out_c;
    int32_t output_zero_point;
    int32_t act_min, act_max;
} sieve_fc_params;

typedef struct {
    const int8_t *input;
    int8_t *output;
    int32_t in_h, in_w, channels;
    int32_t out_h, out_w;
    int32_t kernel_h, kernel_w, stride_h, stride_w;
    int32_t pad_top, pad_left;
} sieve_pool_params;

typedef struct {
    const int8_t *input0;
    const int8_t *input1;
    int8_t *output;
    int32_t count;
    int32_t zero_point0, zero_point1, output_zero_point;
    int32_t multipliers[3];     // input0, input1, output
    int32_t shifts[3];
    int32_t left_shift;
    int32_t act_min, act_max;
} sieve_add_params;

// rq(acc, M, s) = (acc * M + 2^(s-1)) >> s in 64-bit: single rounding, half up.
static inline int32_t sieve_requantize(int32_t acc, int32_t multiplier, int32_t shift) {
    int64_t product = (int64_t)acc * (int64_t)multiplier;
    return (int32_t)((product + ((int64_t)1 << (shift - 1))) >> shift);
}

void sieve_conv_s8__scalar(const sieve_conv_params *p);
void sieve_dwconv_s8__scalar(const sieve_conv_params *p);
void sieve_fc_s8__scalar(const sieve_fc_params *p);
// As sieve_fc_s8__scalar for the rows whose row_mask byte is non-zero; other rows are set to -128
// and cost nothing (the classes an exclusion head has ruled out).
void sieve_fc_rows_s8__scalar(const sieve_fc_params *p, const uint8_t *row_mask);
void sieve_maxpool_s8__scalar(const sieve_pool_params *p);
void sieve_avgpool_s8__scalar(const sieve_pool_params *p);
void sieve_global_avgpool_s8__scalar(const int8_t *input, int8_t *output, int32_t pixels, int32_t channels);
void sieve_add_s8__scalar(const sieve_add_params *p);

// Head scores from int8 logits: real z = scale * (q - zero_point).
void sieve_sigmoid_scores(const int8_t *logits, int32_t count, float scale, int32_t zero_point, float *scores);
void sieve_softmax_scores(const int8_t *logits, int32_t count, float scale, int32_t zero_point, float *scores);

// expf, for the few floats of an exit decision (keeps libm out of the Swift core's imports).
float sieve_expf(float x);

// CRC-32C (Castagnoli), as docs/FORMAT.md specifies. Pass 0 as crc to start.
uint32_t sieve_crc32c(uint32_t crc, const void *data, size_t length);

#ifdef __cplusplus
}
#endif
#endif
