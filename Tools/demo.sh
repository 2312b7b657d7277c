#!/usr/bin/env bash
# The demo: quantise the bundled VGG-S model (confidence-trained heads) on 1000 bundled
# calibration images, tune its exit thresholds on the 2000 bundled validation images (held out of
# the Fashion-MNIST training set: Tools/train/make_val_subset.py), and evaluate the tuned int8 blob,
# exits on and off, on the 1000 bundled test images (the first 1000 of the Fashion-MNIST test set).
# Needs Swift; installs the host build's Debian libraries when they are missing (zlib, OpenSSL's
# crypto, OpenBLAS, libjpeg-turbo, libpng: Tools/build-deps.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
bash Tools/install-debian.sh $(cat Tools/build-deps.txt)
swift build -c release --product sieve 2>&1 | tail -n 1
sieve=.build/release/sieve
mkdir -p out
$sieve quantize models/vgg-s-confidence.onnx --calib data/fashion-mnist-calib-1000-images-idx3-ubyte.gz \
                -o out/vgg-s-confidence.sieve
$sieve tune out/vgg-s-confidence.sieve --images data/fashion-mnist-val-2000-images-idx3-ubyte.gz \
            --labels data/fashion-mnist-val-2000-labels-idx1-ubyte.gz --indices all --max-drop 0.5 \
            -o out/vgg-s-confidence-tuned.sieve
$sieve eval out/vgg-s-confidence-tuned.sieve --images data/fashion-mnist-test-1000-images-idx3-ubyte.gz \
                                             --labels data/fashion-mnist-test-1000-labels-idx1-ubyte.gz
