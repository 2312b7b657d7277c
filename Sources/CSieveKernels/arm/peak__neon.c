// The neon path's peak int8 MAC rate: its multiply-accumulate instruction in a register-only loop.
#if defined(__aarch64__)
#include <arm_neon.h>
#include "sieve_target.h"

SIEVE_TARGET_BEGIN("arch=armv8-a+simd")

#include "neon_common.h"

// ---- Peak MAC rate ---------------------------------------------------------------------------------
// 32 smlal (8 int8 x int8 products into int16 lanes) per iteration into 30 accumulators.
uint64_t sieve_peak_macs__neon(uint64_t iterations) {
    if (iterations == 0) return 0;
    uint64_t n = iterations;
    __asm__ volatile(
        "movi v30.16b, #1\n movi v31.16b, #2\n"
        "1:\n"
        "smlal v0.8h, v30.8b, v31.8b\n smlal v1.8h, v30.8b, v31.8b\n smlal v2.8h, v30.8b, v31.8b\n smlal v3.8h, v30.8b, v31.8b\n"
        "smlal v4.8h, v30.8b, v31.8b\n smlal v5.8h, v30.8b, v31.8b\n smlal v6.8h, v30.8b, v31.8b\n smlal v7.8h, v30.8b, v31.8b\n"
        "smlal v8.8h, v30.8b, v31.8b\n smlal v9.8h, v30.8b, v31.8b\n smlal v10.8h, v30.8b, v31.8b\n smlal v11.8h, v30.8b, v31.8b\n"
        "smlal v12.8h, v30.8b, v31.8b\n smlal v13.8h, v30.8b, v31.8b\n smlal v14.8h, v30.8b, v31.8b\n smlal v15.8h, v30.8b, v31.8b\n"
        "smlal v16.8h, v30.8b, v31.8b\n smlal v17.8h, v30.8b, v31.8b\n smlal v18.8h, v30.8b, v31.8b\n smlal v19.8h, v30.8b, v31.8b\n"
        "smlal v20.8h, v30.8b, v31.8b\n smlal v21.8h, v30.8b, v31.8b\n smlal v22.8h, v30.8b, v31.8b\n smlal v23.8h, v30.8b, v31.8b\n"
        "smlal v24.8h, v30.8b, v31.8b\n smlal v25.8h, v30.8b, v31.8b\n smlal v26.8h, v30.8b, v31.8b\n smlal v27.8h, v30.8b, v31.8b\n"
        "smlal v28.8h, v30.8b, v31.8b\n smlal v29.8h, v30.8b, v31.8b\n smlal v0.8h, v30.8b, v31.8b\n smlal v1.8h, v30.8b, v31.8b\n"
        "subs %0, %0, #1\n b.ne 1b\n"
        : "+r"(n)
        :
        : "cc", "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9", "v10", "v11", "v12", "v13", "v14", "v15", "v16",
          "v17", "v18", "v19", "v20", "v21", "v22", "v23", "v24", "v25", "v26", "v27", "v28", "v29", "v30", "v31");
    return iterations * 32 * 8;
}

SIEVE_TARGET_END
#endif
