"""Cheap trained weights for the zoo's torchvision networks.

Training at 224x224 is out of reach of a 2-core machine, but these networks are fully
convolutional up to a global pool, so weights trained on small pictures run on large ones.
`train` fits a network on camera pictures (Tools/train/camera.py) drawn fresh every step, for a
fixed time on one thread (AdamW, cosine learning rate over the time budget), progressively: half
the time at a low resolution, the rest at larger ones ending at 224x224. The garment covers the
same fraction of the picture at every size, so at 224 it is 3.5 times larger in pixels than at
64; trained at 64 only, MobileNetV3-small fell from 35 % at 64 to 13-15 % at 224, hence the
last stage at full size. zoo.py then re-estimates the BatchNorm statistics at 224x224.
"""
import math
import time

import numpy as np
import torch

import camera_images
import fmnist

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def to_input(pictures):
    """uint8 NHWC -> float NCHW normalised as `--norm imagenet`."""
    x = torch.from_numpy(pictures).permute(0, 3, 1, 2).float().div(255)
    return (x - MEAN) / STD


def resolution_at(resolutions, fraction):
    """Progressive resizing: the first half of the time at the first resolution, the rest split
    evenly among the others, so the network ends at the size it will be run at."""
    if len(resolutions) == 1 or fraction < 0.5:
        return resolutions[0]
    rest = resolutions[1:]
    return rest[min(int((fraction - 0.5) / 0.5 * len(rest)), len(rest) - 1)]


def train(model, seconds, resolutions, batch=32, lr=2e-3, seed=0, log=print):
    """Trains `model` in place for `seconds` of wall time on pictures drawn at `resolutions`
    (progressively, see resolution_at). Returns (steps, training top-1 over the last 20 steps)."""
    garments, labels = fmnist.load("train")
    generator = torch.Generator().manual_seed(seed)
    optimiser = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    model.train()
    started, steps, recent = time.monotonic(), 0, []
    while True:
        elapsed = time.monotonic() - started
        if elapsed >= seconds:
            break
        # Cosine decay over the time budget, with a short warm-up: the last steps settle the weights.
        fraction = elapsed / seconds
        scale = min(1.0, (steps + 1) / 20) * 0.5 * (1 + math.cos(math.pi * fraction))
        for group in optimiser.param_groups:
            group["lr"] = lr * max(scale, 0.01)
        pick = torch.randint(len(garments), (batch,), generator=generator).numpy()
        x = to_input(camera_images.draw(garments[pick], resolution_at(resolutions, fraction), generator))
        y = torch.from_numpy(labels[pick].astype(np.int64))
        logits = model(x)
        loss = torch.nn.functional.cross_entropy(logits, y)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        recent = (recent + [float((logits.argmax(1) == y).float().mean())])[-20:]
        steps += 1
        if steps % 50 == 0:
            log(f"  step {steps}, {elapsed:.0f} s, loss {loss.item():.3f}, train top-1 {np.mean(recent):.3f}")
    model.eval()
    return steps, float(np.mean(recent)) if recent else 0.0
