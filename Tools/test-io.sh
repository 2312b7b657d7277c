#!/usr/bin/env bash
# Frame streams, stop signals, output pipes and the process arguments (Tests/kernels/check_io.c):
# built with the host cc and run natively, then cross-built for AArch64 and run under qemu-aarch64
# (threads, pipes and signals work under qemu-user). Each build is also made with
# -DSIEVE_ARGS_FROM_PROC, which reads the arguments from /proc/self/cmdline instead of taking them
# from the glibc constructor (the path other C libraries take). A few seconds in all.
#
#   Tools/test-io.sh [all|host|aarch64]   VALGRIND=1 also runs the host build under valgrind.
set -euo pipefail
cd "$(dirname "$0")/.."
which="${1:-all}"
case "$which" in all | host | aarch64) ;; *) echo "usage: $0 [all|host|aarch64]" >&2; exit 2 ;; esac
build=.build/io
mkdir -p "$build"
include=Sources/CSieveKernels/include
sources=(Sources/CSieveKernels/*.c Sources/CSieveKernels/x86/*.c Sources/CSieveKernels/arm/*.c Tests/kernels/check_io.c)
sysroot=/usr/aarch64-linux-gnu
# The arguments sieve_argv must give back: one with a space, an empty one.
arguments=(first "with space" "" last)

# build COMPILER NAME: every source compiled once (in parallel), then linked twice: check_io_NAME
# (arguments from the constructor) and check_io_NAME_proc (args.c again with -DSIEVE_ARGS_FROM_PROC).
build() {
    local compiler="$1" name="$2" objects=() pids=() object source pid
    rm -rf "${build:?}/$name" && mkdir -p "$build/$name"
    for source in "${sources[@]}"; do
        object="$build/$name/$(echo "$source" | tr / _).o"
        objects+=("$object")
        "$compiler" -O2 -std=gnu11 -Wall -I"$include" -c "$source" -o "$object" &
        pids+=($!)
    done
    "$compiler" -O2 -std=gnu11 -Wall -I"$include" -DSIEVE_ARGS_FROM_PROC -c Sources/CSieveKernels/args.c \
        -o "$build/$name/args_proc.o" &
    pids+=($!)
    for pid in "${pids[@]}"; do wait "$pid"; done
    "$compiler" "${objects[@]}" -lm -lpthread -o "$build/check_io_$name"
    local proc_objects=("${objects[@]/*Sources_CSieveKernels_args.c.o/$build/$name/args_proc.o}")
    "$compiler" "${proc_objects[@]}" -lm -lpthread -o "$build/check_io_${name}_proc"
}

# run_quietly LOG COMMAND...: the whole output only if it fails, else its first line (the arguments).
run_quietly() {
    local log="$1"
    shift
    if ! "$@" >"$log" 2>&1; then cat "$log"; echo "FAILED: $*" >&2; exit 1; fi
    head -n 1 "$log"
}

if [[ "$which" != aarch64 ]]; then
    echo "== host $(uname -m): cc -O2"
    build cc host
    echo "== host: arguments from the glibc constructor"
    "$build/check_io_host" "${arguments[@]}"
    echo "== host: arguments from /proc/self/cmdline"
    run_quietly "$build/host_proc.log" "$build/check_io_host_proc" "${arguments[@]}"
    if [[ -n "${VALGRIND:-}" ]]; then
        echo "== host under valgrind"
        valgrind -q --error-exitcode=9 --leak-check=full "$build/check_io_host" "${arguments[@]}"
    fi
fi
# On an AArch64 host (a Pi) the host run above was the AArch64 run.
if [[ "$which" == host || ( "$which" == all && "$(uname -m)" == aarch64 ) ]]; then
    echo "== io checks passed"
    exit 0
fi

echo "== aarch64: aarch64-linux-gnu-gcc -O2"
build aarch64-linux-gnu-gcc aarch64
echo "== aarch64 under qemu-aarch64: arguments from the glibc constructor"
qemu-aarch64 -L "$sysroot" "$build/check_io_aarch64" "${arguments[@]}"
echo "== aarch64 under qemu-aarch64: arguments from /proc/self/cmdline"
run_quietly "$build/aarch64_proc.log" qemu-aarch64 -L "$sysroot" "$build/check_io_aarch64_proc" "${arguments[@]}"
echo "== io checks passed"
