// Weight packing and input staging shared by the SIMD paths (sieve_pack.h says the layouts).
#include <string.h>
#include "sieve_pack.h"

size_t sieve_pack_k4_size(int32_t out_c, int32_t k) {
    const size_t ocp = (size_t)sieve_round_up(out_c, SIEVE_OC_BLOCK);
    return ocp * 3 * sizeof(int32_t) + ocp * (size_t)sieve_round_up(k, 4);
}

// The K4 layout in both element widths (weight_bytes 1: int8, 2: int16), of rows made of
// `segments` runs of segment_len weights, each run padded with zeros to a multiple of 4.
static void pack_k4(const int8_t *weights, const int32_t *bias, const int32_t *multipliers, const int32_t *shifts,
                    int32_t out_c, int32_t segments, int32_t segment_len, int32_t input_offset, int32_t weight_bytes,
                    void *packed) {
    const int32_t k = segments * segment_len, segment4 = segments == 1 ? segment_len : sieve_round_up(segment_len, 4);
    sieve_k4_view v = sieve_k4(packed, out_c, segments * segment4);
    int32_t *b = (int32_t *)v.bias, *m = (int32_t *)v.multipliers, *s = (int32_t *)v.shifts;
    int8_t *w = (int8_t *)v.weights;
    int16_t *w16 = (int16_t *)v.weights;
    memset(w, 0, (size_t)v.ocp * v.k4 * weight_bytes);
    for (int32_t oc = 0; oc < v.ocp; oc++) {
        if (oc >= out_c) { b[oc] = 0; m[oc] = 1 << 30; s[oc] = SIEVE_PADDING_SHIFT; continue; }
        const int8_t *row = weights + (size_t)oc * k;
        uint32_t sum = 0;  // wraps: the bias below is taken modulo 2^32
        for (int32_t i = 0; i < k; i++) {
            sum += (uint32_t)row[i];
            const int32_t j = i / segment_len * segment4 + i % segment_len;
            const size_t at = (((size_t)(oc / SIEVE_OC_BLOCK) * (v.k4 / 4) + j / 4) * SIEVE_OC_BLOCK + oc % SIEVE_OC_BLOCK) * 4 + j % 4;
            if (weight_bytes == 2) w16[at] = row[i];
            else w[at] = row[i];
        }
        // Wraps like the scalar accumulator: the result is the same modulo 2^32.
        b[oc] = (int32_t)((uint32_t)bias[oc] - (uint32_t)input_offset * sum);
        m[oc] = multipliers[oc];
        s[oc] = shifts[oc];
    }
}

void sieve_pack_k4(const int8_t *weights, const int32_t *bias, const int32_t *multipliers, const int32_t *shifts,
                   int32_t out_c, int32_t k, int32_t input_offset, void *packed) {
    pack_k4(weights, bias, multipliers, shifts, out_c, 1, k, input_offset, 1, packed);
}

size_t sieve_pack_k4_s16_size(int32_t out_c, int32_t k) {
    return sieve_pack_k4_size(out_c, k) + (size_t)sieve_round_up(out_c, SIEVE_OC_BLOCK) * sieve_round_up(k, 4);
}

void sieve_pack_k4_s16(const int8_t *weights, const int32_t *bias, const int32_t *multipliers, const int32_t *shifts,
                       int32_t out_c, int32_t k, void *packed) {
    pack_k4(weights, bias, multipliers, shifts, out_c, 1, k, 0, 2, packed);
}

int32_t sieve_conv_k4(const sieve_conv_params *p) {
    if (sieve_conv_is_direct(p)) return p->kernel_h * p->kernel_w * p->in_c;
    return p->kernel_h * sieve_round_up(p->kernel_w * p->in_c, 4);
}

void sieve_pack_conv_k4(const sieve_conv_params *p, int32_t input_offset, int32_t weight_bytes, void *packed) {
    const int32_t segments = sieve_conv_is_direct(p) ? 1 : p->kernel_h;
    pack_k4(p->weights, p->bias, p->multipliers, p->shifts, p->out_c, segments,
            p->kernel_h * p->kernel_w * p->in_c / segments, input_offset, weight_bytes, packed);
}

