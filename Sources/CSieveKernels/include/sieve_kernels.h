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

// CONCAT along channels: output pixel p is input 0's channels of pixel p, then input 1's, ...
// Each input's values go through its own 256-entry table (out = table[q + 128]) that requantises
// it to the output's quantisation; a NULL table is the identity (a plain copy).
typedef struct {
    const int8_t *inputs[4];    // [pixels][channels[i]]
    const int8_t *tables[4];    // [256] or NULL
    int32_t channels[4];
    int32_t input_count;        // 2...4
    int8_t *output;             // [pixels][sum of channels]
    int32_t pixels;
} sieve_concat_params;

// GATHER: output channel c of each pixel is input channel index[c] (channel shuffles and splits).
typedef struct {
    const int8_t *input;        // [pixels][in_c]
    int8_t *output;             // [pixels][out_c]
    const int32_t *index;       // [out_c], each in 0 ... in_c - 1
    int32_t pixels, in_c, out_c;
} sieve_gather_params;

// MUL: out = clamp(rq((x0 - zp0) * (x1 - zp1), M, s) + zp_out, act_min, act_max), x1 either the
// same shape as x0 or one value per channel broadcast over every pixel (squeeze-excitation).
typedef struct {
    const int8_t *input0;       // [pixels][channels]
    const int8_t *input1;       // [channels] when broadcast, else [pixels][channels]
    int8_t *output;             // [pixels][channels]
    int32_t pixels, channels;
    int32_t broadcast;          // 1: input1 is [channels]
    int32_t zero_point0, zero_point1, output_zero_point;
    int32_t multiplier, shift;  // in [2^30, 2^31) and 1...62
    int32_t act_min, act_max;
} sieve_mul_params;

// The input rows [y0, y1) and columns [x0, x1) a pooling window at output (oy, ox) covers inside
// the input (padding left out); every pool walks its window through this.
typedef struct { int32_t y0, y1, x0, x1; } sieve_window;
static inline sieve_window sieve_pool_window(const sieve_pool_params *p, int32_t oy, int32_t ox) {
    const int32_t top = oy * p->stride_h - p->pad_top, left = ox * p->stride_w - p->pad_left;
    sieve_window w;
    w.y0 = top < 0 ? 0 : top;
    w.y1 = top + p->kernel_h < p->in_h ? top + p->kernel_h : p->in_h;
    w.x0 = left < 0 ? 0 : left;
    w.x1 = left + p->kernel_w < p->in_w ? left + p->kernel_w : p->in_w;
    return w;
}

// int32 addition that wraps (two's complement), as every SIMD path's vector adds do. A plain +
// would be undefined on overflow, which only blobs with extreme weights or multipliers reach.
static inline int32_t sieve_add_wrap(int32_t a, int32_t b) { return (int32_t)((uint32_t)a + (uint32_t)b); }

// rq(acc, M, s) = (acc * M + 2^(s-1)) >> s in 64-bit: single rounding, half up.
static inline int32_t sieve_requantize(int32_t acc, int32_t multiplier, int32_t shift) {
    int64_t product = (int64_t)acc * (int64_t)multiplier;
    return (int32_t)((product + ((int64_t)1 << (shift - 1))) >> shift);
}

void sieve_conv_s8__scalar(const sieve_conv_params *p);
void sieve_dwconv_s8__scalar(const sieve_conv_params *p);
void sieve_fc_s8__scalar(const sieve_fc_params *p);
void sieve_maxpool_s8__scalar(const sieve_pool_params *p);
void sieve_avgpool_s8__scalar(const sieve_pool_params *p);
void sieve_global_avgpool_s8__scalar(const int8_t *input, int8_t *output, int32_t pixels, int32_t channels);
// sums[c] = the sum of channel c over `pixels` NHWC pixels (the pool's sums, before its rounding).
void sieve_channel_sums_s8__scalar(const int8_t *input, int32_t *sums, int32_t pixels, int32_t channels);
void sieve_add_s8__scalar(const sieve_add_params *p);
void sieve_concat_s8__scalar(const sieve_concat_params *p);
void sieve_mul_s8__scalar(const sieve_mul_params *p);
void sieve_gather_s8__scalar(const sieve_gather_params *p);
// LUT: output[i] = table[input[i] + 128] (sigmoid, hard-swish, ... precomputed by the quantiser);
// the output does not overlap the input (the SIMD kernels look a tail up twice).
void sieve_lut_s8__scalar(const int8_t *input, int8_t *output, const int8_t *table, int32_t count);

