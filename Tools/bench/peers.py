#!/usr/bin/env python3
"""Sieve against ONNX Runtime and OpenVINO: same run, same images, one thread, batch 1.

    python3 Tools/bench/peers.py MODEL.onnx BLOB.sieve [--images IDX|NPY] [--labels IDX|NPY]
        [--calib IDX|NPY] [--calib-count N] [--calib-method minmax|entropy|percentile]
        [--activations int8|uint8] [--runs N] [--warmup N] [--limit N] [--cache-dir DIR] [--json]

Engines, every one on the graph that computes the final logits only (the early-exit head outputs
are cut off and the nodes only they need pruned; the pruned graph's logits are checked against the
full model's on every image used):

  ort-float      ONNX Runtime (CPU EP) on the float ONNX model
  ort-qdq        ONNX Runtime on an int8 QDQ model of its own, made with quantize_static after
                 quant_pre_process (QuantFormat.QDQ, per-channel symmetric int8 weights, asymmetric
                 uint8 activations, MinMax calibration on the first N images of --calib, N as the
                 blob's provenance says, else 1000 as `sieve quantize` does). Why U8S8 and not S8S8:
                 ORT's x86 kernels (MLAS, QLinearConv/QGemm) take uint8 activations; S8S8 models get
                 their activations rewritten to uint8 at load (QDQS8ToU8Transformer), which gives the
                 same graph and speed on VGG-S and MobileNet-S, but misses tensors that feed two
                 nodes, so on ResNet-S 6 of 9 convs and 2 of 3 adds stay float (2.7x slower).
                 --activations int8 selects S8S8.
  openvino-qdq   OpenVINO (CPU device) on that QDQ model
  sieve          `sieve bench BLOB --json` (its median_us: network without heads, exits off), run as a
                 subprocess ($SIEVE_BIN or .build/release/sieve); its accuracy from `sieve eval --json`
  sieve-exits    the same blob with its tuned early exits on (bench's exits_median_us), when this
                 build of sieve reports it; its isa and peak_gmacs are shown when reported too

One thread everywhere: ORT intra_op 1, inter_op 1, sequential; OpenVINO INFERENCE_NUM_THREADS 1,
PERFORMANCE_HINT LATENCY, NUM_STREAMS 1. Each timed run is one image, cycling through the images in
the order `sieve bench` does; the u8 -> float normalisation is done before timing (Sieve's timing
excludes setting the input too), OpenVINO's input tensor is set before timing, and
time.perf_counter_ns brackets session.run / infer_request.infer alone. Medians and p99 over the runs
after warm-up, as `sieve bench` computes them. Top-1 accuracy is measured on every image used (all
of --images, or the first --limit), untimed, with the same session.

The ratios are Sieve's median over each peer's (above 1: Sieve is slower). The peers' times include
the Python binding's call; its floor, the same call on a one-node Identity graph, is reported too. The QDQ and logits-only
models are cached under out/peers/, keyed by the model file's SHA-256 and the quantisation settings.
"""
import argparse
import contextlib
import hashlib
import json
import logging
import os
import platform
import re
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "Tools", "train"))
import eval_float  # noqa: E402
import float_exits  # noqa: E402
from engines import (OpenVinoEngine, OrtEngine, PeerError, blob_provenance, call_floor, latency_stats,  # noqa: E402
                     logits_only, make_qdq, predictions, run_sieve, sieve_bin, sieve_version, time_engine,
                     write_atomic)

DEFAULT_IMAGES = os.path.join(REPO, "data", "fashion-mnist-test-1000-images-idx3-ubyte.gz")
DEFAULT_CALIB = os.path.join(REPO, "data", "fashion-mnist-calib-1000-images-idx3-ubyte.gz")
DEFAULT_CALIB_COUNT = 1000         # `sieve quantize --calib-count` default (QuantizeOptions.defaultCount)
CACHE_FORMAT = 1                   # bump when the way the cached models are made changes
PEERS = ["ort-float", "ort-qdq", "openvino-qdq"]
INT8_PEERS = ["ort-qdq", "openvino-qdq"]


def show(path):
    """A path relative to the working directory when it lies under it."""
    rel = os.path.relpath(path)
    return path if rel.startswith("..") else rel


