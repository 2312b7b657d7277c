#!/usr/bin/env bash
# The thread pool (Tests/kernels/check_threads.c): every op split over 2, 3, 4 and 8 threads equals
# one thread, across thousands of back-to-back jobs, pauses past the spin budget and busy threads
# competing for the cores; natively, under ThreadSanitizer (gcc's libtsan), and for AArch64 under
# qemu on a neon and a neondot CPU.
#
#   Tools/test-threads.sh [JOBS [WHICH]]   JOBS per thread count (default 3000; a tenth under TSan
#                                          and qemu); WHICH: all (default), host or aarch64.
set -euo pipefail
cd "$(dirname "$0")/.."
source Tools/c-tests.sh
c_test_setup 3000 "$@"
test=Tests/kernels/check_threads.c
few=$(( count / 10 > 0 ? count / 10 : 1 ))

if [[ "$which" != aarch64 ]]; then
    echo "== host $(uname -m): cc -O2"
    cc -O2 -std=gnu11 -Wall -I"$include" "${kernels[@]}" "$test" -lm -lpthread -o "$build/check_threads_host"
    "$build/check_threads_host" "$count"
    echo "== host $(uname -m): gcc -fsanitize=thread"
    gcc -O1 -g -fsanitize=thread -std=gnu11 -Wall -I"$include" "${kernels[@]}" "$test" -lm -lpthread \
        -o "$build/check_threads_tsan"
    TSAN_OPTIONS="halt_on_error=1 exitcode=66" "$build/check_threads_tsan" "$few"
fi
if c_test_host_only; then exit 0; fi

aarch64-linux-gnu-gcc -O2 -std=gnu11 -Wall -I"$include" "${kernels[@]}" "$test" -lm -lpthread \
    -o "$build/check_threads_aarch64"
for cpu in cortex-a72 cortex-a76; do
    echo "== aarch64 under qemu-aarch64 -cpu $cpu"
    qemu-aarch64 -L "$sysroot" -cpu "$cpu" "$build/check_threads_aarch64" "$few" --threads=2,4
done
echo "== the pool matches one thread everywhere"
