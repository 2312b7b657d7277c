// Depthwise convolution on the i8mm path: the neondot path's kernel (dwconv_s8__neondot.c).
#if defined(__aarch64__)
#include <arm_neon.h>
#include "sieve_target.h"

SIEVE_TARGET_BEGIN("arch=armv8.2-a+dotprod+i8mm")

#include "neon_common.h"

// ---- Depthwise: the neondot path's kernel --------------------------------------------------------------
size_t sieve_dwconv_packed_size__i8mm(const sieve_conv_params *p) { return sieve_dwconv_packed_size__neondot(p); }
void sieve_dwconv_pack__i8mm(const sieve_conv_params *p, void *packed) { sieve_dwconv_pack__neondot(p, packed); }
size_t sieve_dwconv_scratch_size__i8mm(const sieve_conv_params *p) { return sieve_dwconv_scratch_size__neondot(p); }
void sieve_dwconv_s8__i8mm(const sieve_conv_params *p, const void *packed, void *scratch) { sieve_dwconv_s8__neondot(p, packed, scratch); }

SIEVE_TARGET_END
#endif
