#!/usr/bin/env bash
# The quantiser's C loops (Tools/CQuantizeKernels: bias correction's candidate sweep and outputs,
# calibration histograms, the float depthwise conv) against plain reference loops (Tests/quantize/check_quantize_kernels.c):
# built with cc -O2,
# with clang -O3 as swift build compiles them (its AVX2 clone where the CPU has AVX2), and under
# AddressSanitizer and UndefinedBehaviorSanitizer.   Tools/test-quantize-kernels.sh [CASES]
set -euo pipefail
cd "$(dirname "$0")/.."
cases=${1:-3000}
build=.build/c-tests
mkdir -p "$build"
sources=(Tools/CQuantizeKernels/quantize_kernels.c Tests/quantize/check_quantize_kernels.c)
include=Tools/CQuantizeKernels/include
kernels_include=Sources/CSieveKernels/include  # sieve_requantize
cc -O2 -std=gnu11 -Wall -Werror -ffp-contract=off -I"$include" -I"$kernels_include" "${sources[@]}" -lm -o "$build/check_quantize_kernels"
"$build/check_quantize_kernels" "$cases"
clang -O3 -std=gnu11 -Wall -Werror -fno-strict-aliasing -ffp-contract=off -I"$include" -I"$kernels_include" "${sources[@]}" -lm -o "$build/check_quantize_kernels_clang"
"$build/check_quantize_kernels_clang" "$cases"
cc -O1 -g -fno-omit-frame-pointer -std=gnu11 -ffp-contract=off -fsanitize=address,undefined -fno-sanitize-recover=all -I"$include" -I"$kernels_include" "${sources[@]}" -lm -o "$build/check_quantize_kernels_san"
"$build/check_quantize_kernels_san" "$((cases / 3 + 1))"
