#!/usr/bin/env bash
# Cross-compiles the board program, sieve-run, for Raspberry Pi OS from this host: the Swift
# sources (SieveCore, SieveRun, sieve-run) as Embedded Swift, the C kernels with Debian's GNU cross
# compiler, linked by it into Linux executables:
#   sieve-run            aarch64 (64-bit Raspberry Pi OS), glibc-dynamic; every NEON path, picked at run time
#   sieve-run-static     the same, fully static (static-pie): runs without the board's libc
#   sieve-run-armv7      armv7 hard-float (32-bit Raspberry Pi OS), glibc-dynamic; scalar kernels
# Needs swiftc (with the Embedded stdlib), gcc-aarch64-linux-gnu and libc6-dev-arm64-cross, and for
# armv7 gcc-arm-linux-gnueabihf and libc6-dev-armhf-cross (skipped, and said so, when missing).
#
#   Firmware/build.sh [OUT]      default OUT: .build/firmware; prints the stripped sizes
#
# Why one module: each Swift module compiled in Embedded mode carries its own copy of the standard
# library code it uses; compiling the three as one (their imports of each other dropped) keeps one
# copy: 200 KB instead of 460 KB. Why -fPIC: without it the link fails with "copy relocation
# against non-copyable protected symbol"; for the same reason the
# static binary is static-pie. Why -mfloat-abi=hard on armv7: the toolchain ships the Embedded
# stdlib for armv7-none-none-eabi only, whose objects pass floats in integer registers; without the
# flag the armhf link fails ("uses VFP register arguments, sieve-run-swift.o does not").
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-.build/firmware}"
include=Sources/CSieveKernels/include
mkdir -p "$out/swift"

# The package's Swift modules as one: the same files, without `import SieveCore` / `import SieveRun`.
rm -f "$out"/swift/*.swift
for file in Sources/SieveCore/*.swift Sources/SieveRun/*.swift; do
    module=$(basename "$(dirname "$file")")
    sed -e '/^import SieveCore$/d' -e '/^import SieveRun$/d' "$file" > "$out/swift/${module}_$(basename "$file")"
done
sed -e '/^import SieveRun$/d' Sources/sieve-run/main.swift > "$out/swift/main.swift"  # top-level code: main.swift

# build NAME SWIFT_TARGET GCC_PREFIX [swiftc flags...]: objects in $out/NAME.
build() {
    local name=$1 target=$2 gcc=$3; shift 3
    mkdir -p "$out/$name"
    rm -f "$out/$name"/*.o
    swiftc -target "$target" -enable-experimental-feature Embedded -wmo -Osize -Xcc -fPIC \
        -Xfrontend -function-sections "$@" -I "$include" -module-name sieve_run \
        -c "$out"/swift/*.swift -o "$out/$name/sieve-run-swift.o"
    # The C kernels (-O2: the hot loops are inline assembly, and -O3 adds 60 KB), each function
    # in its own section for --gc-sections. arm/ holds the AArch64 paths (empty elsewhere). The
    # files that only parse arguments, read frames and talk to the OS, the thread pool's bookkeeping
    # and the blob's checksum (once, at load) are not hot: -Os.
    local file level
    for file in Sources/CSieveKernels/*.c Sources/CSieveKernels/arm/*.c; do
        case "$(basename "$file")" in args.c|io.c|os.c|latest.c|threads.c|crc32c.c) level=-Os ;; *) level=-O2 ;; esac
        "$gcc-gcc" "$level" -std=gnu11 -fno-strict-aliasing -fPIC -ffunction-sections -fdata-sections \
            -I "$include" -c "$file" -o "$out/$name/$(basename "$file" .c).o"
    done
}

# link NAME GCC_PREFIX OUTPUT [gcc flags...]
link() {
    local name=$1 gcc=$2 output=$3; shift 3
    "$gcc-gcc" "$@" -Wl,--gc-sections -o "$output" "$out/$name"/*.o -lm -lpthread
    "$gcc-strip" "$output"
}

build aarch64 aarch64-none-none-elf aarch64-linux-gnu
# AArch64 segments aligned to 16 KB, not the linker's default 64 KB: a segment's file offset must
# match its address modulo the alignment, so the default pads the file with up to 64 KB of zeros.
# 16 KB pages are the largest a Raspberry Pi kernel uses (the Pi 5's; the Pi 3 and 4 use 4 KB).
pages=-Wl,-z,max-page-size=16384
link aarch64 aarch64-linux-gnu "$out/sieve-run" "$pages"
link aarch64 aarch64-linux-gnu "$out/sieve-run-static" -static-pie "$pages"
binaries=("$out/sieve-run" "$out/sieve-run-static")
if command -v arm-linux-gnueabihf-gcc >/dev/null; then
    build armv7 armv7-none-none-eabi arm-linux-gnueabihf -Xcc -mfloat-abi=hard -Xcc -mfpu=neon-vfpv4
    link armv7 arm-linux-gnueabihf "$out/sieve-run-armv7"
    binaries+=("$out/sieve-run-armv7")
else
    echo "armv7: skipped, arm-linux-gnueabihf-gcc is not installed (apt-get install gcc-arm-linux-gnueabihf libc6-dev-armhf-cross)"
fi

for binary in "${binaries[@]}"; do
    printf '%-32s %8d bytes stripped  (%s)\n' "$binary" "$(stat -c %s "$binary")" "$(file -b "$binary" | cut -d, -f1-2,5)"
done
