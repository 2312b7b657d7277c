"""Trains a Sieve network on Fashion-MNIST with the paper's joint loss and exports ONNX.

    python3 Tools/train/train.py --arch vgg-s --heads exclusion --epochs 15 --out models/vgg-s.onnx

Loss (the early-exit method's, docs/EARLY-EXIT.md): CE(final, y) + sum_i w_i * BCEWithLogits(z_i, onehot(y); pos_weight=4*(K-1)),
w_i = 1/(N-i+1). With --heads confidence every head gets softmax cross-entropy instead, same w_i. With --heads none
the backbone trains alone (CE on the final logits) and exports without heads, as a user's model
would come (`sieve retrofit` fits heads onto such a model afterwards, docs/RETROFIT.md).
Trains on the 50k training images outside the validation split (fmnist.py).

Your own architecture (docs/TRAINING.md): `--arch my_net.py:MyNet --taps block1,block2` builds
MyNet() (a module whose forward returns the class logits for a 1x28x28 input) and hangs a head on
each named submodule's output (exits.py: WithExits); the loss and export are the same.
--head-type grid2 pools each head to a 2x2 grid instead of a global average (where the tap's size
is even).

--arch camera-mobilenet trains on the same garments drawn as 96x96 RGB camera pictures (camera.py),
fresh pictures every epoch (--train-count of them), and exports with torch's default (dynamo)
exporter, the weights kept inside the .onnx file. On a shared machine --minutes bounds the run:

    python3 Tools/train/train.py --arch camera-mobilenet --epochs 100 --train-count 10000 --minutes 35 \
        --lr 4e-3 --threads 2 --out models/camera-mobilenet.onnx
"""
import argparse
import importlib.util
import json
import time

import numpy as np
import torch
from torch import nn

import camera
import fmnist
from exits import WithExits, export_with_exits, joint_loss
from models import ARCHS


def to_tensor(images):
    """uint8 [N,28,28] grey images or [N,H,W,3] RGB camera pictures -> normalised NCHW floats."""
    x = torch.from_numpy(images.astype(np.float32) / 255.0)
    if images.ndim == 4:
        mean, std = torch.tensor(camera.MEAN), torch.tensor(camera.STD)
        return ((x - mean) / std).permute(0, 3, 1, 2).contiguous()
    return ((x - fmnist.MEAN) / fmnist.STD).unsqueeze(1)


def evaluate(model, images, labels, batch=1000):
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(images), batch):
            logits, _ = model(to_tensor(images[i:i + batch]))
            correct += (logits.argmax(1).numpy() == labels[i:i + batch]).sum()
    return 100.0 * correct / len(images)


def augment(x):
    """Random horizontal flip and a random shift of up to 2 pixels (zero-padded in normalised space)."""
    flip = torch.rand(x.shape[0]) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    pad = nn.functional.pad(x, (2, 2, 2, 2), value=-fmnist.MEAN / fmnist.STD)
    dx, dy = np.random.randint(0, 5, size=2)
    return pad[:, :, dy:dy + 28, dx:dx + 28]


