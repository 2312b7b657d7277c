#!/usr/bin/env python3
"""Raw camera-like frames from Fashion-MNIST images, for trying sieve-run without a camera: each
28x28 image enlarged 16x (to 448x448) and placed at (96, 16) on a black 640x480 GRAY8 frame,
written to stdout. Convert with ffmpeg to any format sieve-run reads, and crop with
--crop 96,16,448,448:

    python3 Tools/frames.py --count 1000 | ffmpeg -v error -f rawvideo -pix_fmt gray -s 640x480 -i - \\
        -f rawvideo -pix_fmt yuv420p - | sieve-run MODEL.sieve --format i420 --size 640x480 --crop 96,16,448,448
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "train"))
import fmnist  # noqa: E402

WIDTH, HEIGHT, SCALE, X0, Y0 = 640, 480, 16, 96, 16
CROP = f"{X0},{Y0},{28 * SCALE},{28 * SCALE}"


def gray_frame(image):
    """One 640x480 GRAY8 frame (bytes) showing a 28x28 image enlarged 16x at (96, 16)."""
    frame = np.zeros((HEIGHT, WIDTH), np.uint8)
    frame[Y0:Y0 + 28 * SCALE, X0:X0 + 28 * SCALE] = np.kron(image, np.ones((SCALE, SCALE), np.uint8))
    return frame.tobytes()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data",
                           "fashion-mnist-test-1000-images-idx3-ubyte.gz")
    parser.add_argument("--images", default=default, help="IDX images (default: the 1000 bundled test images)")
    parser.add_argument("--count", type=int, default=1000, help="frames to write (the images repeat)")
    args = parser.parse_args()
    images = fmnist.read_idx(args.images)
    out = sys.stdout.buffer
    try:
        for i in range(args.count):
            out.write(gray_frame(images[i % len(images)]))
        out.flush()
    except BrokenPipeError:
        sys.stderr.close()


if __name__ == "__main__":
    main()
