#!/usr/bin/env python3
"""Writes the first N images of the validation split (fmnist.val_indices(): images of the
Fashion-MNIST training set held out from training) as gzipped IDX files, so the demo tunes on
bundled data without Debian's dataset-fashion-mnist:

    python3 Tools/train/make_val_subset.py 2000 data/fashion-mnist-val-2000
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fmnist  # noqa: E402


def main():
    count, prefix = int(sys.argv[1]), sys.argv[2]
    images, labels = fmnist.load("val")
    fmnist.write_idx(f"{prefix}-images-idx3-ubyte.gz", images[:count])
    fmnist.write_idx(f"{prefix}-labels-idx1-ubyte.gz", labels[:count])


if __name__ == "__main__":
    main()
