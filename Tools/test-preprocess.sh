#!/usr/bin/env bash
# Frame preprocessing against docs/FRAMES.md (Tests/kernels/check_preprocess.c): built with the host cc
# and run natively (with timings; on x86 also without the AVX-512 and AVX2 builds), then, when valgrind is
# installed, a smaller run under valgrind on exactly sized heap buffers, then cross-built for
# AArch64 and run under qemu-aarch64 (Cortex-A72).
#
#   Tools/test-preprocess.sh [COUNT [WHICH]]   COUNT random cases (default 3000, under a minute);
#                                              WHICH: all (default), host or aarch64.
#                                              SEED=N picks another deterministic set of cases.
set -euo pipefail
cd "$(dirname "$0")/.."
source Tools/c-tests.sh
c_test_setup 3000 "$@"
test=Tests/kernels/check_preprocess.c

if [[ "$which" != aarch64 ]]; then
    echo "== host $(uname -m): cc -O2"
    cc -O2 -std=gnu11 -Wall -I"$include" "${kernels[@]}" "$test" -lm -lpthread -o "$build/check_preprocess_host"
    "$build/check_preprocess_host" "$count" "${seed[@]}" --bench
    # The Swift toolchain builds the kernels with clang, which takes clang-only builtins (the clamp).
    if command -v clang >/dev/null; then
        echo "== host $(uname -m): clang -O2 (as swift build compiles the kernels)"
        clang -O2 -std=gnu11 -Wall -I"$include" "${kernels[@]}" "$test" -lm -lpthread -o "$build/check_preprocess_clang"
        "$build/check_preprocess_clang" "$((count / 3 + 1))" "${seed[@]}"
    fi
    if [[ "$(uname -m)" == x86_64 ]] && grep -qw avx512vbmi /proc/cpuinfo; then
        echo "== host without the AVX-512 VBMI build of the 4:2:0 R, G, B path (its AVX2 build)"
        cc -O2 -std=gnu11 -Wall -DSIEVE_PREPROCESS_NO_AVX512 -I"$include" "${kernels[@]}" "$test" -lm -lpthread -o "$build/check_preprocess_avx2"
        "$build/check_preprocess_avx2" "$((count / 3 + 1))" "${seed[@]}"
    fi
    if [[ "$(uname -m)" == x86_64 ]]; then
        echo "== host without the AVX2 build of the 4:2:0 R, G, B path (its SSE2 build)"
        cc -O2 -std=gnu11 -Wall -DSIEVE_PREPROCESS_NO_AVX2 -I"$include" "${kernels[@]}" "$test" -lm -lpthread -o "$build/check_preprocess_sse2"
        "$build/check_preprocess_sse2" "$((count / 3 + 1))" "${seed[@]}"
    fi
    if command -v valgrind >/dev/null; then
        echo "== host under valgrind (heap buffers, $((count / 10 + 1)) cases)"
        valgrind -q --error-exitcode=1 "$build/check_preprocess_host" "$((count / 10 + 1))" "${seed[@]}" --heap --no-colour
    fi
fi
if c_test_host_only; then
    echo "== preprocessing matches docs/FRAMES.md on this host"
    exit 0
fi

echo "== aarch64: aarch64-linux-gnu-gcc -O2, under qemu-aarch64 -cpu cortex-a72"
aarch64-linux-gnu-gcc -O2 -std=gnu11 -Wall -I"$include" "${kernels[@]}" "$test" -lm -lpthread -o "$build/check_preprocess_aarch64"
qemu-aarch64 -L "$sysroot" -cpu cortex-a72 "$build/check_preprocess_aarch64" "$count" "${seed[@]}"
echo "== preprocessing matches docs/FRAMES.md on x86 and AArch64"
