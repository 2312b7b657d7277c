// The neondot kernels' register epilogue (conv_s8__neondot.c, dwconv_s8__neondot.c): one pixel's
// sixteen accumulators requantised in the fast form inside their inline assembly.
#ifndef SIEVE_NEONDOT_RQ_H
#define SIEVE_NEONDOT_RQ_H

// The fast requantisation of pixel P (accumulators v(4P)...v(4P+3)) from registers, as arm_rq_fast
// computes it: multipliers v16-v19, shifts v20-v23, zero point (int16) v24, act_min v25, act_max v26;
// the 16 bytes stored at DST. Results go through v28-v31, the accumulators are only read, so no
// false dependency runs from one tile (or pixel) to the next.
#define DOT_RQ_PIXEL(A0, A1, A2, A3, DST) DOT_RQ_PIXEL_ROUNDING(A0, A1, A2, A3, DST, "srshl v28.4s, v28.4s, v20.4s\n")

// The same with rmix (neon_common.h) in v20-v23: channels 0-3 take their rounding shift as a
// sqrdmulh by 2^(31 - t) (the multiply pipe), channels 4-15 the srshl (the shift pipe, which also
// narrows): in llvm-mca's A57 model 55 cycles for a 4-pixel tile's epilogue against 61.
#define DOT_RQ_PIXEL_MIX(A0, A1, A2, A3, DST) DOT_RQ_PIXEL_ROUNDING(A0, A1, A2, A3, DST, "sqrdmulh v28.4s, v28.4s, v20.4s\n")

// Both, with ROUND0 the rounding of channels 0-3.
#define DOT_RQ_PIXEL_ROUNDING(A0, A1, A2, A3, DST, ROUND0)                                            \
    "sqdmulh v28.4s, v" #A0 ".4s, v16.4s\n sqdmulh v29.4s, v" #A1 ".4s, v17.4s\n"                     \
    "sqdmulh v30.4s, v" #A2 ".4s, v18.4s\n sqdmulh v31.4s, v" #A3 ".4s, v19.4s\n"                     \
    ROUND0 "srshl v29.4s, v29.4s, v21.4s\n"                                                          \
    "srshl v30.4s, v30.4s, v22.4s\n srshl v31.4s, v31.4s, v23.4s\n"                                   \
    "sqxtn v28.4h, v28.4s\n sqxtn v30.4h, v30.4s\n"                                                   \
    "sqxtn2 v28.8h, v29.4s\n sqxtn2 v30.8h, v31.4s\n"                                                 \
    "sqadd v28.8h, v28.8h, v24.8h\n sqadd v30.8h, v30.8h, v24.8h\n"                                   \
    "sqxtn v28.8b, v28.8h\n sqxtn2 v28.16b, v30.8h\n"                                                 \
    "smax v28.16b, v28.16b, v25.16b\n smin v28.16b, v28.16b, v26.16b\n"                               \
    "str q28, [" DST "]\n"

#endif
