"""Which torchvision classifiers `sieve quantize` takes as exported: each model (10 classes, random
weights from a fixed seed) is exported with torch's default exporter at its input size and
quantised with `--norm imagenet` on 4 random pictures (no bias correction: this checks the import,
not the accuracy; docs/ZOO.md measures that). One line per model: what sieve wrote, or its error.

    python3 Tools/zoo/import_check.py [--models a,b,...] [--out DIR] [--sieve PATH]
"""
import argparse
import os
import subprocess
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torchvision_models  # noqa: E402  (torchvision without its C extension)

DEFAULT = ["alexnet", "vgg11_bn", "googlenet", "inception_v3", "densenet121", "resnext50_32x4d", "wide_resnet50_2",
           "regnet_y_400mf", "efficientnet_b1", "efficientnet_v2_s", "mnasnet0_5", "shufflenet_v2_x0_5", "squeezenet1_0",
           "convnext_tiny", "vit_b_16", "swin_t"]
SIZES = {"inception_v3": 299}
OPTIONS = {"googlenet": {"aux_logits": False, "init_weights": True}, "inception_v3": {"aux_logits": False, "init_weights": True}}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(DEFAULT))
    parser.add_argument("--out", default="out/import-check")
    parser.add_argument("--sieve", default=os.environ.get("SIEVE_BIN", ".build/release/sieve"))
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch = torchvision_models.torch
    warnings.filterwarnings("ignore")
    failed = 0
    for name in args.models.split(","):
        started, size = time.time(), SIZES.get(name, 224)
        calib = os.path.join(args.out, f"calib{size}.npy")
        if not os.path.exists(calib):
            np.save(calib, np.random.default_rng(0).integers(0, 256, (4, size, size, 3), dtype=np.uint8))
        torch.manual_seed(0)
        model = getattr(torchvision_models.torchvision.models, name)(num_classes=10, **OPTIONS.get(name, {})).eval()
        onnx_path = os.path.join(args.out, f"{name}.onnx")
        torch.onnx.export(model, (torch.zeros(1, 3, size, size),), onnx_path)
        proc = subprocess.run([args.sieve, "quantize", onnx_path, "--norm", "imagenet", "--calib", calib, "--no-bias-correction",
                               "-o", os.path.join(args.out, f"{name}.sieve")], capture_output=True, text=True)
        if proc.returncode == 0:
            result = next(line for line in proc.stdout.splitlines() if line.startswith("wrote "))
        else:
            failed += 1
            result = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
        print(f"{name} ({time.time() - started:.0f} s): {result}", flush=True)
    print(f"{failed} of {len(args.models.split(','))} refused")


if __name__ == "__main__":
    main()
