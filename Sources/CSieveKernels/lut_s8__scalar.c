// Reference LUT (docs/FORMAT.md, LUT): one table load per byte. The table holds the quantiser's
// exact int8 answer for each of the 256 inputs, so every path computes the same thing.
#include "sieve_kernels.h"

void sieve_lut_s8__scalar(const int8_t *input, int8_t *output, const int8_t *table, int32_t count) {
    for (int32_t i = 0; i < count; i++) output[i] = table[input[i] + 128];
}
