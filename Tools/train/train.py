"""Trains a Sieve network on Fashion-MNIST with the paper's joint loss and exports ONNX.

    python3 Tools/train/train.py --arch vgg-s --heads exclusion --epochs 15 --out models/vgg-s.onnx

Loss (PAPER.md): CE(final, y) + sum_i w_i * BCEWithLogits(z_i, onehot(y); pos_weight=4*(K-1)),
w_i = 1/(N-i+1). With --heads confidence every head gets softmax cross-entropy instead, same w_i. With --heads none
the backbone trains alone (CE on the final logits) and exports without heads, as a user's model
would come (Tools/retrofit adds heads to such a model afterwards).
Trains on the 50k training images outside the validation split (fmnist.py).
"""
import argparse
import json
import time

import numpy as np
import torch
from torch import nn

import fmnist
from models import ARCHS


def to_tensor(images):
    x = torch.from_numpy(images.astype(np.float32) / 255.0)
    return ((x - fmnist.MEAN) / fmnist.STD).unsqueeze(1)


def head_loss_fn(kind, classes):
    if kind == "exclusion":
        bce = nn.BCEWithLogitsLoss(pos_weight=torch.full((classes,), 4.0 * (classes - 1)))
        return lambda z, y: bce(z, nn.functional.one_hot(y, classes).float())
    ce = nn.CrossEntropyLoss()
    return lambda z, y: ce(z, y)


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


def export(model, path, kind, arch):
    import onnx
    model.eval()
    n = 0 if kind == "none" else len(model.heads)
    outputs = ["logits"] + [f"head{i}" for i in range(n)]

    class Flat(nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, x):
            logits, heads = self.m(x)
            return (logits, *heads[:n])

    torch.onnx.export(Flat(model), torch.zeros(1, 1, 28, 28), path, opset_version=17, dynamo=False,
                      input_names=["input"], output_names=outputs, do_constant_folding=True)
    m = onnx.load(path)
    meta = {
        "sieve.labels": json.dumps(fmnist.LABELS),
        "sieve.input_mean": json.dumps([fmnist.MEAN]),
        "sieve.input_std": json.dumps([fmnist.STD]),
        "sieve.pixel_scale": "1/255",
        "sieve.final_output": "logits",
        "sieve.heads": json.dumps([{"output": f"head{i}", "kind": kind} for i in range(n)]),
        "sieve.arch": arch,
    }
    if n == 0:
        del meta["sieve.heads"]
    for k, v in meta.items():
        entry = m.metadata_props.add()
        entry.key, entry.value = k, v
    onnx.save(m, path)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", default="vgg-s", choices=sorted(ARCHS))
    p.add_argument("--heads", default="exclusion", choices=["exclusion", "confidence", "none"])
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", required=True)
    args = p.parse_args()

    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    torch.set_num_threads(args.threads)
    train_x, train_y = fmnist.load("train")
    val_x, val_y = fmnist.load("val")
    test_x, test_y = fmnist.load("test")
    model = ARCHS[args.arch]()
    classes = 10
    n = 0 if args.heads == "none" else len(model.heads)
    weights = [1.0 / (n - i + 1) for i in range(n)]
    head_loss = head_loss_fn(args.heads, classes) if n else None
    ce = nn.CrossEntropyLoss()
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=5e-4)
    steps = args.epochs * ((len(train_x) + args.batch - 1) // args.batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=max(steps, 1))
    xs = to_tensor(train_x)
    ys = torch.from_numpy(train_y.astype(np.int64))
    for epoch in range(args.epochs):
        model.train()
        t0 = time.time()
        order = torch.randperm(len(xs))
        total = 0.0
        for i in range(0, len(xs), args.batch):
            idx = order[i:i + args.batch]
            x, y = augment(xs[idx]), ys[idx]
            logits, heads = model(x)
            loss = ce(logits, y) + sum(w * head_loss(z, y) for w, z in zip(weights, heads[:n]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        print(f"epoch {epoch + 1}/{args.epochs} loss {total / len(xs):.4f} "
              f"val {evaluate(model, val_x, val_y):.2f}% ({time.time() - t0:.0f}s)", flush=True)
    print(f"test accuracy (float, no exit): {evaluate(model, test_x, test_y):.2f}%")
    export(model, args.out, args.heads, args.arch)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
