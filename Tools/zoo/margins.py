#!/usr/bin/env python3
"""Where int8 and float disagree, by the float model's own confidence.

For each model of a zoo.py output directory: the float logits (ONNX Runtime, from the exported
model) and the int8 blob's exact logits (exact-logits.npy) on the same held-out pictures; the
pictures are split by the float model's top-1 margin (top-1 minus top-2 logit, relative to the
logits' spread across pictures) and agreement is given per band. A quantiser that only flips
near-ties leaves the confident pictures at 100 %.

    python3 Tools/zoo/margins.py out/zoo-trained
"""
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zoo  # noqa: E402

BANDS = [(0.0, 0.1), (0.1, 0.25), (0.25, 0.5), (0.5, 1.0), (1.0, float("inf"))]


def main():
    if len(sys.argv) != 2 or not os.path.isfile(os.path.join(sys.argv[1], "zoo.json")):
        sys.exit("usage: margins.py ZOO_OUT_DIR (a zoo.py --out directory, with zoo.json)")
    out = sys.argv[1]
    images = np.load(os.path.join(out, "eval.npy"))
    print("| model | pictures by float top-1 margin / logit spread: agreement (count) |")
    print("|---|---|")
    for row in json.load(open(os.path.join(out, "zoo.json"))):
        if "error" in row:
            continue
        name = row["model"]
        reference = zoo.float_logits(os.path.join(out, name, f"{name}.onnx"), images)
        quantised = np.load(os.path.join(out, name, "exact-logits.npy"))[:, 0, :]
        top2 = np.sort(reference, axis=1)[:, -2:]
        margin = (top2[:, 1] - top2[:, 0]) / float(np.std(reference, axis=0).mean())
        agree = reference.argmax(1) == quantised.argmax(1)
        cells = []
        for low, high in BANDS:
            band = (margin >= low) & (margin < high)
            if band.any():
                cells.append(f"[{low:g}, {high:g}): {100 * agree[band].mean():.1f} % ({band.sum()})")
        print(f"| {name} | {'; '.join(cells)} |", flush=True)


if __name__ == "__main__":
    main()
