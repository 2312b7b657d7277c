// What each SIMD path provides (internal to CSieveKernels). For an op O in {conv, dwconv, fc} and a
// path X: O_packed_size__X (0: the path leaves this shape to the scalar kernel), O_pack__X,
// O_scratch_size__X and the kernel O_s8__X, in the file O_s8__X.c, and the peak loop in peak__X.c.
// dispatch.c routes sieve_O_* to them.
#ifndef SIEVE_ISA_H
#define SIEVE_ISA_H

#include "sieve_kernels.h"

#define SIEVE_DECLARE_PATH(X)                                                                              \
    size_t sieve_conv_packed_size__##X(const sieve_conv_params *p);                                        \
    void sieve_conv_pack__##X(const sieve_conv_params *p, void *packed);                                   \
    size_t sieve_conv_scratch_size__##X(const sieve_conv_params *p);                                       \
    void sieve_conv_s8__##X(const sieve_conv_params *p, const void *packed, void *scratch);                \
    size_t sieve_dwconv_packed_size__##X(const sieve_conv_params *p);                                      \
    void sieve_dwconv_pack__##X(const sieve_conv_params *p, void *packed);                                 \
    size_t sieve_dwconv_scratch_size__##X(const sieve_conv_params *p);                                     \
    void sieve_dwconv_s8__##X(const sieve_conv_params *p, const void *packed, void *scratch);              \
    size_t sieve_fc_packed_size__##X(const sieve_fc_params *p);                                            \
    void sieve_fc_pack__##X(const sieve_fc_params *p, void *packed);                                       \
    size_t sieve_fc_scratch_size__##X(const sieve_fc_params *p);                                           \
    void sieve_fc_s8__##X(const sieve_fc_params *p, const void *packed, void *scratch, int32_t oc_begin,    \
                          int32_t oc_end);                                                                  \
    uint64_t sieve_peak_macs__##X(uint64_t iterations);

#if defined(__x86_64__)
SIEVE_DECLARE_PATH(avx2)
SIEVE_DECLARE_PATH(avx512vnni)
// The x86 paths' elementwise kernels: ADD, max pool, average pool, and the channel sums of a global
// average pool (x86/<op>_s8__<isa>.c; avx512 serves avx512vnni).
void sieve_add_s8__avx512(const sieve_add_params *p);
void sieve_add_s8__avx2(const sieve_add_params *p);
void sieve_global_avgpool_s8__avx512(const int8_t *input, int8_t *output, int32_t pixels, int32_t channels);
void sieve_global_avgpool_s8__avx2(const int8_t *input, int8_t *output, int32_t pixels, int32_t channels);
void sieve_channel_sums_s8__avx512(const int8_t *input, int32_t *sums, int32_t pixels, int32_t channels);
void sieve_channel_sums_s8__avx2(const int8_t *input, int32_t *sums, int32_t pixels, int32_t channels);
void sieve_maxpool_s8__avx512(const sieve_pool_params *p);
void sieve_maxpool_s8__avx2(const sieve_pool_params *p);
void sieve_avgpool_s8__avx2(const sieve_pool_params *p);  // AVERAGE_POOL: avx2 serves avx512vnni too
void sieve_mul_s8__avx2(const sieve_mul_params *p);  // MUL: avx2 serves avx512vnni too
// LUT with vpshufb: `rows` rows of `count` bytes, `*_stride` bytes apart (CONCAT's tables; LUT is one row).
void sieve_lut_rows_s8__avx2(const int8_t *input, int32_t input_stride, int8_t *output, int32_t output_stride,
                             int32_t rows, int32_t count, const int8_t *table);
// The same with AVX-512 VBMI (vpermt2b), taken on the avx512vnni path when the core has VBMI.
void sieve_lut_rows_s8__avx512vbmi(const int8_t *input, int32_t input_stride, int8_t *output, int32_t output_stride,
                                   int32_t rows, int32_t count, const int8_t *table);
// LUT with channel groups on VBMI: a lookup per group and a blend by each lane's group, 64 bytes a step.
void sieve_lut_grouped_s8__avx512vbmi(const sieve_lut_grouped_params *p);
// The avx2 conv's u8 x s8 vpmaddubsw route (x86/conv_s8__avx2_u8.c), taken per op when every weight
// pair fits its saturating int16 sum.
int sieve_conv_u8_fits__avx2(const sieve_conv_params *p);
size_t sieve_conv_u8_packed_size__avx2(const sieve_conv_params *p);
void sieve_conv_u8_pack__avx2(const sieve_conv_params *p, void *packed);
size_t sieve_conv_u8_scratch_size__avx2(const sieve_conv_params *p);
void sieve_conv_u8_s8__avx2(const sieve_conv_params *p, const void *packed, void *scratch);
// The route (SIEVE_ROUTE_*) a packed avx2 conv or fully connected op records in its header.
int32_t sieve_conv_route__avx2(const void *packed);
// Winograd F(2,3) for 3x3 stride-1 convs (x86/conv_wino_avx2.c), taken before the other two when
// sieve_conv_wino_fits__avx2 says the shape suits it.
int sieve_conv_wino_fits__avx2(const sieve_conv_params *p);
size_t sieve_conv_wino_packed_size__avx2(const sieve_conv_params *p);
void sieve_conv_wino_pack__avx2(const sieve_conv_params *p, void *packed);
size_t sieve_conv_wino_scratch_size__avx2(const sieve_conv_params *p);
void sieve_conv_wino_s8__avx2(const sieve_conv_params *p, const void *packed, void *scratch);
uint64_t sieve_peak_macs_u8__avx2(uint64_t iterations);  // the u8 route's register-only loop
// The same route for fully connected ops (x86/fc_s8__avx2_u8.c).
int sieve_fc_u8_fits__avx2(const sieve_fc_params *p);
size_t sieve_fc_u8_packed_size__avx2(const sieve_fc_params *p);
void sieve_fc_u8_pack__avx2(const sieve_fc_params *p, void *packed);
size_t sieve_fc_u8_scratch_size__avx2(const sieve_fc_params *p);
void sieve_fc_u8_s8__avx2(const sieve_fc_params *p, const void *packed, void *scratch, int32_t oc_begin, int32_t oc_end);
#endif
#if defined(__aarch64__)
SIEVE_DECLARE_PATH(neon)
SIEVE_DECLARE_PATH(neondot)
SIEVE_DECLARE_PATH(i8mm)
void sieve_mul_s8__neon(const sieve_mul_params *p);  // MUL on every AArch64 path
void sieve_add_s8__neon(const sieve_add_params *p);  // ADD on every AArch64 path
void sieve_lut_s8__neon(const int8_t *input, int8_t *output, const int8_t *table, int32_t count);  // LUT: tbl/tbx
void sieve_lut_rows_s8__neon(const int8_t *input, int32_t input_stride, int8_t *output, int32_t output_stride,
                             int32_t rows, int32_t count, const int8_t *table);
void sieve_maxpool_s8__neon(const sieve_pool_params *p);  // MAX_POOL on every AArch64 path
void sieve_avgpool_s8__neon(const sieve_pool_params *p);  // AVERAGE_POOL on every AArch64 path
void sieve_global_avgpool_s8__neon(const int8_t *input, int8_t *output, int32_t pixels, int32_t channels);
// The route (SIEVE_ROUTE_*) a packed neon op records in its header: a neon conv may take Winograd
// F(2,3) (arm/conv_wino_neon.c).
int32_t sieve_conv_route__neon(const void *packed);
#endif

#endif