// LUT with channel groups: channel c of every pixel goes through table map[c]. The conv before it
// gives each group of channels its own scale (its requantisation is per channel anyway), so a
// tensor whose channels span very different ranges keeps them all fine-grained.
#define SIEVE_LUT_MAX_GROUPS 16
#define SIEVE_LUT_GROUPED_MAX_CHANNELS 4096
typedef struct {
    const int8_t *input;        // [pixels][channels]
    int8_t *output;             // [pixels][channels], not overlapping the input
    const int8_t *tables;       // [groups][256]
    const uint8_t *map;         // [channels], each below groups; unused with one table
    int32_t pixels, channels;   // with groups: channels 1 ... SIEVE_LUT_GROUPED_MAX_CHANNELS
    int32_t groups;             // 1 (one table: the plain LUT) or 2 ... SIEVE_LUT_MAX_GROUPS
} sieve_lut_grouped_params;
void sieve_lut_grouped_s8__scalar(const sieve_lut_grouped_params *p);
// 1 if every channel's table is below `groups` (the load-time check of a grouped LUT's map).
int32_t sieve_lut_map_valid(const uint8_t *map, int32_t channels, int32_t groups);

// ---- SIMD paths (docs/KERNELS.md) -------------------------------------------------------------
// One binary carries every path of its architecture; sieve_isa_best() picks at load.
enum {
    SIEVE_ISA_SCALAR = 0,      // the reference, every architecture
    SIEVE_ISA_AVX2 = 1,        // x86-64: vpmaddwd on int16
    SIEVE_ISA_AVX512VNNI = 2,  // x86-64: vpdpbusd (u8 x s8, input offset by 128)
    SIEVE_ISA_NEON = 3,        // AArch64 v8.0: smull/smlal/sadalp
    SIEVE_ISA_NEONDOT = 4,     // AArch64 v8.2 dot product: sdot
    SIEVE_ISA_I8MM = 5,        // AArch64 v8.6 int8 matrix multiply: smmla
    SIEVE_ISA_COUNT = 6
};
int32_t sieve_isa_available(int32_t isa);  // 1 if this build and this CPU can run it
int32_t sieve_isa_best(void);              // the fastest available path
const char *sieve_isa_name(int32_t isa);   // "scalar", "avx2", "avx512vnni", "neon", "neondot", "i8mm"
int32_t sieve_isa_named(const char *name);  // the path with that name, -1 if none has it
// The SIEVE_ISA environment variable: -1 when unset or empty, -2 when it names no path,
// else the path (available or not: the caller says which).
int32_t sieve_isa_from_environment(void);

// Convolution (groups == 1), depthwise convolution and fully connected on a chosen path.
// Weights are packed once, at load, into `packed` (64-byte aligned, `*_packed_size` bytes; 0 means
// the path runs this op with the scalar kernel and needs nothing). `scratch` is per thread,
// 64-byte aligned, `*_scratch_size` bytes. A conv or depthwise call may cover any band of output
// rows (sieve_conv_rows); a fully connected call any range of output channels.
size_t sieve_conv_packed_size(int32_t isa, const sieve_conv_params *p);
void sieve_conv_pack(int32_t isa, const sieve_conv_params *p, void *packed);
size_t sieve_conv_scratch_size(int32_t isa, const sieve_conv_params *p);
void sieve_conv_run(int32_t isa, const sieve_conv_params *p, const void *packed, void *scratch);

size_t sieve_dwconv_packed_size(int32_t isa, const sieve_conv_params *p);
void sieve_dwconv_pack(int32_t isa, const sieve_conv_params *p, void *packed);
size_t sieve_dwconv_scratch_size(int32_t isa, const sieve_conv_params *p);
void sieve_dwconv_run(int32_t isa, const sieve_conv_params *p, const void *packed, void *scratch);

size_t sieve_fc_packed_size(int32_t isa, const sieve_fc_params *p);
void sieve_fc_pack(int32_t isa, const sieve_fc_params *p, void *packed);
size_t sieve_fc_scratch_size(int32_t isa, const sieve_fc_params *p);
void sieve_fc_run(int32_t isa, const sieve_fc_params *p, const void *packed, void *scratch, int32_t oc_begin, int32_t oc_end);

