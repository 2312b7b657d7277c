// Packing a conv or depthwise op for a path, shared by the kernel benchmark programs
// (Tools/bench/kernel-ops.c, Tools/board/board-ops.c): the packed weights and the scratch, in
// buffers from the program's own allocator.
#ifndef BENCH_OPS_H
#define BENCH_OPS_H

#include "sieve_kernels.h"

static void pack_conv_op(int32_t isa, const sieve_conv_params *p, int depthwise, void *(*alloc)(size_t), void **packed,
                         void **scratch) {
    if (depthwise) {
        *packed = alloc(sieve_dwconv_packed_size(isa, p));
        sieve_dwconv_pack(isa, p, *packed);
        *scratch = alloc(sieve_dwconv_scratch_size(isa, p));
    } else {
        *packed = alloc(sieve_conv_packed_size(isa, p));
        sieve_conv_pack(isa, p, *packed);
        *scratch = alloc(sieve_conv_scratch_size(isa, p));
    }
}

#endif
