#!/usr/bin/env bash
# Bit-exactness of the elementwise kernels (MUL, ADD, CONCAT, LUT, MAX_POOL, the average pools) of every path against the scalar
# kernels (Tests/kernels/check_elementwise.c): natively, then cross-built for AArch64 under
# qemu-aarch64 on cortex-a72 (neon) and max (neon, neondot, i8mm), as Tools/test-kernels.sh does.
#
#   Tools/test-elementwise.sh [COUNT [WHICH]]   COUNT random cases (default 2000); WHICH: all, host, aarch64
set -euo pipefail
cd "$(dirname "$0")/.."
source Tools/c-tests.sh
c_test_setup 2000 "$@"
test=Tests/kernels/check_elementwise.c

if [[ "$which" != aarch64 ]]; then
    echo "== host $(uname -m): cc -O2"
    cc -O2 -std=gnu11 -Wall -I"$include" "${kernels[@]}" "$test" -lm -o "$build/check_elementwise_host"
    "$build/check_elementwise_host" "$count" "${seed[@]}"
fi
if c_test_host_only; then exit 0; fi
echo "== aarch64: aarch64-linux-gnu-gcc -O2"
aarch64-linux-gnu-gcc -O2 -std=gnu11 -Wall -I"$include" "${kernels[@]}" "$test" -lm -o "$build/check_elementwise_aarch64"
for cpu in cortex-a72 max; do
    echo "== check_elementwise_aarch64 under qemu-aarch64 -cpu $cpu"
    qemu-aarch64 -L "$sysroot" -cpu "$cpu" "$build/check_elementwise_aarch64" "$count" "${seed[@]}"
done
echo "== every elementwise path matches the scalar kernels"
