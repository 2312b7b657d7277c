#!/usr/bin/env python3
"""The model zoo: torchvision classifiers brought to Sieve the way a user brings theirs.

For each model: build it (10 classes, 3x224x224, fixed seed, no downloads); with --train-seconds,
train it on camera-like pictures (train_zoo.py: low resolution first, one thread) and re-estimate
its BatchNorm statistics at 224x224; without, keep its random weights, re-estimate BatchNorm
(so activations are realistic) and fit its last layer to the images' classes by least squares (so
logits vary across images; a network with constant logits proves nothing). Export it with
torch's default (dynamo) exporter, `sieve quantize --norm imagenet`, and compare the int8 blob's
logits with the float model's (ONNX Runtime) on held-out images. Prints one table row per model and writes a JSON report.

    python3 Tools/zoo/zoo.py --models mobilenet_v2,resnet18 --out out/zoo
    python3 Tools/zoo/zoo.py --models mobilenet_v2,resnet18 --out out/zoo --train-seconds 360
"""
import argparse
import json
import os
import shlex
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "reference"))
import camera_images  # noqa: E402
import sieve_blob  # noqa: E402
import torchvision_models  # noqa: E402
import train_zoo  # noqa: E402
import torch  # noqa: E402

ALL = ["mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large", "resnet18", "resnet50", "squeezenet1_1",
       "efficientnet_b0", "mnasnet1_0", "regnet_x_400mf", "shufflenet_v2_x1_0"]
MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)
SIZE = 224


def normalise(images):
    """uint8 NHWC -> float NCHW as the models expect (ImageNet mean/std, i.e. `--norm imagenet`)."""
    x = (images.astype(np.float32) / 255.0 - MEAN) / STD
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def batches(images, size=25):
    for i in range(0, len(images), size):
        yield torch.from_numpy(normalise(images[i:i + size]))


@torch.no_grad()
def estimate_batchnorm(model, images):
    """BatchNorm running statistics as the average over these images (momentum None)."""
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
        m.train()
    for x in batches(images):
        model(x)
    model.eval()


def last_layer(model):
    """The last Linear or Conv2d (SqueezeNet's classifier is a 1x1 conv)."""
    return [m for m in model.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))][-1]


@torch.no_grad()
def fit_last_layer(model, images, labels, classes):
    """Least-squares fit of the last layer on its (spatially averaged) inputs to one-hot targets."""
    layer = last_layer(model)
    captured = []
    hook = layer.register_forward_hook(lambda m, inp, out: captured.append(inp[0].flatten(2).mean(2) if inp[0].dim() == 4 else inp[0]))
    for x in batches(images):
        model(x)
    hook.remove()
    features = torch.cat(captured).double()
    mean, std = features.mean(0), features.std(0) + 1e-6
    z = (features - mean) / std
    targets = torch.nn.functional.one_hot(torch.from_numpy(labels.astype(np.int64)), classes).double() * 4.0
    a = torch.cat([z, torch.ones(len(z), 1, dtype=torch.float64)], 1)
    ridge = 1.0 * torch.eye(a.shape[1], dtype=torch.float64)
    solution = torch.linalg.solve(a.T @ a + ridge, a.T @ targets)  # [features + 1, classes]
    weight = (solution[:-1] / std[:, None]).T
    bias = solution[-1] - (weight * mean[None, :]).sum(1)
    if isinstance(layer, torch.nn.Conv2d):
        # SqueezeNet: ReLU, then the average pool, follow the conv. Lift the biases until the scores
        # are positive at nearly every position, so the ReLU passes them and the pooled score is the
        # fitted linear one plus a constant.
        layer.weight.copy_(weight.reshape(layer.weight.shape).float())
        layer.bias.copy_(bias.float())
        outputs = []
        hook = layer.register_forward_hook(lambda m, inp, out: outputs.append(out.transpose(0, 1).flatten(1)))
        for x in batches(images[:100]):
            model(x)
        hook.remove()
        low = torch.quantile(torch.cat(outputs, 1)[:, ::7].float(), 0.01, dim=1)
        layer.bias.add_(torch.clamp(-low.min(), min=0))  # one lift for all: the argmax is unchanged
    else:
        layer.weight.copy_(weight.float())
        layer.bias.copy_(bias.float())


