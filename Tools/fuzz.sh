#!/usr/bin/env bash
# libFuzzer over the blob loader (Tests/fuzz/FuzzBlob.swift: load, validate, run a frame) and
# over sieve-run's options, frame sizes and preprocessing (Tests/fuzz/FuzzFrames.swift), built with
# AddressSanitizer (Swift and C).
#
#   Tools/fuzz.sh replay           run every committed input once (Tools/test.sh does this)
#   Tools/fuzz.sh run [SECONDS]    fuzz both targets side by side (default 600 s each), then merge
#                                  what is new into Tests/fuzz/corpus (minimised: only inputs that
#                                  add coverage are kept)
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-replay}"
build=.build/fuzz
include=Sources/CSieveKernels/include
mkdir -p "$build/c" "$build/swift"

# The C kernels with coverage for the fuzzer and ASan.
for file in Sources/CSieveKernels/*.c Sources/CSieveKernels/x86/*.c Sources/CSieveKernels/arm/*.c; do
    object="$build/c/$(basename "$file" .c).o"
    [[ "$object" -nt "$file" ]] || clang -O1 -g -std=gnu11 -fsanitize=fuzzer-no-link,address -I"$include" -c "$file" -o "$object"
done
# SieveCore and SieveRun as one module (their imports of each other dropped, as Firmware/build.sh does).
rm -f "$build"/swift/*.swift
for file in Sources/SieveCore/*.swift Sources/SieveRun/*.swift; do
    sed -e '/^import SieveCore$/d' -e '/^import SieveRun$/d' "$file" > "$build/swift/$(basename "$(dirname "$file")")_$(basename "$file")"
done
for target in blob frames; do
    harness=Tests/fuzz/Fuzz${target^}.swift
    swiftc -sanitize=fuzzer,address -parse-as-library -O -g -I "$include" -module-name fuzz_$target \
        "$build"/swift/*.swift "$harness" "$build"/c/*.o -lm -o "$build/fuzz-$target" 2>&1 | grep -v "warning:" || true
    [[ -x "$build/fuzz-$target" ]]
done

case "$mode" in
replay)
    for target in blob frames; do
        count=$(ls Tests/fuzz/corpus/$target | wc -l)
        "$build/fuzz-$target" -runs=0 Tests/fuzz/corpus/$target 2>&1 | tail -n 1
        echo "fuzz-$target: $count committed inputs replayed, no crash, hang or sanitizer report"
    done
    ;;
run)
    seconds="${2:-600}"
    pids=()
    for target in blob frames; do
        rm -rf "$build/new-$target" && mkdir -p "$build/new-$target"
        "$build/fuzz-$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
            "$build/new-$target" Tests/fuzz/corpus/$target > "$build/run-$target.log" 2>&1 &
        pids+=($!)
    done
    status=0
    for pid in "${pids[@]}"; do wait "$pid" || status=1; done
    for target in blob frames; do
        grep -E "stat::number_of_executed_units|Done [0-9]+ runs|ERROR|SUMMARY" "$build/run-$target.log" || true
        "$build/fuzz-$target" -merge=1 Tests/fuzz/corpus/$target "$build/new-$target" > /dev/null 2>&1
        echo "fuzz-$target: corpus now $(ls Tests/fuzz/corpus/$target | wc -l) inputs"
    done
    exit $status
    ;;
*) echo "usage: $0 replay | run [SECONDS]" >&2; exit 2 ;;
esac
