// The neon path's packed header, and the one int16 overflow its paired form must avoid. Included by
// the neon kernels inside their SIEVE_TARGET_BEGIN region, after neon_common.h.
#ifndef SIEVE_NEON_LAYOUT_H
#define SIEVE_NEON_LAYOUT_H

// Packed header (64 bytes) of every neon layout.
typedef struct {
    int32_t safe;  // 1: no int16 lane can sum two (-128) * (-128) products (the paired form is exact)
    int32_t runs, L, block_bytes;
    int32_t quad;  // conv: 1 when every int16 lane of the quad form sums four products that fit (see conv_s8__neon.c)
    int32_t wino;  // conv: 1 on the Winograd F(2,3) route (conv_wino_neon.c)
} neon_header;

#define NEON_HEADER 64

// int16 lane i of smull(lo)+smlal2(hi) holds w[i] x[i] + w[i+8] x[i+8]: it overflows only for
// w[i] = w[i+8] = -128 (and x = -128 at both), 2 * 16384 = 32768. Any other pair of products fits.
static inline int pair_overflows(int8_t a, int8_t b) { return a == -128 && b == -128; }

// The one-channel conv (stem_s8__neon.c), which the neon conv entry points hand over to.
int sieve_stem_usable__neon(const sieve_conv_params *p);
size_t sieve_stem_packed_size__neon(const sieve_conv_params *p);
void sieve_stem_pack__neon(const sieve_conv_params *p, void *packed);
size_t sieve_stem_scratch_size__neon(const sieve_conv_params *p);
void sieve_stem_s8__neon(const sieve_conv_params *p, const void *packed, void *scratch);

// Winograd F(2,3) for the 3x3 stride-1 convs it suits (conv_wino_neon.c), taken before the others.
int sieve_conv_wino_fits__neon(const sieve_conv_params *p);
size_t sieve_conv_wino_packed_size__neon(const sieve_conv_params *p);
void sieve_conv_wino_pack__neon(const sieve_conv_params *p, void *packed);
size_t sieve_conv_wino_scratch_size__neon(const sieve_conv_params *p);
void sieve_conv_wino_s8__neon(const sieve_conv_params *p, const void *packed, void *scratch);

// Instruction strings of the conv and fully connected inline assembly.
#define ML(T, X, W) "smull v" #T ".8h, v" #X ".8b, v" #W ".8b\n"
#define ML2(T, X, W) "smull2 v" #T ".8h, v" #X ".16b, v" #W ".16b\n"
#define MLA2(T, X, W) "smlal2 v" #T ".8h, v" #X ".16b, v" #W ".16b\n"
#define MLA(T, X, W) "smlal v" #T ".8h, v" #X ".8b, v" #W ".8b\n"
#define PADAL(A, T) "sadalp v" #A ".4s, v" #T ".8h\n"
// Two pixels (inputs X0, X1; accumulators from A0, A1) x 4 channels, paired.
#define PAIRED_HALF(X0, X1, A0, A1)                                                                   \
    ML(16, X0, 28) ML(17, X0, 29) ML(18, X0, 30) ML(19, X0, 31)                                      \
    ML(20, X1, 28) ML(21, X1, 29) ML(22, X1, 30) ML(23, X1, 31)                                      \
    MLA2(16, X0, 28) MLA2(17, X0, 29) MLA2(18, X0, 30) MLA2(19, X0, 31)                              \
    MLA2(20, X1, 28) MLA2(21, X1, 29) MLA2(22, X1, 30) MLA2(23, X1, 31)
#define PADAL8(A0, A1, A2, A3, B0, B1, B2, B3)                                                        \
    PADAL(A0, 16) PADAL(A1, 17) PADAL(A2, 18) PADAL(A3, 19) PADAL(B0, 20) PADAL(B1, 21) PADAL(B2, 22) PADAL(B3, 23)
// One pixel x 4 channels, unpaired.
#define UNPAIRED_PIXEL(X, A0, A1, A2, A3)                                                             \
    ML(16, X, 28) ML2(17, X, 28) ML(18, X, 29) ML2(19, X, 29)                                        \
    ML(20, X, 30) ML2(21, X, 30) ML(22, X, 31) ML2(23, X, 31)                                        \
    PADAL(A0, 16) PADAL(A0, 17) PADAL(A1, 18) PADAL(A1, 19) PADAL(A2, 20) PADAL(A2, 21) PADAL(A3, 22) PADAL(A3, 23)

// Sums four channels' int32x4 partial sums pairwise: lane j is channel j's total.
static inline int32x4_t neon_reduce4(int32x4_t c0, int32x4_t c1, int32x4_t c2, int32x4_t c3) {
    return vpaddq_s32(vpaddq_s32(c0, c1), vpaddq_s32(c2, c3));
}

#endif
