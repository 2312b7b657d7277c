// Grouped convs on the SIMD paths, one ordinary conv per group (conv_grouped.c); dispatch.c
// sends every conv with groups != 1 here.
#ifndef SIEVE_CONV_GROUPED_H
#define SIEVE_CONV_GROUPED_H

#include "sieve_kernels.h"

size_t sieve_conv_grouped_packed_size(int32_t isa, const sieve_conv_params *p);
void sieve_conv_grouped_pack(int32_t isa, const sieve_conv_params *p, void *packed);
size_t sieve_conv_grouped_scratch_size(int32_t isa, const sieve_conv_params *p);
void sieve_conv_grouped_run(int32_t isa, const sieve_conv_params *p, const void *packed, void *scratch);

#endif
