#!/usr/bin/env bash
# Installs what Tools/test.sh needs on Debian 12 when it is missing: the Debian packages (the data
# set, cross compilers, qemu, ffmpeg, valgrind, ...) and the Python packages of
# Tools/requirements-test.txt and Tools/requirements-nodeps.txt. Does nothing when everything is
# there. Needs root (or sudo) only when something has to be installed.
set -euo pipefail
cd "$(dirname "$0")/.."
# The host build's libraries (Tools/build-deps.txt), then what the tests use.
bash Tools/install-debian.sh $(cat Tools/build-deps.txt) \
    dataset-fashion-mnist protobuf-compiler gcc libc6-dev ffmpeg valgrind qemu-user \
    gcc-aarch64-linux-gnu libc6-dev-arm64-cross gcc-arm-linux-gnueabihf libc6-dev-armhf-cross systemd file llvm
if ! python3 Tools/check-requirements.py Tools/requirements-test.txt; then
    echo "installing Python packages: Tools/requirements-test.txt"
    python3 -m pip install -q --disable-pip-version-check -r Tools/requirements-test.txt
fi
if ! python3 Tools/check-requirements.py Tools/requirements-nodeps.txt; then
    echo "installing Python packages without their dependencies: Tools/requirements-nodeps.txt"
    python3 -m pip install -q --disable-pip-version-check --no-deps -r Tools/requirements-nodeps.txt
fi
