// Grouped (non-depthwise) convs on the SIMD paths (RegNet, ResNeXt): each group is an ordinary
// conv of in_c/groups -> out_c/groups channels, run by the path's own kernel on a copy of the
// group's input channels, its output copied into the group's output channels. Each output value
// is the group conv's, so this is bit-exact to the scalar kernel whenever the path's kernel is.
//
// Packed: a 64-byte header holding the per-group stride, then each group's packed weights at
// header + g * stride. Scratch: the group's input rows, its output, the group kernel's scratch.
#include <string.h>
#include "sieve_kernels.h"
#include "conv_grouped.h"

#define HEADER 64

static size_t align64(size_t n) { return (n + 63) & ~(size_t)63; }

// Group g of p as an ordinary conv: its weight rows, its requantisation, its channel counts.
static sieve_conv_params group_of(const sieve_conv_params *p, int32_t g) {
    sieve_conv_params q = *p;
    q.in_c = p->in_c / p->groups;
    q.out_c = p->out_c / p->groups;
    q.groups = 1;
    q.weights = p->weights + (size_t)g * q.out_c * p->kernel_h * p->kernel_w * q.in_c;
    q.bias = p->bias + (size_t)g * q.out_c;
    q.multipliers = p->multipliers + (size_t)g * q.out_c;
    q.shifts = p->shifts + (size_t)g * q.out_c;
    return q;
}

// The largest group's packed size (routes may differ between groups: avx2 takes the u8 route
// only for 7-bit weights), rounded up to 64 bytes; 0 when the path declines a group.
static size_t group_stride(int32_t isa, const sieve_conv_params *p) {
    size_t most = 0;
    for (int32_t g = 0; g < p->groups; g++) {
        const sieve_conv_params q = group_of(p, g);
        const size_t size = sieve_conv_packed_size(isa, &q);
        if (size == 0) return 0;
        if (size > most) most = size;
    }
    return align64(most);
}

size_t sieve_conv_grouped_packed_size(int32_t isa, const sieve_conv_params *p) {
    const size_t stride = group_stride(isa, p);
    return stride == 0 ? 0 : HEADER + stride * (size_t)p->groups;
}

void sieve_conv_grouped_pack(int32_t isa, const sieve_conv_params *p, void *packed) {
    const size_t stride = group_stride(isa, p);
    memset(packed, 0, HEADER);
    memcpy(packed, &stride, sizeof stride);
    for (int32_t g = 0; g < p->groups; g++) {
        const sieve_conv_params q = group_of(p, g);
        sieve_conv_pack(isa, &q, (uint8_t *)packed + HEADER + (size_t)g * stride);
    }
}

size_t sieve_conv_grouped_scratch_size(int32_t isa, const sieve_conv_params *p) {
    size_t kernel = 0;
    for (int32_t g = 0; g < p->groups; g++) {
        const sieve_conv_params q = group_of(p, g);
        const size_t size = sieve_conv_scratch_size(isa, &q);
        if (size > kernel) kernel = size;
    }
    const size_t cg = (size_t)(p->in_c / p->groups), og = (size_t)(p->out_c / p->groups);
    return align64((size_t)p->in_h * p->in_w * cg) + align64((size_t)p->out_h * p->out_w * og) + kernel;
}

void sieve_conv_grouped_run(int32_t isa, const sieve_conv_params *p, const void *packed, void *scratch) {
    // A band of output rows (sieve_conv_rows) keeps the whole input and moves pad_top: copy only
    // the input rows it reads.
    const int32_t first = p->pad_top < 0 ? -p->pad_top : 0;
    int32_t last = (p->out_h - 1) * p->stride_h - p->pad_top + p->kernel_h;
    if (last > p->in_h) last = p->in_h;
    if (p->out_h <= 0) return;
    if (last <= first) { sieve_conv_s8__scalar(p); return; }  // a band of padding only
    const int32_t rows = last - first;
    size_t stride;
    memcpy(&stride, packed, sizeof stride);
    const int32_t cg = p->in_c / p->groups, og = p->out_c / p->groups;
    const size_t pixels_in = (size_t)rows * p->in_w, pixels_out = (size_t)p->out_h * p->out_w;
    int8_t *in = (int8_t *)scratch;
    int8_t *out = in + align64(pixels_in * (size_t)cg);
    void *kernel_scratch = out + align64(pixels_out * (size_t)og);
    const int8_t *source = p->input + (size_t)first * p->in_w * p->in_c;
    for (int32_t g = 0; g < p->groups; g++) {
        for (size_t i = 0; i < pixels_in; i++) memcpy(in + i * cg, source + i * p->in_c + (size_t)g * cg, (size_t)cg);
        sieve_conv_params q = group_of(p, g);
        q.input = in;
        q.in_h = rows;
        q.pad_top = p->pad_top + first;
        q.output = out;
        sieve_conv_run(isa, &q, (const uint8_t *)packed + HEADER + (size_t)g * stride, kernel_scratch);
        for (size_t i = 0; i < pixels_out; i++) memcpy(p->output + i * p->out_c + (size_t)g * og, out + i * og, (size_t)og);
    }
}
