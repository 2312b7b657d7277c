#!/usr/bin/env bash
# Cross-compiles the board program, sieve-run, for 64-bit Raspberry Pi OS (aarch64 Linux) from this
# host: the Swift sources (SieveCore, SieveRun, sieve-run) as Embedded Swift for aarch64, the C
# kernels (every NEON path, picked at run time) with Debian's aarch64-linux-gnu-gcc, linked by it
# into a glibc-dynamic and a fully static executable. Needs: swiftc (with the Embedded stdlib),
# gcc-aarch64-linux-gnu, libc6-dev-arm64-cross.
#
#   Firmware/build.sh [OUT]      default OUT: .build/firmware; prints the stripped sizes
#
# Why one module: each Swift module compiled in Embedded mode carries its own copy of the
# standard library code it uses; compiling the three as one (their imports of each other dropped)
# keeps one copy: 200 KB instead of 460 KB. Why -fPIC: without it the link fails with "copy
# relocation against non-copyable protected symbol" (../shared/ARCHITECTURE.md).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-.build/firmware}"
mkdir -p "$out/swift" "$out/c"
include=Sources/CSieveKernels/include

# The package's Swift modules as one: the same files, without `import SieveCore` / `import SieveRun`.
rm -f "$out"/swift/*.swift
for file in Sources/SieveCore/*.swift Sources/SieveRun/*.swift; do
    module=$(basename "$(dirname "$file")")
    sed -e '/^import SieveCore$/d' -e '/^import SieveRun$/d' "$file" > "$out/swift/${module}_$(basename "$file")"
done
sed -e '/^import SieveRun$/d' Sources/sieve-run/main.swift > "$out/swift/main.swift"  # top-level code: main.swift
swiftc -target aarch64-none-none-elf -enable-experimental-feature Embedded -wmo -Osize \
    -Xcc -fPIC -Xfrontend -function-sections -I "$include" -module-name sieve_run \
    -c "$out"/swift/*.swift -o "$out/sieve-run-swift.o"

# The C kernels (-O2: the hot loops are inline assembly, and -O3 adds 60 KB), each function in its own section for --gc-sections.
rm -f "$out"/c/*.o
for file in Sources/CSieveKernels/*.c Sources/CSieveKernels/arm/*.c; do
    aarch64-linux-gnu-gcc -O2 -std=gnu11 -fno-strict-aliasing -fPIC -ffunction-sections -fdata-sections \
        -I "$include" -c "$file" -o "$out/c/$(basename "$file" .c).o"
done

link() {  # link OUTPUT [extra flags]
    local output="$1"; shift
    aarch64-linux-gnu-gcc "$@" -Wl,--gc-sections -o "$output" "$out/sieve-run-swift.o" "$out"/c/*.o -lm -lpthread
    aarch64-linux-gnu-strip "$output"
}
link "$out/sieve-run"
link "$out/sieve-run-static" -static-pie

for binary in "$out/sieve-run" "$out/sieve-run-static"; do
    printf '%-32s %8d bytes stripped  (%s)\n' "$binary" "$(stat -c %s "$binary")" "$(file -b "$binary" | cut -d, -f1-2,5)"
done
