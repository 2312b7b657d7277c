// Fully connected on the i8mm path: the neondot path's kernel (fc_s8__neondot.c).
#if defined(__aarch64__)
#include <arm_neon.h>
#include "sieve_target.h"

SIEVE_TARGET_BEGIN("arch=armv8.2-a+dotprod+i8mm")

#include "neon_common.h"

// ---- Fully connected: the neondot path's kernel ------------------------------------------------------
size_t sieve_fc_packed_size__i8mm(const sieve_fc_params *p) { return sieve_fc_packed_size__neondot(p); }
void sieve_fc_pack__i8mm(const sieve_fc_params *p, void *packed) { sieve_fc_pack__neondot(p, packed); }
size_t sieve_fc_scratch_size__i8mm(const sieve_fc_params *p) { return sieve_fc_scratch_size__neondot(p); }
void sieve_fc_s8__i8mm(const sieve_fc_params *p, const void *packed, void *scratch, int32_t oc_begin, int32_t oc_end) {
    sieve_fc_s8__neondot(p, packed, scratch, oc_begin, oc_end);
}

SIEVE_TARGET_END
#endif
