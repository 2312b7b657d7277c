#!/usr/bin/env bash
# Runs every test: Swift unit tests (debug, small and fast), the kernel paths' bit-exactness
# property test (x86 natively, AArch64 under qemu), then the release build of the CLI and the
# Python suites that drive it on real data (independent int8 reference, accuracy, every kernel
# path, the peer benchmark, Embedded Swift build of SieveCore). Installs what it needs first on
# Debian (Tools/install-test-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bash Tools/install-test-deps.sh
echo "== swift test (unit tests)"
log=$(mktemp)
if ! swift test > "$log" 2>&1; then
    grep -E '✘|recorded an issue|error:' "$log" | head -n 60
    rm -f "$log"; exit 1
fi
tail -n 3 "$log"; rm -f "$log"
echo "== kernel paths against the scalar kernels (host, and AArch64 under qemu)"
bash Tools/test-kernels.sh
echo "== MUL, CONCAT and LUT paths against the scalar kernels (host, and AArch64 under qemu)"
bash Tools/test-elementwise.sh
echo "== the thread pool against one thread (host, ThreadSanitizer, AArch64 under qemu)"
bash Tools/test-threads.sh
echo "== frame preprocessing against docs/FRAMES.md (host, valgrind, AArch64 under qemu)"
bash Tools/test-preprocess.sh
echo "== frame I/O, the latest-frame reader and stop signals (host, valgrind, AArch64 under qemu)"
VALGRIND=1 bash Tools/test-io.sh
echo "== the quantiser's C loops against plain reference loops (cc, clang, sanitizers)"
bash Tools/test-quantize-kernels.sh
echo "== AddressSanitizer and UndefinedBehaviorSanitizer (Swift unit tests, C property tests)"
bash Tools/test-sanitizers.sh
echo "== the fuzz corpus replayed (libFuzzer targets under ASan)"
bash Tools/fuzz.sh replay
echo "== swift build -c release"
swift build -c release --product sieve 2>&1 | tail -n 3
swift build -c release --product sieve-run 2>&1 | tail -n 1
export SIEVE_BIN="$PWD/.build/release/sieve"
export SIEVE_RUN_BIN="$PWD/.build/release/sieve-run"
echo "== pytest Tests/python"
python3 -m pytest -q Tests/python
