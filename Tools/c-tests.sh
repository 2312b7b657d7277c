# Sourced by Tools/test-kernels.sh and Tools/test-preprocess.sh: the arguments and paths of a C
# property test that runs natively and, cross-built for AArch64, under qemu.
#
#   c_test_setup DEFAULT_COUNT "$@"   sets count, which (all, host or aarch64), seed, build,
#                                     include, kernels (every C source of the runtime), sysroot
#   c_test_host_only                  true when no AArch64 run is wanted (or the host is AArch64)
c_test_setup() {
    local default_count="$1"
    shift
    count="${1:-$default_count}"
    which="${2:-all}"
    case "$which" in all | host | aarch64) ;; *) echo "usage: $0 [COUNT [all|host|aarch64]]" >&2; exit 2 ;; esac
    seed=()
    if [[ -n "${SEED:-}" ]]; then seed=("--seed=$SEED"); fi
    build=.build/kernels
    mkdir -p "$build"
    include=Sources/CSieveKernels/include
    kernels=(Sources/CSieveKernels/*.c Sources/CSieveKernels/x86/*.c Sources/CSieveKernels/arm/*.c)
    sysroot=/usr/aarch64-linux-gnu
}

c_test_host_only() {
    [[ "$which" == host || ( "$which" == all && "$(uname -m)" == aarch64 ) ]]
}
