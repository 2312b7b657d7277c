// Reference LUT (docs/FORMAT.md, LUT), with one table or a table per channel group: one table load per byte. The table holds the quantiser's
// exact int8 answer for each of the 256 inputs, so every path computes the same thing.
#include "sieve_kernels.h"

void sieve_lut_s8__scalar(const int8_t *input, int8_t *output, const int8_t *table, int32_t count) {
    for (int32_t i = 0; i < count; i++) output[i] = table[input[i] + 128];
}

void sieve_lut_grouped_s8__scalar(const sieve_lut_grouped_params *p) {
    const int8_t *in = p->input;
    int8_t *out = p->output;
    for (int32_t i = 0; i < p->pixels; i++, in += p->channels, out += p->channels)
        for (int32_t c = 0; c < p->channels; c++) out[c] = p->tables[256 * p->map[c] + in[c] + 128];
}

int32_t sieve_lut_map_valid(const uint8_t *map, int32_t channels, int32_t groups) {
    for (int32_t c = 0; c < channels; c++) if (map[c] >= groups) return 0;
    return 1;
}
