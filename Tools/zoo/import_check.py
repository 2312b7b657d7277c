"""Which torchvision (or timm) classifiers `sieve quantize` takes as exported: each model (10 classes,
random weights from a fixed seed) is exported with torch's default exporter at its input size and
quantised with `--norm imagenet` on 4 random pictures (BatchNorm statistics taken from those pictures
first, so that activations neither vanish nor explode; no bias correction: this checks the import,
not the accuracy; docs/ZOO.md measures that). The float model as Sieve imports it
(`--dump-float-logits`) is compared with ONNX Runtime's on those pictures: the largest logit
difference over the largest logit must stay below 1e-4. One line per model: what sieve wrote and
that difference, or the error.

    python3 Tools/zoo/import_check.py [--models a,b,...] [--out DIR] [--sieve PATH]
    python3 Tools/zoo/import_check.py --source timm     # pip install --no-deps timm first
    python3 Tools/zoo/import_check.py --exporter legacy --opset 11   # torch.onnx.export(..., dynamo=False)
"""
import argparse
import os
import subprocess
import sys
import time
import warnings

import numpy as np
import onnxruntime

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torchvision_models  # noqa: E402  (torchvision without its C extension)

DEFAULT = ["alexnet", "vgg11_bn", "googlenet", "inception_v3", "densenet121", "resnext50_32x4d", "wide_resnet50_2",
           "regnet_y_400mf", "efficientnet_b1", "efficientnet_v2_s", "mnasnet0_5", "shufflenet_v2_x0_5", "squeezenet1_0",
           "convnext_tiny", "vit_b_16", "swin_t"]
# timm's edge-sized CNNs (and two hybrids with attention, mobilevit and efficientvit).
TIMM_DEFAULT = ["mobilenetv1_100", "mobilenetv2_100", "mobilenetv3_large_100", "tf_mobilenetv3_small_100", "mobilenetv4_conv_small",
                "efficientnet_lite0", "tf_efficientnet_lite0", "lcnet_050", "ghostnet_100", "mixnet_s", "fbnetc_100", "hardcorenas_a",
                "tinynet_e", "semnasnet_050", "spnasnet_100", "rexnet_100", "repvgg_a0", "mobileone_s0", "resnet18d", "resnet10t",
                "regnetx_002", "regnety_002", "dla34", "darknet17", "ese_vovnet19b_dw", "selecsls42b", "gernet_s", "densenetblur121d",
                "mobilevit_xxs", "efficientvit_b0"]
SIZES = {"inception_v3": 299}
IMAGENET_MEAN, IMAGENET_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]  # what --norm imagenet means
OPTIONS = {"googlenet": {"aux_logits": False, "init_weights": True}, "inception_v3": {"aux_logits": False, "init_weights": True}}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", choices=["torchvision", "timm"], default="torchvision")
    parser.add_argument("--models", help=f"comma-separated (default: {','.join(DEFAULT)}; with --source timm: {','.join(TIMM_DEFAULT)})")
    parser.add_argument("--out", default="out/import-check")
    parser.add_argument("--sieve", default=os.environ.get("SIEVE_BIN", ".build/release/sieve"))
    parser.add_argument("--exporter", choices=["dynamo", "legacy"], default="dynamo",
                        help="torch's default exporter (dynamo) or the TorchScript one (dynamo=False)")
    parser.add_argument("--opset", type=int, default=17, help="the legacy exporter's opset (default 17)")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch = torchvision_models.torch
    if args.source == "timm":
        import timm  # after torchvision_models: timm imports torchvision
    names = (args.models or ",".join(TIMM_DEFAULT if args.source == "timm" else DEFAULT)).split(",")
    warnings.filterwarnings("ignore")
    failed = 0
    for name in names:
        started, size = time.time(), SIZES.get(name, 224)
        calib = os.path.join(args.out, f"calib{size}.npy")
        if not os.path.exists(calib):
            np.save(calib, np.random.default_rng(0).integers(0, 256, (4, size, size, 3), dtype=np.uint8))
        torch.manual_seed(0)
        if args.source == "timm":
            model = timm.create_model(name, num_classes=10).eval()
        else:
            model = getattr(torchvision_models.torchvision.models, name)(num_classes=10, **OPTIONS.get(name, {})).eval()
        realistic_statistics(model, pictures(calib), torch)
        onnx_path = os.path.join(args.out, f"{name}.onnx")
        try:
            if args.exporter == "legacy":
                torch.onnx.export(model, (torch.zeros(1, 3, size, size),), onnx_path, dynamo=False, opset_version=args.opset)
            else:
                torch.onnx.export(model, (torch.zeros(1, 3, size, size),), onnx_path)
        except Exception as e:  # noqa: BLE001 (torch's own exporter failing is a result too)
            failed += 1
            print(f"{name}: torch.onnx.export failed: {str(e).splitlines()[0][:200]}", flush=True)
            continue
        dump = os.path.join(args.out, f"{name}-float.npy")
        proc = subprocess.run([args.sieve, "quantize", onnx_path, "--norm", "imagenet", "--calib", calib, "--no-bias-correction",
                               "-o", os.path.join(args.out, f"{name}.sieve"), "--dump-float-logits", dump], capture_output=True, text=True)
        if proc.returncode == 0:
            result = next(line for line in proc.stdout.splitlines() if line.startswith("wrote "))
            difference, spread = import_difference(onnx_path, calib, np.load(dump))
            result += f"; float import vs ONNX Runtime: {difference:.1e}"
            if not difference < 1e-4:
                failed += 1
                result += " (differs)"
            if spread < 1e-3:  # random deep networks can lose the picture entirely (GoogLeNet's activations vanish)
                result += f" (but ONNX Runtime's logits hardly vary across the pictures, {spread:.0e} of their size: this says little)"
        else:
            failed += 1
            result = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
        print(f"{name} ({time.time() - started:.0f} s): {result}", flush=True)
    print(f"{failed} of {len(names)} refused or differ")


def pictures(calib):
    """The calibration pictures as the model sees them (--norm imagenet), NCHW float32."""
    x = np.load(calib).astype(np.float32) / 255
    return ((x - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)).astype(np.float32).transpose(0, 3, 1, 2)


def realistic_statistics(model, x, torch):
    """BatchNorm statistics from the pictures: with random weights and BatchNorm's defaults (mean 0, variance 1)
    activations can vanish (GoogLeNet's logits did not vary at all across pictures) and the comparison says nothing."""
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a plain average over the batches seen
    if norms:
        model.train()
        with torch.no_grad():
            model(torch.from_numpy(x))
        model.eval()


def import_difference(onnx_path, calib, sieve_float):
    """max |Sieve's float logits - ONNX Runtime's| / max |ONNX Runtime's| on the calibration pictures, and how
    much ONNX Runtime's logits vary across the pictures (largest standard deviation / max |logit|)."""
    x = pictures(calib)
    session = onnxruntime.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    reference = np.concatenate([session.run(None, {name: x[i:i + 1]})[0] for i in range(len(x))])
    size = max(np.abs(reference).max(), 1e-12)
    return float(np.abs(reference - sieve_float).max() / size), float(reference.std(0).max() / size)


if __name__ == "__main__":
    main()
