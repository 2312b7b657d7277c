// LUT (docs/FORMAT.md) on NEON, every AArch64 path: the 256-byte table in 16 registers, 16 bytes
// per step through one tbl and three tbx of 64 bytes each (an index past a quarter leaves the lane
// to the next quarter's tbx). Rows of a strided 2-D block share the loaded table: CONCAT runs each
// input's channels of every pixel as one row. A row's tail is its last 16 bytes looked up again
// (some written twice, with the same bytes: the output never overlaps the input).
#if defined(__aarch64__)
#include <arm_neon.h>
#include <string.h>
#include "sieve_target.h"

SIEVE_TARGET_BEGIN("arch=armv8-a+simd")

#include "sieve_isa.h"

void sieve_lut_rows_s8__neon(const int8_t *input, int32_t input_stride, int8_t *output, int32_t output_stride,
                             int32_t rows, int32_t count, const int8_t *table) {
    const uint8_t *t = (const uint8_t *)table;
    const uint8x16x4_t q0 = vld1q_u8_x4(t), q1 = vld1q_u8_x4(t + 64), q2 = vld1q_u8_x4(t + 128), q3 = vld1q_u8_x4(t + 192);
    const uint8x16_t bias = vdupq_n_u8(0x80), quarter = vdupq_n_u8(64);
    for (int32_t row = 0; row < rows; row++, input += input_stride, output += output_stride)
    for (int32_t i = 0; i < count; i += 16) {
        int32_t n = count - i < 16 ? count - i : 16;
        if (n < 16 && count >= 16) {  // the tail: the row's last 16 bytes again (above)
            i = count - 16;
            n = 16;
        }
        uint8_t in[16] = {0}, out[16];
        const uint8_t *src = (const uint8_t *)input + i;
        if (n < 16) {  // a row shorter than a step: never read past the input
            memcpy(in, src, (size_t)n);
            src = in;
        }
        uint8x16_t index = veorq_u8(vld1q_u8(src), bias);  // q + 128
        uint8x16_t r = vqtbl4q_u8(q0, index);
        index = vsubq_u8(index, quarter);
        r = vqtbx4q_u8(r, q1, index);
        index = vsubq_u8(index, quarter);
        r = vqtbx4q_u8(r, q2, index);
        index = vsubq_u8(index, quarter);
        r = vqtbx4q_u8(r, q3, index);
        if (n == 16) {
            vst1q_u8((uint8_t *)output + i, r);
        } else {
            vst1q_u8(out, r);
            memcpy(output + i, out, (size_t)n);
        }
    }
}

void sieve_lut_s8__neon(const int8_t *input, int8_t *output, const int8_t *table, int32_t count) {
    sieve_lut_rows_s8__neon(input, 0, output, 0, 1, count, table);
}
SIEVE_TARGET_END
#endif
