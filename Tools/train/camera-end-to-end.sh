#!/usr/bin/env bash
# The camera model end to end (docs/RESULTS.md, "A camera model"): draw calibration, validation and
# test pictures (fixed seeds), quantise, tune the exits, evaluate, then classify the test pictures
# from 640x480 I420 frames with sieve-run and compare every answer with `sieve eval` on the pixels
# sieve-run's preprocessing gives (Tools/frames.py --seen); last, time it with `sieve bench`.
#
#   bash Tools/train/camera-end-to-end.sh [OUT_DIR]      (default out/camera; release build first)
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-$repo/out/camera}
sieve=${SIEVE_BIN:-$repo/.build/release/sieve}
sieve_run=${SIEVE_RUN_BIN:-$(dirname "$sieve")/sieve-run}
model=${CAMERA_MODEL:-$repo/models/camera-mobilenet.onnx}
test_count=${TEST_COUNT:-10000}
for bin in "$sieve" "$sieve_run"; do
    [ -x "$bin" ] || { echo "error: $bin not found (swift build -c release)" >&2; exit 1; }
done
mkdir -p "$out"
pictures="python3 $repo/Tools/train/camera.py"

echo "== pictures"
$pictures --split train --count 200 --seed 13 --out "$out/calib.npy"
$pictures --split val --count 2000 --seed 21 --out "$out/val.npy" --labels "$out/val-labels.npy"
$pictures --split test --count "$test_count" --seed 22 --out "$out/test.npy" --labels "$out/test-labels.npy"

echo "== quantize, tune, eval"
"$sieve" quantize "$model" --calib "$out/calib.npy" -o "$out/camera.sieve"
"$sieve" tune "$out/camera.sieve" --images "$out/val.npy" --labels "$out/val-labels.npy" --indices all \
    --max-drop 0.5 -o "$out/camera-tuned.sieve"
"$sieve" eval "$out/camera-tuned.sieve" --images "$out/test.npy" --labels "$out/test-labels.npy"

echo "== I420 frames through sieve-run"
python3 "$repo/Tools/frames.py" --pictures "$out/test.npy" --seen "$out/test-seen.npy" \
    | "$sieve_run" "$out/camera-tuned.sieve" --format i420 --size 640x480 --crop 128,48,384,384 > "$out/run.jsonl"
"$sieve" eval "$out/camera-tuned.sieve" --images "$out/test-seen.npy" --labels "$out/test-labels.npy" \
    --dump-exits "$out/seen-exits.csv"
python3 - "$out" <<'EOF'
import csv, json, sys
import numpy as np
out = sys.argv[1]
run = [json.loads(line) for line in open(f"{out}/run.jsonl")]
rows = [r for r in csv.reader(open(f"{out}/seen-exits.csv")) if r and r[0].isdigit()]
labels = np.load(f"{out}/test-labels.npy")
same = sum((l["class"], l["exit"], l["macs"]) == (int(r[2]), "final" if int(r[3]) < 0 else int(r[3]), int(r[5]))
           for l, r in zip(run, rows))
correct = sum(l["class"] == y for l, y in zip(run, labels))
print(f"sieve-run on I420 frames: {len(run)} frames, accuracy {100 * correct / len(run):.2f} %, "
      f"mean {np.mean([l['macs'] for l in run]):,.0f} MACs; answer, exit and MACs equal to sieve eval's "
      f"on the same pixels for {same} of {len(rows)}")
if same != len(rows) or len(run) != len(rows):
    sys.exit("error: sieve-run and sieve eval disagree")
EOF

echo "== bench"
"$sieve" bench "$out/camera-tuned.sieve" --images "$out/test.npy" --frame-size 640x480 --frame-format i420
