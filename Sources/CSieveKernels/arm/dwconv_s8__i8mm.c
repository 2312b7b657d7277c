// Depthwise convolution on the i8mm path: the neon path's kernel (dwconv_s8__neon.c).
#if defined(__aarch64__)
#include <arm_neon.h>
#include "sieve_target.h"

SIEVE_TARGET_BEGIN("arch=armv8.2-a+dotprod+i8mm")

#include "neon_common.h"

// ---- Depthwise: the neon path's kernel --------------------------------------------------------------
size_t sieve_dwconv_packed_size__i8mm(const sieve_conv_params *p) { return sieve_dwconv_packed_size__neon(p); }
void sieve_dwconv_pack__i8mm(const sieve_conv_params *p, void *packed) { sieve_dwconv_pack__neon(p, packed); }
size_t sieve_dwconv_scratch_size__i8mm(const sieve_conv_params *p) { return sieve_dwconv_scratch_size__neon(p); }
void sieve_dwconv_s8__i8mm(const sieve_conv_params *p, const void *packed, void *scratch) { sieve_dwconv_s8__neon(p, packed, scratch); }

SIEVE_TARGET_END
#endif
