#!/usr/bin/env bash
# Bit-exactness of every kernel path against the scalar kernels (Tests/kernels/check_kernels.c):
# built with the host cc and run natively, then cross-built for AArch64 and run under qemu-aarch64
# on four CPU models (v8.0 Cortex-A53 and A72: neon; v8.2 Cortex-A76: neondot; max: i8mm too).
# The host and AArch64 kernels are also built with clang -O3 (as SwiftPM builds them) when clang is
# there (for AArch64: when it can target it).
#
#   Tools/test-kernels.sh [COUNT [WHICH]]   COUNT random cases per op and path (default 2000, about
#                                           a minute); WHICH: all (default), host or aarch64.
#                                           SEED=N picks another deterministic set of cases.
set -euo pipefail
cd "$(dirname "$0")/.."
source Tools/c-tests.sh
c_test_setup 2000 "$@"
test=Tests/kernels/check_kernels.c

if [[ "$which" != aarch64 ]]; then
    echo "== host $(uname -m): cc -O2"
    cc -O2 -std=gnu11 -Wall -I"$include" "${kernels[@]}" "$test" -lm -o "$build/check_kernels_host"
    "$build/check_kernels_host" "$count" "${seed[@]}"
    # clang -O3, as SwiftPM builds the kernels: the two compilers lower some intrinsics differently
    # (clang once turned vpmuldq into a 64 x 64-bit multiply), so both builds must match scalar.
    if command -v clang >/dev/null; then
        echo "== host $(uname -m): clang -O3"
        clang -O3 -std=gnu11 -Wall -fno-strict-aliasing -I"$include" "${kernels[@]}" "$test" -lm -o "$build/check_kernels_host_clang"
        "$build/check_kernels_host_clang" "$count" "${seed[@]}"
    fi
    # The benchmark programs of Tools/bench keep building; fuse-ops checks on the way that a depthwise
    # conv run in row bands over a window of its input rows gives the whole run's bytes.
    echo "== host: Tools/bench programs; fuse-ops banded = whole on scalar and the best path"
    for bench in kernel-ops fuse-ops; do
        cc -O2 -std=gnu11 -Wall -fno-strict-aliasing -I"$include" "${kernels[@]}" "Tools/bench/$bench.c" -lm -lpthread -o "$build/$bench"
    done
    "$build/fuse-ops" scalar 1 > /dev/null
    "$build/fuse-ops" best 3 > /dev/null
fi
# On an AArch64 host (a Pi) the host run above was the AArch64 run.
if c_test_host_only; then
    echo "== every path of this host matches the scalar kernels"
    exit 0
fi

echo "== aarch64: aarch64-linux-gnu-gcc -O2"
aarch64-linux-gnu-gcc -O2 -std=gnu11 -Wall -I"$include" "${kernels[@]}" "$test" -lm -o "$build/check_kernels_aarch64"
binaries=("$build/check_kernels_aarch64")

# The same under clang (SwiftPM's compiler): objects from clang, linked by the cross gcc.
if command -v clang >/dev/null && echo 'int x;' | clang --target=aarch64-linux-gnu -x c -c - -o /dev/null 2>/dev/null; then
    echo "== aarch64: clang -O3 ($(clang --version | head -n 1))"
    rm -rf "$build/clang" && mkdir -p "$build/clang"
    for source in "${kernels[@]}" "$test"; do
        object="$build/clang/$(echo "$source" | tr / _).o"
        clang --target=aarch64-linux-gnu -O3 -std=gnu11 -Wall -fno-strict-aliasing -isystem "$sysroot/include" \
            -I"$include" -c "$source" -o "$object"
    done
    aarch64-linux-gnu-gcc "$build"/clang/*.o -lm -o "$build/check_kernels_aarch64_clang"
    binaries+=("$build/check_kernels_aarch64_clang")
fi

# CPU model, the non-scalar paths it must have, the path sieve_isa_best() must pick.
cpus=("cortex-a53 neon neon" "cortex-a72 neon neon" "cortex-a76 neon,neondot neondot" "max neon,neondot,i8mm i8mm")
for binary in "${binaries[@]}"; do
    for entry in "${cpus[@]}"; do
        read -r cpu expect best <<<"$entry"
        # The clang build runs on the two CPUs that cover every path.
        if [[ "$binary" == *_clang && "$cpu" != cortex-a72 && "$cpu" != max ]]; then continue; fi
        echo "== $(basename "$binary") under qemu-aarch64 -cpu $cpu"
        qemu-aarch64 -L "$sysroot" -cpu "$cpu" "$binary" "$count" "${seed[@]}" --expect="$expect" --best="$best"
    done
done
echo "== all kernel paths match the scalar kernels"
