#!/usr/bin/env bash
# Installs what Tools/test.sh needs on Debian 12 when it is missing: the Debian packages (the data
# set, cross compilers, qemu, ffmpeg, valgrind, ...) and the Python packages of
# Tools/requirements-test.txt and Tools/requirements-nodeps.txt. Does nothing when everything is there. Needs root (or sudo) only
# when something has to be installed.
set -euo pipefail
cd "$(dirname "$0")/.."
debian=(dataset-fashion-mnist protobuf-compiler zlib1g-dev libssl-dev libopenblas-dev libjpeg62-turbo-dev libpng-dev gcc libc6-dev ffmpeg valgrind qemu-user
        gcc-aarch64-linux-gnu libc6-dev-arm64-cross gcc-arm-linux-gnueabihf libc6-dev-armhf-cross systemd file)
missing=()
for package in "${debian[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
as_root=()
if [[ $(id -u) != 0 ]]; then as_root=(sudo); fi
if (( ${#missing[@]} > 0 )); then
    echo "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    "${as_root[@]}" apt-get update -qq
    "${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" > /dev/null
fi
if ! python3 Tools/check-requirements.py Tools/requirements-test.txt; then
    echo "installing Python packages: Tools/requirements-test.txt"
    python3 -m pip install -q --disable-pip-version-check -r Tools/requirements-test.txt
fi
if ! python3 Tools/check-requirements.py Tools/requirements-nodeps.txt; then
    echo "installing Python packages without their dependencies: Tools/requirements-nodeps.txt"
    python3 -m pip install -q --disable-pip-version-check --no-deps -r Tools/requirements-nodeps.txt
fi
