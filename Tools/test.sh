#!/usr/bin/env bash
# Runs every test: Swift unit tests (debug, small and fast), then the release build of the CLI
# and the Python suites that drive it on real data (independent int8 reference, accuracy,
# Embedded Swift build of SieveCore).
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== swift test (unit tests)"
swift test 2>&1 | tail -n 40
echo "== swift build -c release"
swift build -c release --product sieve 2>&1 | tail -n 3
export SIEVE_BIN="$PWD/.build/release/sieve"
echo "== pytest Tests/python"
python3 -m pytest -q Tests/python
