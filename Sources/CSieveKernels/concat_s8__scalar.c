// Reference CONCAT along channels (docs/FORMAT.md, CONCAT): each input's channel run of a pixel,
// one after the other, each value through its input's requantisation table (NULL: copied as is).
#include <string.h>
#include "sieve_kernels.h"

void sieve_concat_s8__scalar(const sieve_concat_params *p) {
    int32_t out_c = 0;
    for (int32_t k = 0; k < p->input_count; k++) out_c += p->channels[k];
    int32_t first = 0;
    for (int32_t k = 0; k < p->input_count; k++) {
        const int32_t c = p->channels[k];
        const int8_t *table = p->tables[k];
        for (int32_t i = 0; i < p->pixels; i++) {
            const int8_t *src = p->inputs[k] + (size_t)i * c;
            int8_t *dst = p->output + (size_t)i * out_c + first;
            if (table == NULL) {
                memcpy(dst, src, (size_t)c);
            } else {
                for (int32_t j = 0; j < c; j++) dst[j] = table[src[j] + 128];
            }
        }
        first += c;
    }
}
