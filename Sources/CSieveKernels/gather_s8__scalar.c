// GATHER along channels (docs/FORMAT.md, GATHER): each output channel copies one input channel of
// the same pixel. Two index shapes cover ShuffleNet and get fast copies on every path; anything
// else is copied a byte at a time:
//   - one run of consecutive channels (a Split's part): a memcpy per pixel;
//   - two runs interleaved, out[2i] = in[a + i], out[2i + 1] = in[b + i] (a 2-group channel
//     shuffle, and each half of one): a byte zip, which clang turns into punpck / zip1-zip2.
#include <string.h>
#include "sieve_kernels.h"

typedef uint8_t u8x16 __attribute__((vector_size(16)));

static int is_run(const int32_t *index, int32_t count, int32_t step) {
    for (int32_t j = 1; j < count; j++) if (index[j * step] != index[0] + j) return 0;
    return 1;
}

static inline void zip16(const int8_t *a, const int8_t *b, int8_t *out) {
    u8x16 x, y;
    memcpy(&x, a, 16);
    memcpy(&y, b, 16);
    const u8x16 lo = __builtin_shufflevector(x, y, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const u8x16 hi = __builtin_shufflevector(x, y, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    memcpy(out, &lo, 16);
    memcpy(out + 16, &hi, 16);
}

// A run of at least 16 ends with one more step over its last 16 pairs, which rewrites some outputs
// with the same bytes (the output never overlaps the input): ShuffleNet's runs of 58 take 4 steps
// instead of 3 and 10 byte pairs.
static void zip_bytes(const int8_t *a, const int8_t *b, int8_t *out, int32_t n) {
    int32_t i = 0;
    for (; i + 16 <= n; i += 16) zip16(a + i, b + i, out + 2 * i);
    if (i < n && n >= 16) {
        zip16(a + n - 16, b + n - 16, out + 2 * (n - 16));
        return;
    }
    for (; i < n; i++) { out[2 * i] = a[i]; out[2 * i + 1] = b[i]; }
}

void sieve_gather_s8__scalar(const sieve_gather_params *p) {
    const int32_t in_c = p->in_c, out_c = p->out_c;
    if (is_run(p->index, out_c, 1)) {
        for (int32_t i = 0; i < p->pixels; i++) memcpy(p->output + (size_t)i * out_c, p->input + (size_t)i * in_c + p->index[0], (size_t)out_c);
        return;
    }
    if (out_c % 2 == 0 && is_run(p->index, out_c / 2, 2) && is_run(p->index + 1, out_c / 2, 2)) {
        for (int32_t i = 0; i < p->pixels; i++) {
            const int8_t *src = p->input + (size_t)i * in_c;
            zip_bytes(src + p->index[0], src + p->index[1], p->output + (size_t)i * out_c, out_c / 2);
        }
        return;
    }
    for (int32_t i = 0; i < p->pixels; i++) {
        const int8_t *src = p->input + (size_t)i * in_c;
        int8_t *dst = p->output + (size_t)i * out_c;
        for (int32_t c = 0; c < out_c; c++) dst[c] = src[p->index[c]];
    }
}
