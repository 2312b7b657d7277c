#!/usr/bin/env bash
# Installs the Debian packages named on the command line that are not installed yet (apt-get, as
# root or through sudo); does nothing when all are there.
set -euo pipefail
missing=()
for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
(( ${#missing[@]} == 0 )) && exit 0
as_root=()
if [[ $(id -u) != 0 ]]; then as_root=(sudo); fi
echo "installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" > /dev/null
