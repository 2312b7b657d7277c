"""Fashion-MNIST drawn as colour camera-like pictures: each 28x28 garment enlarged, tinted and
placed at a random spot on a coloured background, with sensor noise. Deterministic for a seed.
Real structure (edges, textures, classes) so that a network's activations and logits vary the
way they do on camera frames, not the flat statistics of random noise."""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "train"))
import fmnist  # noqa: E402


def draw(images, size, seed):
    """uint8 [N,28,28] -> uint8 [N,size,size,3] (NHWC, RGB)."""
    rng = np.random.default_rng(seed)
    n = len(images)
    out = np.empty((n, size, size, 3), np.uint8)
    for i in range(n):
        scale = rng.uniform(0.55, 0.9) * size / 28
        side = int(28 * scale)
        ys = (np.arange(side) / scale).astype(int)
        garment = images[i][ys][:, ys].astype(np.float32) / 255.0
        background = rng.uniform(0, 255, 3)
        colour = rng.uniform(0, 255, 3)
        # A smooth light gradient across the frame, as a real scene has.
        ramp = np.linspace(rng.uniform(0.7, 1.0), rng.uniform(0.7, 1.0), size, dtype=np.float32)
        canvas = background[None, None, :] * ramp[:, None, None] * np.ones((size, size, 1), np.float32)
        y0, x0 = rng.integers(0, size - side + 1, 2)
        patch = canvas[y0:y0 + side, x0:x0 + side]
        canvas[y0:y0 + side, x0:x0 + side] = patch * (1 - garment[..., None]) + colour * garment[..., None]
        canvas += rng.normal(0, 6, canvas.shape)
        out[i] = np.clip(canvas, 0, 255).astype(np.uint8)
    return out


def load(split, count, size, seed):
    """(images uint8 [count,size,size,3], labels uint8 [count]) from a Fashion-MNIST split."""
    images, labels = fmnist.load(split)
    pick = np.random.default_rng(seed).permutation(len(images))[:count]
    return draw(images[pick], size, seed + 1), labels[pick].copy()