void sieve_pad_input(const sieve_conv_params *p, int32_t offset, uint8_t *dst) {
    const int32_t span_h = sieve_conv_span_h(p), span_w = sieve_conv_span_w(p), c = p->in_c;
    const uint8_t pad = (uint8_t)(p->input_zero_point + offset);
    // Columns [left, right) of the span hold input columns [left - pad_left, right - pad_left).
    int32_t left = p->pad_left < 0 ? 0 : (p->pad_left > span_w ? span_w : p->pad_left);
    int32_t right = p->pad_left + p->in_w < span_w ? p->pad_left + p->in_w : span_w;
    if (right < left) right = left;
    for (int32_t y = 0; y < span_h; y++) {
        const int32_t iy = y - p->pad_top;
        uint8_t *row = dst + (size_t)y * span_w * c;
        if (iy < 0 || iy >= p->in_h) { memset(row, pad, (size_t)span_w * c); continue; }
        memset(row, pad, (size_t)left * c);
        const int8_t *in = p->input + ((size_t)iy * p->in_w + (left - p->pad_left)) * c;
        uint8_t *out = row + (size_t)left * c;
        const size_t n = (size_t)(right - left) * c;
        if (offset == 0) memcpy(out, in, n);  // the AArch64 paths: a plain copy, not a byte loop
        else for (size_t i = 0; i < n; i++) out[i] = (uint8_t)(in[i] + offset);
        memset(row + (size_t)right * c, pad, (size_t)(span_w - right) * c);
    }
}

// The im2col rows and 64 bytes of slack for the 8- and 16-byte copies below.
static size_t rows_bytes(const sieve_conv_params *p) {
    return (size_t)sieve_round_up(p->out_h * p->out_w * sieve_round_up(p->kernel_h * p->kernel_w * p->in_c, 4), 64) + 64;
}

size_t sieve_im2col_scratch_size(const sieve_conv_params *p) {
    const size_t padded = (size_t)sieve_conv_span_h(p) * sieve_conv_span_w(p) * p->in_c;
    return rows_bytes(p) + padded + 64;
}

void sieve_im2col(const sieve_conv_params *p, int32_t offset, uint8_t *dst) {
    // Pads the band once after the im2col rows, then gathers each tap row's kw * in_c bytes in
    // 8-byte copies (one 16-byte copy for a row of at most 16): a copy's overrun is rewritten by
    // the next one, or lands in the slack.
    const int32_t k = p->kernel_h * p->kernel_w * p->in_c, k4 = sieve_round_up(k, 4);
    const int32_t span_w = sieve_conv_span_w(p), run = p->kernel_w * p->in_c;
    uint8_t *padded = dst + rows_bytes(p);
    sieve_pad_input(p, offset, padded);
    for (int32_t oy = 0; oy < p->out_h; oy++) {
        for (int32_t ox = 0; ox < p->out_w; ox++) {
            uint8_t *out = dst + ((size_t)oy * p->out_w + ox) * k4;
            for (int32_t ky = 0; ky < p->kernel_h; ky++) {
                const uint8_t *in = padded + ((size_t)(oy * p->stride_h + ky) * span_w + (size_t)ox * p->stride_w) * p->in_c;
                // A run of at most 16 bytes (a 3x3 RGB stem's 9) as one 16-byte copy: twice as fast as
                // 8-byte copies in a loop (224x224 RGB stem: 156 -> 81 us); the overrun is rewritten
                // or lands in the slack, and reads at most 15 bytes into the slack after the band.
                if (run <= 16) memcpy(out, in, 16);
                else for (int32_t i = 0; i < run; i += 8) memcpy(out + i, in + i, 8);
                out += run;
            }
            // The 0...3 zero columns as one 4-byte store: its overrun is rewritten by the next pixel's row
            // or lands in the slack (a byte loop here was a third of the one-channel stem's im2col).
            if (k4 > k) memcpy(out, &(const uint32_t){0}, 4);
        }
    }
}

size_t sieve_conv_stage_size(const sieve_conv_params *p) {
    const size_t padded = (size_t)sieve_conv_span_h(p) * sieve_conv_span_w(p) * p->in_c;
    return sieve_conv_is_direct(p) ? padded : padded + 64;
}

sieve_conv_walk sieve_conv_stage(const sieve_conv_params *p, int32_t offset, uint8_t *staged) {
    // in_c % 4 != 0 (the RGB stems): a kernel row's kernel_w * in_c bytes are contiguous in the
    // padded band, so the kernels broadcast them from there, each kernel row one run of
    // round_up(kernel_w * in_c, 4) bytes (the bytes past it meet zero weights; the last run's lie
    // in the 64 bytes of slack). It replaced a copy of every output pixel's kernel rows side by
    // side (12 or 24 bytes per pixel and kernel row; the 224x224 3x3 stem's staging: 41 -> 7 us).
    sieve_pad_input(p, offset, staged);
    const int32_t direct = sieve_conv_is_direct(p);
    sieve_conv_walk w;
    w.taps_h = p->kernel_h;
    w.taps_w = direct ? p->kernel_w : 1;
    w.groups = direct ? p->in_c / 4 : sieve_round_up(p->kernel_w * p->in_c, 4) / 4;
    w.tap_stride = direct ? p->in_c : 0;
    w.row_stride = sieve_conv_span_w(p) * p->in_c;
    w.pixel_stride = p->stride_w * p->in_c;
    w.pixel_row_stride = p->stride_h * w.row_stride;
    return w;
}
