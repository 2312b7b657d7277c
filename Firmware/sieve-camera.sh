#!/bin/bash
# The camera pipeline the sieve service runs: the camera program writes raw frames, sieve-run
# classifies the newest one and prints a JSON line per frame (to the journal). Settings come from
# /etc/default/sieve (see Firmware/sieve.default); the status is sieve-run's or the camera's.
# SIEVE_CAMERA and SIEVE_ARGS are split into words as a shell would split them with quotes
# ('a b' and "a b" are one word, \ escapes) but never globbed or expanded: xargs parses them.
set -euo pipefail
: "${SIEVE_MODEL:=/usr/local/share/sieve/model.sieve}"
: "${SIEVE_WIDTH:=640}"
: "${SIEVE_HEIGHT:=480}"
: "${SIEVE_FRAMERATE:=30}"
: "${SIEVE_CAMERA:=rpicam-vid -t 0 -n --codec yuv420 --width $SIEVE_WIDTH --height $SIEVE_HEIGHT --framerate $SIEVE_FRAMERATE -o -}"
: "${SIEVE_FORMAT:=i420}"
: "${SIEVE_ARGS:=--latest}"
: "${SIEVE_RUN:=/usr/local/bin/sieve-run}"

# words NAME VALUE: VALUE's words into the array NAME (an unmatched quote is an error).
words() {
    local -n into=$1
    printf '%s' "$2" | xargs -r true || { echo "sieve-camera: cannot split $1 into words: $2" >&2; exit 2; }
    mapfile -d '' -t into < <(printf '%s' "$2" | xargs -r printf '%s\0')
}
camera_words=() sieve_words=()
words camera_words "$SIEVE_CAMERA"
words sieve_words "$SIEVE_ARGS"
[[ ${#camera_words[@]} -gt 0 ]] || { echo "sieve-camera: SIEVE_CAMERA is empty" >&2; exit 2; }

fifo="$(mktemp -u /tmp/sieve-frames.XXXXXX)"
mkfifo -m 600 "$fifo"
trap 'rm -f "$fifo"' EXIT
# The camera writes into a FIFO rather than a pipe so that both statuses are seen: a camera that
# dies ends sieve-run's input, and the service fails and restarts if either failed.
"${camera_words[@]}" > "$fifo" &
camera=$!
"$SIEVE_RUN" "$SIEVE_MODEL" --format "$SIEVE_FORMAT" --size "${SIEVE_WIDTH}x${SIEVE_HEIGHT}" --input "$fifo" \
    ${sieve_words[@]+"${sieve_words[@]}"} &
sieve=$!
trap 'kill "$camera" "$sieve" 2>/dev/null; wait; rm -f "$fifo"; exit 0' TERM INT
status=0
wait "$sieve" || status=$?
kill "$camera" 2>/dev/null || true
wait "$camera" || [ "$status" -ne 0 ] || status=1
exit "$status"
