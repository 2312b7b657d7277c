#!/usr/bin/env bash
# AddressSanitizer and UndefinedBehaviorSanitizer over the runtime; any report fails the run.
#  1. swift test --sanitize=address: the Swift unit tests, with the C kernels SwiftPM builds under
#     ASan too (swiftc has no UBSan on Linux; Swift traps overflow and bounds errors itself).
#     Tests/sanitizers/lsan.supp lists the two known leaks, each with its reason.
#  2. The C property tests (every kernel path, the frame preprocessing, frame I/O and the
#     latest-frame reader) built with -fsanitize=address,undefined -fno-sanitize-recover=all.
set -euo pipefail
cd "$(dirname "$0")/.."
export LSAN_OPTIONS="suppressions=$PWD/Tests/sanitizers/lsan.supp"
export UBSAN_OPTIONS="print_stacktrace=1"
echo "== swift test --sanitize=address"
swift test --sanitize=address --scratch-path .build/asan 2>&1 | grep -E "Test run with|error:|ERROR" | tail -n 3

build=.build/sanitizers
mkdir -p "$build"
flags=(-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all -std=gnu11
       -ISources/CSieveKernels/include)
kernels=(Sources/CSieveKernels/*.c Sources/CSieveKernels/x86/*.c Sources/CSieveKernels/arm/*.c)
for test in kernels preprocess io; do
    cc "${flags[@]}" "${kernels[@]}" "Tests/kernels/check_$test.c" -lm -lpthread -o "$build/check_$test"
done
echo "== C property tests under ASan + UBSan"
"$build/check_kernels" 300 | tail -n 3
"$build/check_preprocess" 300 | tail -n 2
"$build/check_io" first "with space" "" last | tail -n 2
echo "== no sanitizer reports"