def say(message):
    print(message, file=sys.stderr, flush=True)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def cpu_model():
    """The first CPU's model name from /proc/cpuinfo, with its family and model numbers (virtual
    machines often show only a generic name)."""
    fields = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if not line.strip():
                    break
                k, _, v = line.partition(":")
                fields.setdefault(k.strip(), v.strip())
    except OSError:
        pass
    name = fields.get("model name") or platform.processor() or platform.machine()
    if "cpu family" in fields and "model" in fields:
        name += f" (family {fields['cpu family']}, model {fields['model']})"
    return name


def default_labels(images):
    base = os.path.basename(images)
    for a, b in (("-images-idx3-", "-labels-idx1-"), ("images-idx3", "labels-idx1"), ("images", "labels")):
        if a in base:
            return os.path.join(os.path.dirname(images), base.replace(a, b, 1))
    raise PeerError(f"cannot guess the labels file for {images}; pass --labels")


# ----------------------------------------------------------------------------------------------

def ratio(a, b):
    return a / b if a is not None and b else None


def run(args):
    warnings = []

    def warn(message):
        warnings.append(message)
        say(f"warning: {message}")

    for path, what in ((args.model, "model"), (args.blob, "blob"), (args.images, "images"), (args.calib, "calibration images")):
        if not os.path.isfile(path):
            raise PeerError(f"{what} not found: {path}")
    binary = sieve_bin()
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        raise PeerError(f"sieve CLI not found at {binary} (set SIEVE_BIN or run swift build -c release --product sieve)")
    labels_path = args.labels or default_labels(args.images)
    if not os.path.isfile(labels_path):
        raise PeerError(f"labels not found: {labels_path} (pass --labels)")

    import onnx
    import onnxruntime
    import openvino

    model_sha = sha256_file(args.model)
    meta = eval_float.metadata(args.model)
    images = float_exits.read_array(args.images)
    labels = np.asarray(float_exits.read_array(labels_path)).reshape(-1)
    if len(labels) < len(images):
        raise PeerError(f"{labels_path}: {len(labels)} labels for {len(images)} images")
    labels = labels[:len(images)]
    if args.limit is not None:
        images, labels = images[:args.limit], labels[:args.limit]
    count = len(images)
    if count == 0:
        raise PeerError(f"{args.images} holds no images")
    x = eval_float.preprocess(images, meta)
    xs = [np.ascontiguousarray(x[i:i + 1]) for i in range(count)]

    # The blob: the model and calibration it came from, per its provenance.
    prov = blob_provenance(args.blob)
    if not prov:
        warn(f"cannot read the provenance of {args.blob}; not checking it came from {args.model}")
    elif prov.get("source_sha256") and prov["source_sha256"] != model_sha:
        warn(f"{args.blob} was quantised from {prov.get('source', '?')} (sha256 {prov['source_sha256'][:12]}), "
             f"not from {args.model} (sha256 {model_sha[:12]}): the engines run different networks")
    calib_count = args.calib_count
    m = re.search(r"on (\d+) images from (\S+)", prov.get("calibration", ""))
    if m:
        if calib_count is None:
            calib_count = int(m.group(1))
        elif calib_count != int(m.group(1)):
            warn(f"--calib-count {calib_count}, but {args.blob} was calibrated on {m.group(1)} images")
        if m.group(2) != os.path.basename(args.calib):
            warn(f"{args.blob} was calibrated on {m.group(2)}, the QDQ model on {os.path.basename(args.calib)}")
    if calib_count is None:
        calib_count = DEFAULT_CALIB_COUNT

    # Logits-only graph, cached, checked against the full model on every image used.
    os.makedirs(args.cache_dir, exist_ok=True)
    stem = os.path.splitext(os.path.basename(args.model))[0]
    pruned_path = os.path.join(args.cache_dir, f"{stem}-{model_sha[:16]}-logits.onnx")
    pruned, prune_info = logits_only(args.model, meta)
    if not os.path.isfile(pruned_path):
        write_atomic(pruned_path, pruned.SerializeToString())
    say(f"logits-only graph: {prune_info['nodes']} of {prune_info['full_nodes']} nodes -> {show(pruned_path)}")
    full = OrtEngine("full", "float", args.model)
    full.outputs = [meta["sieve.final_output"]]
    ort_float = OrtEngine("ort-float", "float", pruned_path)
    want, got = predictions(full, xs), predictions(ort_float, xs)
    diff = float(np.abs(want - got).max())
    if not np.allclose(got, want, rtol=0, atol=1e-5 * max(1.0, float(np.abs(want).max()))):
        raise PeerError(f"the logits-only graph's logits differ from the full model's by up to {diff:g}")
    prune_info.update({"path": pruned_path, "checked_images": count, "max_abs_diff": diff, "identical": bool(np.array_equal(got, want))})
    del full

    # The QDQ model, cached by model hash and settings.
    calib_sha = sha256_file(args.calib)
    key = hashlib.sha256(json.dumps([CACHE_FORMAT, model_sha, calib_sha, calib_count, args.activations, args.calib_method,
                                     onnxruntime.__version__]).encode()).hexdigest()
    qdq_name = f"{stem}-{model_sha[:16]}-qdq-{args.activations}-{args.calib_method}{calib_count}-{key[:12]}.onnx"
    qdq_path = os.path.join(args.cache_dir, qdq_name)
    cached = os.path.isfile(qdq_path)
    qdq_seconds = 0.0
    if not cached:
        calib_images = float_exits.read_array(args.calib)
        if len(calib_images) < calib_count:
            raise PeerError(f"{args.calib} holds {len(calib_images)} images, {calib_count} wanted")
        say(f"quantising {show(pruned_path)} to QDQ ({args.activations} activations, {args.calib_method} on {calib_count} images)")
        t0 = time.time()
        with contextlib.redirect_stdout(sys.stderr):
            make_qdq(pruned_path, qdq_path, eval_float.preprocess(calib_images[:calib_count], meta),
                     args.activations, args.calib_method)
        qdq_seconds = time.time() - t0
    qdq_info = {"path": qdq_path, "cached": cached, "seconds": round(qdq_seconds, 2), "format": "QDQ",
                "activations": f"{args.activations}, asymmetric, per tensor", "weights": "int8, symmetric, per channel",
                "calibration": {"path": args.calib, "sha256": calib_sha, "count": calib_count, "method": args.calib_method}}

    engines = [ort_float, OrtEngine("ort-qdq", "int8", qdq_path), OpenVinoEngine("openvino-qdq", "int8", qdq_path)]
    results = {}
    for engine in engines:
        say(f"{engine.name}: accuracy on {count} images, then {args.warmup} + {args.runs} timed runs")
        pred = got if engine is ort_float else predictions(engine, xs)
        correct = int((pred.argmax(axis=1) == labels).sum())
        median, p99 = latency_stats(time_engine(engine, xs, args.runs, args.warmup))
        results[engine.name] = {"kind": engine.kind, "median_us": median, "p99_us": p99,
                                "accuracy": 100.0 * correct / count, "correct": correct, **engine.details()}
    del engines, ort_float
    floors = {"ort": call_floor(OrtEngine, args.cache_dir, xs[0]), "openvino": call_floor(OpenVinoEngine, args.cache_dir, xs[0])}
    for name in PEERS:
        results[name]["call_floor_us"] = floors[name.split("-")[0]]

    # Sieve, on the same images: when --limit cuts them, hand sieve the same first N as .npy.
    with tempfile.TemporaryDirectory(prefix="peers-") as tmp:
        images_arg, labels_arg = args.images, labels_path
        if args.limit is not None:
            images_arg, labels_arg = os.path.join(tmp, "images.npy"), os.path.join(tmp, "labels.npy")
            np.save(images_arg, np.ascontiguousarray(images, dtype=np.uint8))
            np.save(labels_arg, np.ascontiguousarray(labels, dtype=np.uint8))
        # One thread, said explicitly when this build of sieve takes --threads (it defaults to 1).
        one = ["--threads", "1"] if "--threads" in run_sieve("bench", "--help") else []
        say(f"sieve: eval on {count} images, then bench {args.warmup} + {args.runs} runs")
        ev = json.loads(run_sieve("eval", args.blob, "--images", images_arg, "--labels", labels_arg, *one, "--json"))
        bench = json.loads(run_sieve("bench", args.blob, "--images", images_arg, "--runs", args.runs,
                                     "--warmup", args.warmup, *one, "--json"))
    if ev.get("images") != count:
        raise PeerError(f"sieve eval ran {ev.get('images')} images, expected {count}")
    full_macs = int(bench["full_macs"])
    sieve = {"kind": "int8", "median_us": bench["median_us"], "p99_us": bench["p99_us"],
             "accuracy": ev["accuracy_no_exit"], "correct": round(ev["accuracy_no_exit"] * count / 100)}
    for k in ("kernels", "isa", "peak_gmacs", "threads"):   # whichever this build of sieve reports
        if k in bench:
            sieve[k] = bench[k]
    for r in [sieve, *results.values()]:
        r["gmacs"] = full_macs / r["median_us"] / 1000.0 if r["median_us"] else None
    head = {"sieve": sieve}
    if "exits_median_us" in bench:
        # Exits on: the blob's tuned thresholds; MACs vary per image, so no GMAC/s.
        head["sieve-exits"] = {"kind": "int8", "median_us": bench["exits_median_us"], "p99_us": bench.get("exits_p99_us"),
                               "gmacs": None, "accuracy": ev["accuracy"], "correct": round(ev["accuracy"] * count / 100),
                               "mean_macs": bench.get("exits_mean_macs", ev.get("mean_macs"))}
    results = {**head, **results}

    if sieve.get("threads", 1) != 1:
        warn(f"sieve bench ran on {sieve['threads']} threads, the peers on 1")
    for name in INT8_PEERS + ["sieve"]:
        if results[name]["accuracy"] < results["ort-float"]["accuracy"] - 2.0:
            warn(f"{name}: accuracy {results[name]['accuracy']:.2f} % is more than 2 points below float "
                 f"({results['ort-float']['accuracy']:.2f} %)")

    fastest = min(INT8_PEERS, key=lambda n: results[n]["median_us"])
    ratios = {n: ratio(sieve["median_us"], results[n]["median_us"]) for n in PEERS}
    ratios["fastest-int8-peer"] = ratios[fastest]
    report = {
        "model": args.model, "model_sha256": model_sha, "blob": args.blob, "images": args.images, "labels": labels_path,
        "image_count": count, "runs": args.runs, "warmup": args.warmup, "threads": 1, "batch": 1,
        "cpu": cpu_model(),
        "versions": {"python": platform.python_version(), "numpy": np.__version__, "onnx": onnx.__version__,
                     "onnxruntime": onnxruntime.__version__, "openvino": openvino.get_version(), "sieve": sieve_version()},
        "full_macs": full_macs, "logits_only": prune_info, "qdq": qdq_info,
        "engines": results, "peers": PEERS, "fastest_int8_peer": fastest, "ratios": ratios,
    }
    if "sieve-exits" in results:
        ex = results["sieve-exits"]["median_us"]
        report["ratios_exits"] = {**{n: ratio(ex, results[n]["median_us"]) for n in PEERS},
                                  "fastest-int8-peer": ratio(ex, results[fastest]["median_us"])}
    report["warnings"] = warnings
    return report


