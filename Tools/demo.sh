#!/usr/bin/env bash
# The demo: quantise the bundled VGG-S model on 1000 bundled calibration images and evaluate
# the int8 blob on the 1000 bundled test images (the first 1000 of the Fashion-MNIST test set).
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product sieve 2>&1 | tail -n 1
sieve=.build/release/sieve
mkdir -p out
$sieve quantize models/vgg-s.onnx --calib data/fashion-mnist-calib-1000-images-idx3-ubyte.gz -o out/vgg-s.sieve
$sieve eval out/vgg-s.sieve --images data/fashion-mnist-test-1000-images-idx3-ubyte.gz \
                            --labels data/fashion-mnist-test-1000-labels-idx1-ubyte.gz