def build(arch, taps, head_type, classes):
    """A built-in network, or `file.py:Class` with heads on the named submodules."""
    if arch in ARCHS:
        return ARCHS[arch](classes, head_type)
    path, _, name = arch.rpartition(":")
    if not path or not taps:
        raise SystemExit(f"--arch {arch}: not one of {', '.join(sorted(ARCHS))}, nor FILE.py:CLASS with --taps")
    spec = importlib.util.spec_from_file_location("user_arch", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return WithExits(getattr(module, name)(), taps.split(","), torch.zeros(1, 1, 28, 28), classes, head_type)


def export(model, path, kind, arch):
    pictures = getattr(model, "channels", 1) == 3
    mean, std = (camera.MEAN, camera.STD) if pictures else ([fmnist.MEAN], [fmnist.STD])
    meta = {
        "sieve.labels": json.dumps(fmnist.LABELS),
        "sieve.input_mean": json.dumps(list(mean)),
        "sieve.input_std": json.dumps(list(std)),
        "sieve.pixel_scale": "1/255",
        "sieve.arch": arch,
    }
    example = torch.zeros(1, 3, model.size, model.size) if pictures else torch.zeros(1, 1, 28, 28)
    # The camera model goes through the default (dynamo) exporter, as users export.
    export_with_exits(model, path, example, kind, meta, heads=0 if kind == "none" else None, dynamo=pictures)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", default="vgg-s", help=f"{', '.join(sorted(ARCHS))}, or FILE.py:CLASS with --taps")
    p.add_argument("--taps", help="with --arch FILE.py:CLASS: the submodules whose outputs feed heads, comma-separated")
    p.add_argument("--head-type", default="gap", choices=["gap", "grid2"])
    p.add_argument("--heads", default="exclusion", choices=["exclusion", "confidence", "none"])
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--limit", type=int, help="train on the first N training images only (quick checks)")
    p.add_argument("--train-count", type=int, default=50000,
                   help="camera-mobilenet: pictures drawn per epoch (fresh ones each epoch)")
    p.add_argument("--test-count", type=int, default=10000, help="camera-mobilenet: test pictures")
    p.add_argument("--minutes", type=float,
                   help="train for this long instead (at most --epochs): the learning rate follows the clock "
                        "(warm-up, then cosine to zero), for a machine shared with other jobs")
    p.add_argument("--out", required=True)
    args = p.parse_args()

    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    torch.set_num_threads(args.threads)
    train_x, train_y = fmnist.load("train")
    train_x, train_y = train_x[:args.limit], train_y[:args.limit]
    classes = 10
    model = build(args.arch, args.taps, args.head_type, classes)
    pictures = getattr(model, "channels", 1) == 3
    if pictures:  # validation pictures fixed by their seed; the test pictures are drawn at the end
        val_x, val_y = camera.load("val", 1000, model.size, seed=camera.VAL_SEED)
    else:
        val_x, val_y = fmnist.load("val")
        test_x, test_y = fmnist.load("test")
    n = 0 if args.heads == "none" else len(model.heads)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=5e-4)
    per_epoch = min(args.train_count, len(train_x)) if pictures else len(train_x)
    steps = args.epochs * ((per_epoch + args.batch - 1) // args.batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=max(steps, 1))
    xs = None if pictures else to_tensor(train_x)
    ys = torch.from_numpy(train_y.astype(np.int64))
    draw = torch.Generator().manual_seed(args.seed)
    start = time.time()

    def out_of_time():
        if args.minutes is None:
            return False
        done = (time.time() - start) / (60 * args.minutes)
        warm = 0.1
        scale = done / warm if done < warm else 0.5 * (1 + np.cos(np.pi * min(1.0, (done - warm) / (1 - warm))))
        for group in opt.param_groups:
            group["lr"] = args.lr * max(scale, 1e-3)
        return done >= 1

    for epoch in range(args.epochs):
        if out_of_time():
            break
        model.train()
        t0 = time.time()
        order = torch.randperm(len(ys))[:per_epoch]
        total, seen = 0.0, 0
        for i in range(0, per_epoch, args.batch):
            if out_of_time():
                break
            idx = order[i:i + args.batch]
            if pictures:  # fresh pictures of these garments: placement, colours, noise are the augmentation
                x = to_tensor(camera.draw(train_x[idx.numpy()], model.size, draw))
            else:
                x = augment(xs[idx])
            y = ys[idx]
            logits, heads = model(x)
            loss = joint_loss(logits, heads[:n], y, args.heads, classes)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if args.minutes is None:
                sched.step()
            total += loss.item() * len(idx)
            seen += len(idx)
            if pictures and (i // args.batch) % 20 == 19:  # slow epochs: show that it moves
                print(f"  {i + len(idx)}/{per_epoch} pictures ({time.time() - t0:.0f}s)", flush=True)
        print(f"epoch {epoch + 1}/{args.epochs} loss {total / max(seen, 1):.4f} "
              f"val {evaluate(model, val_x, val_y):.2f}% ({time.time() - t0:.0f}s)", flush=True)
    if pictures:
        test_x, test_y = camera.load("test", args.test_count, model.size, seed=camera.TEST_SEED)
    print(f"test accuracy (float, no exit): {evaluate(model, test_x, test_y):.2f}%"
          + (f" on {len(test_y)} camera pictures" if pictures else ""))
    export(model, args.out, args.heads, args.arch)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