def float_logits(onnx_path, images, noise_db=None):
    """The float model's logits (ONNX Runtime); with noise_db, on inputs with Gaussian noise added at
    that signal-to-noise ratio (seeded), to measure how sensitive the float model itself is."""
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(onnx_path, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    rng = np.random.default_rng(0)

    def perturb(x):
        if noise_db is None:
            return x
        return x + rng.normal(0, float(np.sqrt(np.mean(x ** 2))) * 10 ** (-noise_db / 20), x.shape).astype(np.float32)
    # The export has a static batch of 1, as Sieve needs.
    return np.concatenate([session.run(None, {name: perturb(x[i:i + 1].numpy())})[0]
                           for x in batches(images) for i in range(len(x))])


def sieve(sieve_bin, *args):
    result = subprocess.run([sieve_bin, *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"sieve {args[0]} failed ({result.returncode}):\n{result.stderr.strip()}")
    return result


def sqnr_db(reference, test):
    noise = np.sum((reference - test) ** 2)
    return float("inf") if noise == 0 else float(10 * np.log10(np.sum(reference ** 2) / noise))


def run_model(name, args, data):
    directory = os.path.join(args.out, name)
    os.makedirs(directory, exist_ok=True)
    onnx_path = os.path.join(directory, f"{name}.onnx")
    blob = os.path.join(directory, f"{name}.sieve")
    model = torchvision_models.build(name, seed=args.seed)
    trained = {}
    saved = os.path.join(args.weights, name, f"{name}-trained.pt") if args.weights else None
    resumed = saved is not None and os.path.isfile(saved)
    if resumed:
        # Weights trained by an earlier run (its --out directory), BatchNorm statistics included.
        model.load_state_dict(torch.load(saved))
        model.eval()
        trained = {"weights": saved}
    if args.train_seconds > 0:
        # Trained weights (train_zoo.py), then BatchNorm statistics measured at 224x224. From --weights
        # this is a warm restart (a fresh cosine schedule) on pictures the first run did not draw.
        started = time.monotonic()
        # Without BatchNorm (SqueezeNet) a tenth of the learning rate: at 2e-3, AdamW drives every input of
        # SqueezeNet's classifier ReLU below 0 within seconds, and the loss stays at ln 10 for good.
        has_batchnorm = any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
        steps, train_accuracy = train_zoo.train(model, args.train_seconds, args.train_resolutions,
                                                seed=args.seed + (1 if resumed else 0),
                                                lr=2e-3 if has_batchnorm else 2e-4,
                                                log=lambda line: print(f"{name}: {line}", file=sys.stderr, flush=True))
        trained.update({"train_steps": steps, "train_accuracy": train_accuracy, "train_s": time.monotonic() - started})
        estimate_batchnorm(model, data["bn"])
        torch.save(model.state_dict(), os.path.join(directory, f"{name}-trained.pt"))  # to study it later
    elif not resumed:
        # Random weights: realistic activations, and a last layer that gives the classes margins.
        estimate_batchnorm(model, data["bn"])
        fit_last_layer(model, data["fit"], data["fit_labels"], 10)
    torch.onnx.export(model, (torch.zeros(1, 3, SIZE, SIZE),), onnx_path)  # the default exporter
    reference = float_logits(onnx_path, data["eval"])
    noisy = float_logits(onnx_path, data["eval"], noise_db=40)
    started = time.monotonic()
    quantized = sieve(args.sieve, "quantize", onnx_path, "--calib", data["calib_path"], "--norm", "imagenet", "-o", blob,
                      *shlex.split(args.quantize_args))
    quantize_s = time.monotonic() - started
    with open(os.path.join(directory, "quantize.log"), "w") as log:  # the per-layer SQNR table among it
        log.write(quantized.stdout + quantized.stderr)
    info = json.loads(sieve(args.sieve, "inspect", blob, "--json").stdout)
    exact, raw = os.path.join(directory, "exact-logits.npy"), os.path.join(directory, "int8-logits.npy")
    sieve(args.sieve, "eval", blob, "--images", data["eval_path"], "--labels", data["labels_path"],
          "--dump-exact-logits", exact, "--dump-logits", raw)
    quantised = np.load(exact)[:, 0, :]
    # The independent int8 reference (Tools/reference, written from docs/FORMAT.md) on the first
    # images: the runtime must give the same int8 logits and the same exact logits (what answers
    # are read from), whatever the model's weights are.
    checked = min(args.reference, len(data["eval"]))
    mismatches = None
    if checked:
        model = sieve_blob.load(blob)
        ran = sieve_blob.run(model, data["eval"][:checked], keep_all=True)
        reference_exact = sieve_blob.exact_logits(model, ran["tensors"])[:, 0, :]
        mismatches = int(np.sum(np.any(np.load(raw)[:checked, 0, :] != ran["final"], axis=1)
                                | np.any(quantised[:checked] != reference_exact, axis=1)))
    bench = json.loads(sieve(args.sieve, "bench", blob, "--images", data["eval_path"], "--runs", str(args.runs),
                             "--warmup", "5", "--json").stdout)
    spread = float(np.std(reference, axis=0).mean())
    return {
        "model": name, "ops": len(info["ops"]), "macs": info["full_macs"], "blob_bytes": os.path.getsize(blob),
        "arena_bytes": info["arena_bytes"], "images": len(reference),
        "agreement": float(np.mean(reference.argmax(1) == quantised.argmax(1))),
        "sqnr_db": sqnr_db(reference, quantised),
        # The float model against itself with 40 dB of input noise: how much any int8 model can agree.
        "noise40_agreement": float(np.mean(reference.argmax(1) == noisy.argmax(1))),
        "noise40_sqnr_db": sqnr_db(reference, noisy),
        "float_accuracy": float(np.mean(reference.argmax(1) == data["eval_labels"])),
        "int8_accuracy": float(np.mean(quantised.argmax(1) == data["eval_labels"])),
        "logit_spread": spread, "quantize_s": quantize_s,
        "reference_images": checked, "reference_mismatches": mismatches,
        "median_us": bench["median_us"], "isa": bench["isa"], **trained,
    }


def prepare_data(args):
    os.makedirs(args.out, exist_ok=True)
    bn, _ = camera_images.load("train", args.bn_images, SIZE, seed=11)
    # Only random-weight models have their last layer fitted.
    fit, fit_labels = camera_images.load("train", args.fit_images, SIZE, seed=12) if not args.train_seconds else (None, None)
    calib, _ = camera_images.load("train", args.calib_images, SIZE, seed=13)
    evaluation, eval_labels = camera_images.load("test", args.images, SIZE, seed=14)
    paths = {k: os.path.join(args.out, f"{k}.npy") for k in ("calib", "eval", "labels")}
    np.save(paths["calib"], calib)
    np.save(paths["eval"], evaluation)
    np.save(paths["labels"], eval_labels)
    return {"bn": bn, "fit": fit, "fit_labels": fit_labels, "eval": evaluation, "eval_labels": eval_labels,
            "calib_path": paths["calib"], "eval_path": paths["eval"], "labels_path": paths["labels"]}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=",".join(ALL), help=f"comma-separated (default: all of {', '.join(ALL)})")
    parser.add_argument("--out", default="out/zoo")
    parser.add_argument("--sieve", default=os.environ.get("SIEVE_BIN", os.path.join(HERE, "..", "..", ".build", "release", "sieve")),
                        help="the sieve CLI (default: $SIEVE_BIN, else this checkout's .build/release/sieve)")
    parser.add_argument("--images", type=int, default=500, help="held-out images compared (default 500)")
    parser.add_argument("--calib-images", type=int, default=200)
    parser.add_argument("--bn-images", type=int, default=200)
    parser.add_argument("--fit-images", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=50, help="timed runs for the latency")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--reference", type=int, default=0,
                        help="also run the first N images through the independent int8 reference and count the "
                             "pictures whose int8 or exact logits differ")
    parser.add_argument("--train-seconds", type=float, default=0,
                        help="train each model this long on one thread (train_zoo.py) instead of random weights")
    parser.add_argument("--train-resolutions", default="64,128,224",
                        help="progressive training resolutions (default 64,128,224: half the time at the first)")
    parser.add_argument("--weights", help="an earlier run's --out directory: reuse its MODEL/MODEL-trained.pt "
                        "instead of training, or with --train-seconds train it further (models without one are "
                        "trained or random as usual)")
    parser.add_argument("--quantize-args", default="",
                        help="more options for sieve quantize, to compare quantiser settings (e.g. '--depthwise-groups 1')")
    parser.add_argument("--json", help="write the report here (default OUT/zoo.json)")
    args = parser.parse_args()
    try:
        args.train_resolutions = [int(r) for r in args.train_resolutions.split(",")]
    except ValueError:
        parser.error(f"--train-resolutions: expected comma-separated integers, got {args.train_resolutions!r}")
    if args.train_seconds < 0 or any(r < 32 for r in args.train_resolutions):
        parser.error("--train-seconds must be >= 0 and every training resolution >= 32")
    # Before any training: a run that trains for an hour must not fail at its first `sieve quantize`.
    if not (os.path.isfile(args.sieve) and os.access(args.sieve, os.X_OK)):
        parser.error(f"--sieve: no sieve CLI at {args.sieve} (swift build -c release, or pass --sieve / set SIEVE_BIN)")
    torch.set_num_threads(args.threads)
    data = prepare_data(args)
    rows = []
    print("| model | ops | MMACs | blob KiB | arena KiB | int8/float top-1 | logit SQNR dB | float+40dB noise: top-1, SQNR dB "
          "| float acc | int8 acc | quantise s | median ms | train steps, s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name in args.models.split(","):
        try:
            r = run_model(name, args, data)
        except RuntimeError as error:
            print(f"| {name} | failed: {str(error).splitlines()[-1]} |", flush=True)
            rows.append({"model": name, "error": str(error)})
            continue
        rows.append(r)
        print(f"| {name} | {r['ops']} | {r['macs'] / 1e6:.0f} | {r['blob_bytes'] / 1024:.0f} | {r['arena_bytes'] / 1024:.0f} "
              f"| {100 * r['agreement']:.1f} % | {r['sqnr_db']:.1f} | {100 * r['noise40_agreement']:.1f} %, {r['noise40_sqnr_db']:.1f} "
              f"| {100 * r['float_accuracy']:.1f} % "
              f"| {100 * r['int8_accuracy']:.1f} % | {r['quantize_s']:.1f} | {r['median_us'] / 1000:.2f} ({r['isa']}) "
              f"| {r.get('train_steps', '-')}, {r.get('train_s', 0):.0f} |", flush=True)
    with open(args.json or os.path.join(args.out, "zoo.json"), "w") as f:
        json.dump(rows, f, indent=1)
    return 1 if any("error" in r for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
