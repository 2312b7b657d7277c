#!/usr/bin/env python3
"""Applies a blob's exit rule and thresholds to the float model, image by image, so int8 and float
exits can be compared.

    python3 Tools/train/float_exits.py models/vgg-s-confidence.onnx out/vgg-s-confidence-tuned.sieve \\
        [--images IDX --labels IDX] [--limit N] [--dump-exits float.csv] [--compare int8.csv] [--json]

The rule is the runtime's (README "Early exit", Sources/SieveCore/EarlyExit.swift), computed on the
float head logits of the ONNX model (its `sieve.heads` outputs, in order, paired with the blob's
heads): a head with threshold 0 is off; an exclusion head keeps class c among the survivors iff
sigmoid(z_c) > beta * sigmoid(z_top), top = the surviving class with the largest logit, which always
stays; one survivor left exits; with exit_confidence set it also exits when the softmax over the
survivors tops it; a confidence head exits when the softmax over the survivors tops its threshold.
The final answer is the argmax of the final logits over the survivors.

`--compare` reads the CSV `sieve eval --dump-exits` wrote for the same images and reports how often
the int8 runtime and the float model agree on the exit head, the answer, and both.
"""
import argparse
import csv
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "reference"))
import eval_float  # noqa: E402
import fmnist  # noqa: E402
import sieve_blob  # noqa: E402


def softmax_max(z, alive):
    """The largest softmax probability over the surviving classes' logits."""
    v = z[alive].astype(np.float64)
    return 1.0 / np.exp(v - v.max()).sum()


def first_best(z, alive):
    """The surviving class with the largest logit, the first on ties."""
    idx = np.flatnonzero(alive)
    return int(idx[np.argmax(z[idx])])


def decide_one(heads, final, head_logits):
    """(answer, exit head or -1, survivor count) for one image's float logits."""
    alive = np.ones(len(final), dtype=bool)
    for h, head in enumerate(heads):
        if head.threshold == 0:
            continue
        z = head_logits[h]
        if head.kind == sieve_blob.HEAD_EXCLUSION:
            top = first_best(z, alive)
            p = 1.0 / (1.0 + np.exp(-z.astype(np.float64)))
            keep = p > head.threshold * p[top]
            keep[top] = True
            alive &= keep
            count = int(alive.sum())
            if count == 1:
                return first_best(z, alive), h, 1
            if head.exit_confidence > 0 and softmax_max(z, alive) > head.exit_confidence:
                return first_best(z, alive), h, count
        elif softmax_max(z, alive) > head.threshold:
            return first_best(z, alive), h, int(alive.sum())
    return first_best(final, alive), -1, int(alive.sum())


def float_outputs(model_path, images):
    """Final logits [N, K] and head logits [N, H, K] of the float model."""
    model = eval_float.FloatModel(model_path)
    heads = json.loads(model.meta.get("sieve.heads", "[]"))
    names = [model.output] + [h["output"] for h in heads]
    out = model.outputs(eval_float.preprocess(images, model.meta), names)
    return out[0], np.stack(out[1:], axis=1) if heads else np.zeros((len(images), 0, out[0].shape[1]))


def decide(model_path, blob, images):
    """Per image: (answer, exit head, survivors), and the no-exit answers, for a loaded blob."""
    final, heads = float_outputs(model_path, images)
    if heads.shape[1] != len(blob.heads):
        raise ValueError(f"{model_path} has {heads.shape[1]} heads, the blob has {len(blob.heads)}")
    decisions = [decide_one(blob.heads, final[i], heads[i]) for i in range(len(images))]
    return decisions, final.argmax(axis=1)


def read_array(path):
    """IDX (gzipped or raw) or .npy."""
    return np.load(path) if path.endswith(".npy") else fmnist.read_idx(path)


def read_runtime_csv(path):
    with open(path, newline="") as f:
        return [(int(r["answer"]), int(r["exit_head"]), int(r["survivors"])) for r in csv.DictReader(f)]


def agreement(float_decisions, runtime_decisions):
    """Percent of images on which both pick the same exit head, the same answer, and both."""
    if len(float_decisions) != len(runtime_decisions):
        raise ValueError(f"{len(float_decisions)} float decisions but {len(runtime_decisions)} runtime decisions")
    n = len(float_decisions)
    same_head = sum(f[1] == r[1] for f, r in zip(float_decisions, runtime_decisions))
    same_answer = sum(f[0] == r[0] for f, r in zip(float_decisions, runtime_decisions))
    same_both = sum(f[:2] == r[:2] for f, r in zip(float_decisions, runtime_decisions))
    return {"exit_head": 100.0 * same_head / n, "answer": 100.0 * same_answer / n, "exit_head_and_answer": 100.0 * same_both / n}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="the float ONNX model the blob was quantised from")
    p.add_argument("blob", help="the .sieve blob whose thresholds to apply")
    p.add_argument("--images", default=os.path.join(fmnist.DATA_DIR, "t10k-images-idx3-ubyte.gz"))
    p.add_argument("--labels", default=os.path.join(fmnist.DATA_DIR, "t10k-labels-idx1-ubyte.gz"))
    p.add_argument("--limit", type=int)
    p.add_argument("--dump-exits", help="write index,label,answer,exit_head,survivors per image")
    p.add_argument("--compare", help="a `sieve eval --dump-exits` CSV of the same images")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    try:
        images, labels = read_array(args.images), read_array(args.labels)
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        if args.limit is not None:
            images, labels = images[:args.limit], labels[:args.limit]
        blob = sieve_blob.load(args.blob)
        decisions, no_exit = decide(args.model, blob, images)
        runtime = read_runtime_csv(args.compare) if args.compare else None
        agree = agreement(decisions, runtime) if runtime is not None else None
    except (OSError, ValueError, sieve_blob.BlobError) as e:
        print(f"float_exits: {e}", file=sys.stderr)
        return 1
    n = len(images)
    head_count = len(blob.heads)
    exits = [sum(d[1] == h for d in decisions) for h in range(head_count)] + [sum(d[1] == -1 for d in decisions)]
    result = {"images": n,
              "accuracy": 100.0 * sum(d[0] == y for d, y in zip(decisions, labels)) / n,
              "accuracy_no_exit": 100.0 * float((no_exit == labels).sum()) / n,
              "exits": exits}
    if agree is not None:
        result["agreement"] = agree
    if args.dump_exits:
        with open(args.dump_exits, "w") as f:
            f.write("index,label,answer,exit_head,survivors\n")
            for i, (d, y) in enumerate(zip(decisions, labels)):
                f.write(f"{i},{y},{d[0]},{d[1]},{d[2]}\n")
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"float exits on {n} images: accuracy {result['accuracy']:.2f} % (no exit {result['accuracy_no_exit']:.2f} %)")
    print("exits: " + ", ".join([f"head {h} {c}" for h, c in enumerate(exits[:-1])] + [f"final {exits[-1]}"]))
    if agree is not None:
        print(f"int8 vs float: same exit head {agree['exit_head']:.2f} %, same answer {agree['answer']:.2f} %, "
              f"both {agree['exit_head_and_answer']:.2f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