def fmt(v, spec):
    return "" if v is None else format(v, spec)


def print_table(rep):
    v = rep["versions"]
    s = rep["engines"]["sieve"]
    print(f"{show(rep['model'])} vs {show(rep['blob'])}: {rep['runs']} runs after {rep['warmup']} warm-up, batch 1, 1 thread, "
          f"{rep['image_count']} images from {show(rep['images'])}")
    print(f"CPU: {rep['cpu']}; onnxruntime {v['onnxruntime']}, openvino {v['openvino']}, sieve {v['sieve']}")
    facts = [f"kernels {s['kernels']}"] if s.get("kernels") else []
    facts += [f"isa {s['isa']}"] if s.get("isa") else []
    facts += [f"peak {s['peak_gmacs']:.1f} GMAC/s"] if isinstance(s.get("peak_gmacs"), (int, float)) else []
    if facts:
        print("sieve: " + ", ".join(facts))
    q = rep["qdq"]
    print(f"QDQ model: {show(q['path'])}{' (cached)' if q['cached'] else ''}; activations {q['activations']}, weights {q['weights']}, "
          f"{q['calibration']['method']} on {q['calibration']['count']} images from {show(q['calibration']['path'])}")
    lo = rep["logits_only"]
    same = "identical to" if lo["identical"] else f"within {lo['max_abs_diff']:.2g} of"
    print(f"peers run the logits-only graph ({lo['nodes']} of {lo['full_nodes']} nodes; logits {same} the full "
          f"model's on {lo['checked_images']} images); GMAC/s from sieve's full_macs {rep['full_macs']:,}")
    print("")
    names = {"sieve": "sieve", "sieve-exits": "sieve, exits on", "ort-float": "onnxruntime float",
             "ort-qdq": "onnxruntime QDQ int8", "openvino-qdq": "openvino QDQ int8"}
    print(f"{'engine':<22}{'median us':>11}{'p99 us':>10}{'GMAC/s':>9}{'accuracy':>11}{'sieve/this':>12}")
    for name, r in rep["engines"].items():
        rat = rep["ratios"].get(name)
        print(f"{names.get(name, name):<22}{fmt(r['median_us'], '.1f'):>11}{fmt(r['p99_us'], '.1f'):>10}"
              f"{fmt(r['gmacs'], '.2f'):>9}{fmt(r['accuracy'], '.2f') + ' %':>11}{fmt(rat, '.2f'):>12}")
    print("")
    r = rep["ratios"]
    line = (f"sieve / fastest int8 peer ({rep['fastest_int8_peer']}): {r['fastest-int8-peer']:.2f}; "
            f"sieve / onnxruntime float: {r['ort-float']:.2f}")
    if "ratios_exits" in rep:
        re_ = rep["ratios_exits"]
        line += f"; with exits on: {re_['fastest-int8-peer']:.2f} and {re_['ort-float']:.2f}"
    print(line)
    e = rep["engines"]
    print(f"call floor, the timed call on a one-node Identity graph: onnxruntime {e['ort-float']['call_floor_us']:.1f} us, "
          f"openvino {e['openvino-qdq']['call_floor_us']:.1f} us (sieve's timing has none)")
    for w in rep["warnings"]:
        print(f"warning: {w}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="the float ONNX model (with its early-exit head outputs)")
    p.add_argument("blob", help="the .sieve blob quantised from it")
    p.add_argument("--images", default=DEFAULT_IMAGES, help="IDX or .npy uint8 images, cycled through (default %(default)s)")
    p.add_argument("--labels", help="their labels (default: the matching -labels-idx1- file)")
    p.add_argument("--calib", default=DEFAULT_CALIB, help="calibration images for the QDQ model (default %(default)s)")
    p.add_argument("--calib-count", type=int, help="use the first N (default: as many as the blob's provenance says, else 1000)")
    p.add_argument("--calib-method", choices=["minmax", "entropy", "percentile"], default="minmax",
                   help="ORT calibration (default %(default)s, ORT's default)")
    p.add_argument("--activations", choices=["uint8", "int8"], default="uint8",
                   help="QDQ activation type (default %(default)s, U8S8: what ORT's x86 int8 kernels take; with int8 "
                        "ORT must rewrite activations to uint8 at load and, on residual networks, leaves convs in float)")
    p.add_argument("--runs", type=int, default=200, help="timed runs per engine (default %(default)s, as sieve bench)")
    p.add_argument("--warmup", type=int, default=20, help="untimed warm-up runs first (default %(default)s)")
    p.add_argument("--limit", type=int, help="use only the first N images, for timing and accuracy")
    p.add_argument("--cache-dir", default=os.path.join(REPO, "out", "peers"), help="where the QDQ and logits-only models go")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args(argv)
    if args.runs < 1:
        p.error("--runs must be at least 1")
    if args.warmup < 0:
        p.error("--warmup must be at least 0")
    if args.limit is not None and args.limit < 1:
        p.error("--limit must be at least 1")
    if args.calib_count is not None and args.calib_count < 1:
        p.error("--calib-count must be at least 1")
    logging.getLogger().setLevel(logging.ERROR)   # onnxruntime.quantization warns through the root logger
    try:
        rep = run(args)
    except (PeerError, OSError, ValueError) as e:
        print(f"peers: {e}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(rep, indent=1))
    else:
        print_table(rep)
    return 0


if __name__ == "__main__":
    sys.exit(main())
