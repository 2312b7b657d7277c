"""Fashion-MNIST drawn as colour camera pictures: each 28x28 garment scaled, tinted and placed at
a random spot on a coloured background with a light gradient and sensor noise. Vectorised in
torch (one grid_sample per batch), deterministic for a seed, so training can draw fresh pictures
every epoch and the zoo and tests draw the same pictures every time."""
import numpy as np
import torch
from torch import nn

import fmnist

# Per-channel statistics of the pictures, pixels scaled to [0, 1] (measured on 2000 pictures: the
# channels are drawn alike, so one value each).
MEAN = (0.44, 0.44, 0.44)
STD = (0.245, 0.245, 0.245)
# Seeds of the validation and test pictures the camera model is tuned and measured on.
VAL_SEED = 21
TEST_SEED = 22


def draw(garments, size, generator):
    """uint8 [N,28,28] -> uint8 [N,size,size,3] (NHWC, RGB)."""
    g = torch.as_tensor(np.asarray(garments), dtype=torch.float32).div(255).unsqueeze(1)  # [N,1,28,28]
    n = g.shape[0]

    def uniform(lo, hi, *shape):
        return lo + (hi - lo) * torch.rand(*shape, generator=generator)

    # The garment covers 55-90 % of the side, anywhere in the picture (affine_grid maps the output
    # square [-1,1] onto the garment; outside it grid_sample reads zeros: background).
    cover = uniform(0.55, 0.9, n)
    shift = (1 - cover)[:, None] * uniform(-1, 1, n, 2)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1 / cover
    theta[:, :, 2] = -shift / cover[:, None]
    grid = nn.functional.affine_grid(theta, [n, 1, size, size], align_corners=False)
    mask = nn.functional.grid_sample(g, grid, mode="nearest", padding_mode="zeros", align_corners=False)
    background = uniform(0, 255, n, 3, 1, 1)
    colour = uniform(0, 255, n, 3, 1, 1)
    ramp = torch.linspace(0, 1, size)
    top, bottom = uniform(0.7, 1.0, n, 1, 1, 1), uniform(0.7, 1.0, n, 1, 1, 1)
    light = top + (bottom - top) * ramp.view(1, 1, size, 1)
    picture = background * light * (1 - mask) + colour * mask
    picture += 6 * torch.randn(picture.shape, generator=generator)
    return picture.clamp(0, 255).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()


def load(split, count, size, seed):
    """(images uint8 [count,size,size,3], labels uint8 [count]) drawn from a Fashion-MNIST split."""
    images, labels = fmnist.load(split)
    generator = torch.Generator().manual_seed(seed)
    pick = torch.randperm(len(images), generator=generator)[:count].numpy()
    pictures = np.concatenate([draw(images[pick[i:i + 500]], size, generator) for i in range(0, len(pick), 500)])
    return pictures, labels[pick].copy()


def main():
    """Writes pictures (and labels) as uint8 .npy files, for sieve quantize/tune/eval and frames.py."""
    import argparse
    p = argparse.ArgumentParser(description=main.__doc__)
    p.add_argument("--split", required=True, choices=["train", "val", "test"])
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--seed", type=int, required=True, help=f"validation pictures: {VAL_SEED}, test: {TEST_SEED}")
    p.add_argument("--size", type=int, default=96)
    p.add_argument("--out", required=True, help="pictures .npy (N x size x size x 3)")
    p.add_argument("--labels", help="labels .npy (N)")
    args = p.parse_args()
    if args.count < 1 or args.size < 8:
        p.error("--count must be at least 1 and --size at least 8")
    pictures, labels = load(args.split, args.count, args.size, args.seed)
    np.save(args.out, pictures)
    if args.labels:
        np.save(args.labels, labels)


if __name__ == "__main__":
    main()
