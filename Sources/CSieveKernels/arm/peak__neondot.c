// The neondot path's peak int8 MAC rate: its multiply-accumulate instruction in a register-only loop.
#if defined(__aarch64__)
#include <arm_neon.h>
#include "sieve_target.h"

SIEVE_TARGET_BEGIN("arch=armv8.2-a+dotprod")

#include "neon_common.h"

// ---- Peak MAC rate ---------------------------------------------------------------------------------
// 32 sdot per iteration into 30 accumulators (v0...v29; v0 and v1 twice, 30 instructions apart),
// sources v30, v31: 16 MACs each.
uint64_t sieve_peak_macs__neondot(uint64_t iterations) {
    if (iterations == 0) return 0;
    uint64_t n = iterations;
    __asm__ volatile(
        ".arch_extension dotprod\n"
        "movi v30.16b, #1\n movi v31.16b, #2\n"
        "1:\n"
        "sdot v0.4s, v30.16b, v31.16b\n sdot v1.4s, v30.16b, v31.16b\n sdot v2.4s, v30.16b, v31.16b\n sdot v3.4s, v30.16b, v31.16b\n"
        "sdot v4.4s, v30.16b, v31.16b\n sdot v5.4s, v30.16b, v31.16b\n sdot v6.4s, v30.16b, v31.16b\n sdot v7.4s, v30.16b, v31.16b\n"
        "sdot v8.4s, v30.16b, v31.16b\n sdot v9.4s, v30.16b, v31.16b\n sdot v10.4s, v30.16b, v31.16b\n sdot v11.4s, v30.16b, v31.16b\n"
        "sdot v12.4s, v30.16b, v31.16b\n sdot v13.4s, v30.16b, v31.16b\n sdot v14.4s, v30.16b, v31.16b\n sdot v15.4s, v30.16b, v31.16b\n"
        "sdot v16.4s, v30.16b, v31.16b\n sdot v17.4s, v30.16b, v31.16b\n sdot v18.4s, v30.16b, v31.16b\n sdot v19.4s, v30.16b, v31.16b\n"
        "sdot v20.4s, v30.16b, v31.16b\n sdot v21.4s, v30.16b, v31.16b\n sdot v22.4s, v30.16b, v31.16b\n sdot v23.4s, v30.16b, v31.16b\n"
        "sdot v24.4s, v30.16b, v31.16b\n sdot v25.4s, v30.16b, v31.16b\n sdot v26.4s, v30.16b, v31.16b\n sdot v27.4s, v30.16b, v31.16b\n"
        "sdot v28.4s, v30.16b, v31.16b\n sdot v29.4s, v30.16b, v31.16b\n sdot v0.4s, v30.16b, v31.16b\n sdot v1.4s, v30.16b, v31.16b\n"
        "subs %0, %0, #1\n b.ne 1b\n"
        : "+r"(n)
        :
        : "cc", "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9", "v10", "v11", "v12", "v13", "v14", "v15", "v16",
          "v17", "v18", "v19", "v20", "v21", "v22", "v23", "v24", "v25", "v26", "v27", "v28", "v29", "v30", "v31");
    return iterations * 32 * 16;
}

SIEVE_TARGET_END
#endif
