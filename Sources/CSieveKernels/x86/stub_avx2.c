// Placeholder: the avx2 path leaves every op to the scalar kernels until its kernels land.
#if defined(__x86_64__)
#include "sieve_isa.h"
size_t sieve_conv_packed_size__avx2(const sieve_conv_params *p) { (void)p; return 0; }
void sieve_conv_pack__avx2(const sieve_conv_params *p, void *packed) { (void)p; (void)packed; }
size_t sieve_conv_scratch_size__avx2(const sieve_conv_params *p) { (void)p; return 0; }
void sieve_conv_s8__avx2(const sieve_conv_params *p, const void *packed, void *scratch) { (void)packed; (void)scratch; sieve_conv_s8__scalar(p); }
size_t sieve_dwconv_packed_size__avx2(const sieve_conv_params *p) { (void)p; return 0; }
void sieve_dwconv_pack__avx2(const sieve_conv_params *p, void *packed) { (void)p; (void)packed; }
size_t sieve_dwconv_scratch_size__avx2(const sieve_conv_params *p) { (void)p; return 0; }
void sieve_dwconv_s8__avx2(const sieve_conv_params *p, const void *packed, void *scratch) { (void)packed; (void)scratch; sieve_dwconv_s8__scalar(p); }
size_t sieve_fc_packed_size__avx2(const sieve_fc_params *p) { (void)p; return 0; }
void sieve_fc_pack__avx2(const sieve_fc_params *p, void *packed) { (void)p; (void)packed; }
size_t sieve_fc_scratch_size__avx2(const sieve_fc_params *p) { (void)p; return 0; }
void sieve_fc_s8__avx2(const sieve_fc_params *p, const void *packed, void *scratch, int32_t b, int32_t e) { (void)p; (void)packed; (void)scratch; (void)b; (void)e; }
uint64_t sieve_peak_macs__avx2(uint64_t iterations) { (void)iterations; return 0; }
#endif
