#!/usr/bin/env bash
# Installs sieve-run and the camera service on a Raspberry Pi OS 64-bit board over ssh:
#
#   Firmware/install.sh [--no-build] [--no-start] USER@BOARD MODEL.sieve
#
# Builds the aarch64 binary (Firmware/build.sh) unless --no-build, copies it with the camera
# script, the systemd unit, /etc/default/sieve (an existing one is kept) and the model, creates the
# unprivileged `sieve` user (in the `video` group), then enables and starts the service (enables
# only, with --no-start). USER needs sudo on the board. SSH and SCP override the commands used;
# SIEVE_FIRMWARE the directory holding the built sieve-run (default .build/firmware).
set -euo pipefail
cd "$(dirname "$0")/.."
ssh_command=${SSH:-ssh}
scp_command=${SCP:-scp}
firmware=${SIEVE_FIRMWARE:-.build/firmware}
build=1 start=1
while [[ $# -gt 0 && $1 == --* ]]; do
    case $1 in
        --no-build) build=0 ;;
        --no-start) start=0 ;;
        *) echo "error: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
if [[ $# -ne 2 ]]; then
    echo "usage: Firmware/install.sh [--no-build] [--no-start] USER@BOARD MODEL.sieve" >&2
    exit 2
fi
board=$1 model=$2
# A board name starting with '-' would be read by ssh as an option.
[[ $board != -* ]] || { echo "error: the board '$board' starts with '-'" >&2; exit 2; }
[[ -f $model ]] || { echo "error: no model at $model" >&2; exit 1; }
if [[ $build == 1 ]]; then bash Firmware/build.sh "$firmware"; fi
[[ -x $firmware/sieve-run ]] || { echo "error: no sieve-run in $firmware (run Firmware/build.sh)" >&2; exit 1; }

arch=$($ssh_command "$board" uname -m)
[[ $arch == aarch64 ]] || { echo "error: $board is $arch; this sieve-run is for aarch64 (64-bit Raspberry Pi OS)" >&2; exit 1; }

# No local value reaches a remote shell: the remote commands are fixed text, the model is copied
# to a fixed name (scp takes the local name as an argument, never through a shell), and the one
# setting the installation script needs is passed as an argument (sh -s -- VALUE).
staging=/tmp/sieve-install
$ssh_command "$board" "rm -rf $staging && mkdir -p $staging"
$scp_command -q "$firmware/sieve-run" Firmware/sieve-camera.sh Firmware/sieve.service Firmware/sieve.default \
    "$board:$staging/"
$scp_command -q -- "$model" "$board:$staging/model.sieve"
# Every file is replaced by rename (install to NAME.new, then mv): a running sieve-run keeps the
# copy it read, and never sees a file rewritten in place.
$ssh_command "$board" "sudo sh -s -- $start" <<'REMOTE'
set -eu
start=$1
cd /tmp/sieve-install
replace() {  # replace MODE SOURCE DESTINATION
    install -D -m "$1" "$2" "$3.new"
    mv -f "$3.new" "$3"
}
replace 755 sieve-run /usr/local/bin/sieve-run
replace 755 sieve-camera.sh /usr/local/bin/sieve-camera
replace 644 model.sieve /usr/local/share/sieve/model.sieve
[ -f /etc/default/sieve ] || install -m 644 sieve.default /etc/default/sieve
id -u sieve >/dev/null 2>&1 || useradd --system --user-group --no-create-home --shell /usr/sbin/nologin sieve
usermod -a -G video sieve
replace 644 sieve.service /etc/systemd/system/sieve.service
systemctl daemon-reload
if [ "$start" = 1 ]; then systemctl enable --now sieve; else systemctl enable sieve; fi
rm -rf /tmp/sieve-install
REMOTE
echo "installed on $board: journalctl -u sieve -f shows the answers"
