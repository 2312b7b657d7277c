"""Fashion-MNIST from the Debian package's gzipped IDX files, and the fixed validation split.

Every Sieve tool uses the same split: 10k of the 60k training images, chosen by
`numpy.random.default_rng(SPLIT_SEED).permutation(60000)[-10000:]`, saved sorted in
data/fashion-mnist-val-indices.txt so the Swift tools can read it too.
"""
import gzip
import os
import struct

import numpy as np

DATA_DIR = os.environ.get("SIEVE_FMNIST_DIR", "/usr/share/datasets/fashion-mnist")
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SPLIT_FILE = os.path.join(REPO, "data", "fashion-mnist-val-indices.txt")
SPLIT_SEED = 20240913
VAL_COUNT = 10000

LABELS = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
          "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
# Statistics of the 60k training images, pixels scaled to [0, 1].
MEAN = 0.2860
STD = 0.3530


def read_idx(path):
    """Reads an IDX file (gzipped or raw) into a numpy array of its declared shape."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def write_idx(path, array):
    """Writes a uint8 array as IDX, gzipped when the path ends in .gz."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(">" + "I" * array.ndim, *array.shape)
    opener = (lambda p: gzip.GzipFile(p, "wb", mtime=0)) if path.endswith(".gz") else (lambda p: open(p, "wb"))
    with opener(path) as f:
        f.write(header + array.tobytes())


def load(split):
    """Returns (images uint8 [N,28,28], labels uint8 [N]) for 'train', 'val', 'train+val' or 'test'."""
    if split == "test":
        return (read_idx(os.path.join(DATA_DIR, "t10k-images-idx3-ubyte.gz")),
                read_idx(os.path.join(DATA_DIR, "t10k-labels-idx1-ubyte.gz")))
    images = read_idx(os.path.join(DATA_DIR, "train-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(DATA_DIR, "train-labels-idx1-ubyte.gz"))
    if split == "train+val":
        return images, labels
    val = val_indices()
    if split == "val":
        return images[val], labels[val]
    keep = np.ones(len(images), dtype=bool)
    keep[val] = False
    return images[keep], labels[keep]


def val_indices():
    if not os.path.exists(SPLIT_FILE):
        idx = np.sort(np.random.default_rng(SPLIT_SEED).permutation(60000)[-VAL_COUNT:])
        os.makedirs(os.path.dirname(SPLIT_FILE), exist_ok=True)
        with open(SPLIT_FILE, "w") as f:
            f.write("\n".join(str(i) for i in idx) + "\n")
    return np.loadtxt(SPLIT_FILE, dtype=np.int64)