// Elementwise ADD and global average pool on a path (scalar where the path has no kernel for them).
void sieve_add_run(int32_t isa, const sieve_add_params *p);
void sieve_global_avgpool_run(int32_t isa, const int8_t *input, int8_t *output, int32_t pixels, int32_t channels);
void sieve_channel_sums_run(int32_t isa, const int8_t *input, int32_t *sums, int32_t pixels, int32_t channels);
void sieve_maxpool_run(int32_t isa, const sieve_pool_params *p);
void sieve_avgpool_run(int32_t isa, const sieve_pool_params *p);
void sieve_concat_run(int32_t isa, const sieve_concat_params *p);
void sieve_mul_run(int32_t isa, const sieve_mul_params *p);
void sieve_gather_run(int32_t isa, const sieve_gather_params *p);
void sieve_lut_run(int32_t isa, const int8_t *input, int8_t *output, const int8_t *table, int32_t count);
// A LUT op, one table or grouped (the interpreter's one entry for both).
void sieve_lut_grouped_run(int32_t isa, const sieve_lut_grouped_params *p);

// The parameters of output rows [row_begin, row_end) of a conv or depthwise conv: a band any
// kernel computes on its own (threads split a layer this way).
sieve_conv_params sieve_conv_rows(const sieve_conv_params *p, int32_t row_begin, int32_t row_end);

// Peak int8 MAC rate of a path on this core: a register-only loop of its multiply-accumulate
// instruction, `iterations` times 32 independent instructions. Returns the MACs performed.
uint64_t sieve_peak_macs(int32_t isa, uint64_t iterations);
// The same for the avx2 path's u8 x s8 route (vpmaddubsw; ops whose weights allow it, such as
// `--weight-bits 7` blobs); 0 on every other path.
uint64_t sieve_peak_macs_u8(int32_t isa, uint64_t iterations);
// The route a conv or fully connected op packed for `isa` runs on: the path's own kernel, or on
// avx2 the u8 x s8 route (ops whose weights allow it) or Winograd F(2,3) (3x3 stride-1 convs).
enum { SIEVE_ROUTE_MAIN = 0, SIEVE_ROUTE_U8 = 1, SIEVE_ROUTE_WINOGRAD = 2 };
int32_t sieve_packed_route(int32_t isa, const void *packed);

// Exact logits of a head or the classifier (docs/FORMAT.md, "Exact logits"): the fully connected
// op's accumulators dequantised without rounding to int8. With pixels > 1 the input is the tap a
// global average pool reduces (pixels x channels, NHWC) and the pool is folded in as exact sums.
typedef struct {
    const int8_t *input;
    int32_t pixels;             // 1: `input` is the fully connected op's own input
    int32_t channels;           // the fully connected op's input length
    const int8_t *weights;      // classes x channels
    const int32_t *bias;
    const int32_t *multipliers;
    const int32_t *shifts;
    int32_t classes;
    float output_scale;         // the logits tensor's scale
    float lower, upper;         // the op's activation clamp in real units (-inf, inf: none)
    int32_t *sums;              // scratch, `channels` int32
} sieve_logits_params;

// z_o = acc_o * (M_o / 2^s_o) * output_scale / pixels, acc_o = pixels * bias_o + sum_c w[o][c] * S_c
// (int64; S_c the channel sums), in double, clamped to [lower, upper], then rounded to float.
// Rows whose row_mask byte is 0 are set to -inf and cost nothing; row_mask may be NULL. The sums
// run on path `isa` (integers: every path gives the same ones).
void sieve_exact_logits(int32_t isa, const sieve_logits_params *p, const uint8_t *row_mask, float *logits);
// The logits a global average pool writes, as its channel means before int8 rounding (pixels <= 2^24).
void sieve_pool_logits(int32_t isa, const int8_t *input, int32_t pixels, int32_t channels, float scale,
                       int32_t zero_point, int32_t *sums, float *logits);

// Head scores from logits; sieve_sigmoid is the one the exit rule uses too.
float sieve_sigmoid(float z);
void sieve_sigmoid_scores(const float *logits, int32_t count, float *scores);
void sieve_softmax_scores(const float *logits, int32_t count, float *scores);

// expf, for the few floats of an exit decision (keeps libm out of the Swift core's imports).
float sieve_expf(float x);

// CRC-32C (Castagnoli), as docs/FORMAT.md specifies. Pass 0 as crc to start.
uint32_t sieve_crc32c(uint32_t crc, const void *data, size_t length);

#ifdef __cplusplus
}
#endif
#endif
