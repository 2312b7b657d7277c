// The i8mm path's peak int8 MAC rate: its multiply-accumulate instruction in a register-only loop.
#if defined(__aarch64__)
#include <arm_neon.h>
#include "sieve_target.h"

SIEVE_TARGET_BEGIN("arch=armv8.2-a+dotprod+i8mm")

#include "neon_common.h"

// ---- Peak MAC rate ---------------------------------------------------------------------------------
// 32 smmla per iteration into 30 accumulators: 32 MACs each (2x2 outputs x 8).
uint64_t sieve_peak_macs__i8mm(uint64_t iterations) {
    if (iterations == 0) return 0;
    uint64_t n = iterations;
    __asm__ volatile(
        ".arch_extension i8mm\n"
        "movi v30.16b, #1\n movi v31.16b, #2\n"
        "1:\n"
        "smmla v0.4s, v30.16b, v31.16b\n smmla v1.4s, v30.16b, v31.16b\n smmla v2.4s, v30.16b, v31.16b\n smmla v3.4s, v30.16b, v31.16b\n"
        "smmla v4.4s, v30.16b, v31.16b\n smmla v5.4s, v30.16b, v31.16b\n smmla v6.4s, v30.16b, v31.16b\n smmla v7.4s, v30.16b, v31.16b\n"
        "smmla v8.4s, v30.16b, v31.16b\n smmla v9.4s, v30.16b, v31.16b\n smmla v10.4s, v30.16b, v31.16b\n smmla v11.4s, v30.16b, v31.16b\n"
        "smmla v12.4s, v30.16b, v31.16b\n smmla v13.4s, v30.16b, v31.16b\n smmla v14.4s, v30.16b, v31.16b\n smmla v15.4s, v30.16b, v31.16b\n"
        "smmla v16.4s, v30.16b, v31.16b\n smmla v17.4s, v30.16b, v31.16b\n smmla v18.4s, v30.16b, v31.16b\n smmla v19.4s, v30.16b, v31.16b\n"
        "smmla v20.4s, v30.16b, v31.16b\n smmla v21.4s, v30.16b, v31.16b\n smmla v22.4s, v30.16b, v31.16b\n smmla v23.4s, v30.16b, v31.16b\n"
        "smmla v24.4s, v30.16b, v31.16b\n smmla v25.4s, v30.16b, v31.16b\n smmla v26.4s, v30.16b, v31.16b\n smmla v27.4s, v30.16b, v31.16b\n"
        "smmla v28.4s, v30.16b, v31.16b\n smmla v29.4s, v30.16b, v31.16b\n smmla v0.4s, v30.16b, v31.16b\n smmla v1.4s, v30.16b, v31.16b\n"
        "subs %0, %0, #1\n b.ne 1b\n"
        : "+r"(n)
        :
        : "cc", "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9", "v10", "v11", "v12", "v13", "v14", "v15", "v16",
          "v17", "v18", "v19", "v20", "v21", "v22", "v23", "v24", "v25", "v26", "v27", "v28", "v29", "v30", "v31");
    return iterations * 32 * 32;
}

SIEVE_TARGET_END
#endif
