#!/usr/bin/env python3
"""Sieve against ONNX Runtime, OpenVINO and LiteRT: same run, same images, batch 1.

    python3 Tools/bench/peers.py MODEL.onnx BLOB.sieve [--images IDX|NPY] [--labels IDX|NPY]
        [--calib IDX|NPY] [--calib-count N] [--calib-method minmax|entropy|percentile]
        [--activations int8|uint8] [--ort-recipe auto|full-range|reduce-range] [--no-litert]
        [--tf-python PYTHON] [--runs N] [--warmup N] [--rounds N] [--limit N] [--cache-dir DIR]
        [--isa best|avx2] [--json]

Engines, every one on the graph that computes the final logits only (the early-exit head outputs
are cut off and the nodes only they need pruned; the pruned graph's logits are checked against the
full model's on every image used). Each int8 peer runs its own engine's recommended int8 recipe for
the CPU it runs on; the report names the recipe of every engine:

  ort-float        ONNX Runtime (CPU EP) on the float ONNX model
  ort-qdq          ONNX Runtime on an int8 QDQ model of its own, made with quantize_static after
                   quant_pre_process (QuantFormat.QDQ, per-channel symmetric int8 weights, asymmetric
                   uint8 activations, MinMax calibration on the first N images of --calib, N as the
                   blob's provenance says, else 1000 as `sieve quantize` does). On x86 without VNNI
                   (no avx512_vnni or avx_vnni in /proc/cpuinfo) with reduce_range=True: ORT's u8s8
                   kernels there (vpmaddubsw) add pairs of products in saturating int16, and ORT's
                   quantisation docs recommend reduce_range (7-bit weights) on such CPUs; with VNNI
                   and on Arm, full 8-bit weights. --ort-recipe overrides the choice. Why U8S8 and
                   not S8S8: ORT's x86 kernels (MLAS, QLinearConv/QGemm) take uint8 activations;
                   S8S8 models get their activations rewritten to uint8 at load
                   (QDQS8ToU8Transformer), which gives the same graph and speed on VGG-S and
                   MobileNet-S, but misses tensors that feed two nodes, so on ResNet-S 6 of 9 convs
                   and 2 of 3 adds stay float (2.7x slower). --activations int8 selects S8S8.
  openvino-qdq     OpenVINO (CPU device) on the full-range (8-bit weight) QDQ model on every CPU:
                   OpenVINO's oneDNN kernels handle CPUs without VNNI themselves
  litert-float     LiteRT (ai-edge-litert, its default XNNPACK delegate) on a float TFLite model
                   of the same network, one thread; litert-float-2t the same on two threads
  litert-int8      LiteRT on a full-integer int8 TFLite model (TFLite's recipe: per-channel int8
                   conv weights, int8 activations, int8 input and output, calibrated on the same
                   images as the QDQ model), one thread; litert-int8-2t on two threads. Both TFLite
                   models come from Tools/bench/tflite_convert.py (ONNX -> Keras NHWC -> TFLite), run
                   as a subprocess with TensorFlow (tensorflow-cpu; --tf-python names another
                   interpreter; without TensorFlow here, out/peers/tf-env/bin/python is used when
                   that venv exists); the Keras model's float logits must equal ONNX
                   Runtime's, and the float TFLite model's are checked on every image used.
                   --no-litert leaves LiteRT out.
  sieve            `sieve bench BLOB --json` (its median_us: network without heads, exits off), run
                   as a subprocess ($SIEVE_BIN or .build/release/sieve); its accuracy from `sieve eval
                   --json`
  sieve-exits      the same blob with its tuned early exits on (bench's exits_median_us), when this
                   build of sieve reports it; its isa and peak_gmacs are shown when reported too

--isa avx2 measures an AVX2 host's standing on a CPU that has more: Sieve runs `--isa avx2` and
OpenVINO runs with ONEDNN_MAX_CPU_ISA=AVX2 (its oneDNN kernels, which the report lists by name,
then take their AVX2 forms; OpenVINO's global pool stays AVX-512). ONNX Runtime's int8 kernels and
LiteRT pick theirs from CPUID and cannot be held back, so ort-qdq and LiteRT are left out; ort-float
still gives the accuracy reference, its time unlimited. Not an AVX2 host: the cores' widths and
clocks are this CPU's.

One thread everywhere but the -2t rows: ORT intra_op 1, inter_op 1, sequential; OpenVINO
INFERENCE_NUM_THREADS 1, PERFORMANCE_HINT LATENCY, NUM_STREAMS 1; LiteRT num_threads 1 (2). Each
timed run is one image, cycling through the images in the order `sieve bench` does; the u8 -> float
normalisation (and, for LiteRT's int8-input model, the quantisation of that input and the NCHW ->
NHWC transpose) is done before timing (Sieve's timing excludes setting the input too), OpenVINO's and
LiteRT's input tensors are set before timing, and time.perf_counter_ns brackets session.run /
infer_request.infer / interpreter.invoke alone. Medians and p99 over the runs after warm-up, as
`sieve bench` computes them. Top-1 accuracy is measured on every image used (all of --images, or the
first --limit), untimed, with the same session.

Each int8 engine's accuracy is compared with its float model's (ort-float for the QDQ engines and
Sieve, litert-float for litert-int8): one more than 1 point below is flagged in the report, never an
error. The ratios are Sieve's median over each peer's (above 1: Sieve is slower); "fastest int8
peer" is the fastest one-thread int8 peer, reported both plainly and among those within 1 point of
their float model. The ORT and OpenVINO times include the Python binding's call; its floor, the same
call on a one-node Identity graph, is reported too. The QDQ, TFLite and logits-only models are cached
under out/peers/, keyed by the model file's SHA-256, the calibration images and count, the recipe and
the tool versions (the key is in the report).
"""
import argparse
import contextlib
import hashlib
import json
import logging
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "Tools", "train"))
import eval_float  # noqa: E402
import float_exits  # noqa: E402
from engines import (ORT_RECIPES, LiteRtEngine, OpenVinoEngine, OrtEngine, PeerError, blob_provenance,  # noqa: E402
                     call_floor, cpu_features, latency_stats, logits_only, make_qdq, ort_int8_recipe, predictions,
                     run_sieve, sieve_bin, sieve_version, time_engine, write_atomic)

DEFAULT_IMAGES = os.path.join(REPO, "data", "fashion-mnist-test-1000-images-idx3-ubyte.gz")
DEFAULT_CALIB = os.path.join(REPO, "data", "fashion-mnist-calib-1000-images-idx3-ubyte.gz")
DEFAULT_CALIB_COUNT = 1000         # `sieve quantize --calib-count` default (QuantizeOptions.defaultCount)
CACHE_FORMAT = 2                   # bump when the way the cached models are made changes
CONVERTER = os.path.join(HERE, "tflite_convert.py")
ORT_OV_PEERS = ["ort-float", "ort-qdq", "openvino-qdq"]
LITERT_PEERS = ["litert-float", "litert-float-2t", "litert-int8", "litert-int8-2t"]
ONE_THREAD_INT8 = ["ort-qdq", "openvino-qdq", "litert-int8"]   # candidates for "fastest int8 peer"
FLOAT_OF = {"ort-qdq": "ort-float", "openvino-qdq": "ort-float", "litert-int8": "litert-float",
            "litert-int8-2t": "litert-float", "sieve": "ort-float", "sieve-exits": "ort-float"}
WITHIN = 1.0                       # points below its float model before an int8 engine is flagged


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


def cache_key(*parts):
    return hashlib.sha256(json.dumps([CACHE_FORMAT, *parts]).encode()).hexdigest()


def tf_versions(python):
    """{package: version} of TensorFlow and Keras in the interpreter that runs the converter, without
    importing TensorFlow; {} when it has neither."""
    code = ("import json, importlib.metadata as m\n"
            "v = {}\n"
            "for p in ('tensorflow', 'tensorflow-cpu', 'keras'):\n"
            "    try: v[p] = m.version(p)\n"
            "    except m.PackageNotFoundError: pass\n"
            "print(json.dumps(v))")
    try:
        proc = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=60)
    except OSError as e:
        raise PeerError(f"cannot run {python} for the TFLite conversion: {e}") from e
    if proc.returncode != 0:
        raise PeerError(f"{python} -c ...: {proc.stderr.strip()}")
    return json.loads(proc.stdout)


def make_tflite(args, stem, model_sha, pruned_path, meta, calib_info, check_x, expect):
    """The float and int8 TFLite models, cached; converted by tflite_convert.py in a subprocess."""
    venv_python = os.path.join(args.cache_dir, "tf-env", "bin", "python")
    if args.tf_python is None:
        # This interpreter when it has TensorFlow, else the cache's own venv when one was made.
        args.tf_python = sys.executable
        if not (tf_versions(sys.executable).keys() & {"tensorflow", "tensorflow-cpu"}) and os.path.isfile(venv_python):
            args.tf_python = venv_python
    versions = tf_versions(args.tf_python)
    tf_version = versions.get("tensorflow") or versions.get("tensorflow-cpu")
    if not tf_version:
        raise PeerError(f"TensorFlow is not installed for {args.tf_python}, which converts the LiteRT peers' TFLite "
                        f"models: pip install tensorflow-cpu, or give it a venv of its own: python3 -m venv "
                        f"{show(os.path.dirname(os.path.dirname(venv_python)))} && {show(venv_python)} -m pip install "
                        "tensorflow-cpu onnx (used from then on); --no-litert leaves LiteRT out")
    key = cache_key(model_sha, calib_info["sha256"], calib_info["count"], "tflite", tf_version, versions.get("keras"),
                    sha256_file(CONVERTER))
    base = os.path.join(args.cache_dir, f"{stem}-{model_sha[:16]}-tflite-{key[:12]}")
    float_path, int8_path, info_path = f"{base}-float.tflite", f"{base}-int8-calib{calib_info['count']}.tflite", f"{base}.json"
    cached = all(os.path.isfile(p) for p in (float_path, int8_path, info_path))
    if not cached:
        calib_images = float_exits.read_array(args.calib)[:calib_info["count"]]
        say(f"converting {show(pruned_path)} to float and int8 TFLite (Keras NHWC; int8 calibrated on "
            f"{calib_info['count']} images) with TensorFlow {tf_version}")
        t0 = time.time()
        with tempfile.TemporaryDirectory(prefix="tflite-", dir=args.cache_dir) as tmp:
            files = {n: os.path.join(tmp, f"{n}.npy") for n in ("calib", "check", "expect")}
            np.save(files["calib"], eval_float.preprocess(calib_images, meta))
            np.save(files["check"], check_x)
            np.save(files["expect"], expect)
            cmd = [args.tf_python, CONVERTER, pruned_path, "--calib", files["calib"], "--check", files["check"],
                   "--expect", files["expect"], "--float-out", float_path, "--int8-out", int8_path,
                   "--info", os.path.join(tmp, "info.json")]
            proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
            if proc.returncode != 0:
                raise PeerError(f"TFLite conversion failed ({' '.join(cmd[:3])} ... exited {proc.returncode}):\n"
                                + "\n".join(proc.stderr.strip().splitlines()[-15:]))
            with open(os.path.join(tmp, "info.json")) as f:
                info = json.load(f)
        info["wall_seconds"] = round(time.time() - t0, 2)
        write_atomic(info_path, json.dumps(info, indent=1).encode())
    else:
        with open(info_path) as f:
            info = json.load(f)
    return {"float_path": float_path, "int8_path": int8_path, "cached": cached, "cache_key": key, "tf_python": args.tf_python,
            "converter": info, "calibration": calib_info,
            "int8_recipe": "TFLite full-integer: Optimize.DEFAULT, representative dataset, TFLITE_BUILTINS_INT8, "
                           "int8 input and output"}


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

    if args.isa == "avx2":
        if not cpu_features()["avx2"]:
            raise PeerError("--isa avx2: this CPU has no AVX2")
        os.environ["ONEDNN_MAX_CPU_ISA"] = "AVX2"   # read when OpenVINO's oneDNN first dispatches
        args.no_litert = True
    import onnx
    import onnxruntime
    import openvino
    litert_version = None
    if not args.no_litert:
        try:
            from importlib.metadata import version
            import ai_edge_litert.interpreter  # noqa: F401
            litert_version = version("ai-edge-litert")
        except ImportError as e:
            raise PeerError(f"LiteRT is not installed (pip install ai-edge-litert): {e}; --no-litert leaves it out") from e

    features = cpu_features()
    recipe, recipe_why = ort_int8_recipe(features, args.ort_recipe)

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
            warn(f"{args.blob} was calibrated on {m.group(2)}, the peers' models on {os.path.basename(args.calib)}")
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
    full.outputs = [eval_float.final_output(args.model, meta)]
    ort_float = OrtEngine("ort-float", "float", pruned_path)
    want, got = predictions(full, xs), predictions(ort_float, xs)
    diff = float(np.abs(want - got).max())
    if not np.allclose(got, want, rtol=0, atol=1e-5 * max(1.0, float(np.abs(want).max()))):
        raise PeerError(f"the logits-only graph's logits differ from the full model's by up to {diff:g}")
    prune_info.update({"path": pruned_path, "checked_images": count, "max_abs_diff": diff, "identical": bool(np.array_equal(got, want))})
    del full

    # The QDQ models, cached by model hash and settings: the full-range one for OpenVINO, and for
    # ONNX Runtime the one its recipe for this CPU asks for (the same file when that is full range).
    calib_sha = sha256_file(args.calib)
    calib_info = {"path": args.calib, "sha256": calib_sha, "count": calib_count}
    calib_images = None

    def qdq_model(reduce_range):
        nonlocal calib_images
        name = "reduce-range" if reduce_range else "full-range"
        key = cache_key(model_sha, calib_sha, calib_count, args.activations, args.calib_method, reduce_range,
                        onnxruntime.__version__)
        path = os.path.join(args.cache_dir, f"{stem}-{model_sha[:16]}-qdq-{args.activations}-{args.calib_method}{calib_count}"
                                            f"{'-rr' if reduce_range else ''}-{key[:12]}.onnx")
        cached = os.path.isfile(path)
        seconds = 0.0
        if not cached:
            if calib_images is None:
                calib_images = float_exits.read_array(args.calib)
                if len(calib_images) < calib_count:
                    raise PeerError(f"{args.calib} holds {len(calib_images)} images, {calib_count} wanted")
            say(f"quantising {show(pruned_path)} to QDQ ({args.activations} activations, {name} weights, "
                f"{args.calib_method} on {calib_count} images)")
            t0 = time.time()
            with contextlib.redirect_stdout(sys.stderr):
                make_qdq(pruned_path, path, eval_float.preprocess(calib_images[:calib_count], meta),
                         args.activations, args.calib_method, reduce_range=reduce_range)
            seconds = time.time() - t0
        return {"path": path, "cached": cached, "cache_key": key, "seconds": round(seconds, 2), "format": "QDQ",
                "recipe": name, "reduce_range": reduce_range,
                "activations": f"{args.activations}, asymmetric, per tensor",
                "weights": f"int8, symmetric, per channel{', 7-bit range (reduce_range)' if reduce_range else ''}",
                "calibration": {**calib_info, "method": args.calib_method}}

    qdq_full = qdq_model(False)
    qdq_ort = qdq_model(True) if recipe == "reduce-range" and args.isa != "avx2" else qdq_full
    models = {"qdq": qdq_full}
    if qdq_ort is not qdq_full:
        models["qdq-reduce-range"] = qdq_ort

    litert = None
    if not args.no_litert:
        litert = make_tflite(args, stem, model_sha, pruned_path, meta, calib_info, x, got)
        models["tflite"] = litert

    recipes = {
        "ort-float": "float ONNX, logits only",
        "ort-qdq": f"{ORT_RECIPES[recipe]}, {args.calib_method} on {calib_count} images; {recipe_why}",
        "openvino-qdq": f"{ORT_RECIPES['full-range']} (OpenVINO's CPU plugin runs it on every CPU)",
    }
    engines = [ort_float, OrtEngine("ort-qdq", "int8", qdq_ort["path"]),
               OpenVinoEngine("openvino-qdq", "int8", qdq_full["path"])]
    if args.isa == "avx2":   # ONNX Runtime's int8 kernels cannot be held to AVX2
        engines = [e for e in engines if e.name != "ort-qdq"]
        recipes["ort-float"] += " (its kernels not limited to AVX2: the accuracy reference)"
        recipes["openvino-qdq"] += ", ONEDNN_MAX_CPU_ISA=AVX2"
    if litert:
        engines += [LiteRtEngine("litert-float", "float", litert["float_path"], 1),
                    LiteRtEngine("litert-float-2t", "float", litert["float_path"], 2),
                    LiteRtEngine("litert-int8", "int8", litert["int8_path"], 1),
                    LiteRtEngine("litert-int8-2t", "int8", litert["int8_path"], 2)]
        recipes.update({n: "float TFLite (Keras NHWC from the ONNX weights), XNNPACK" for n in LITERT_PEERS[:2]})
        recipes.update({n: f"TFLite full-integer int8 (int8 in/out), calibrated on {calib_count} images, XNNPACK"
                        for n in LITERT_PEERS[2:]})
    for e in engines:
        if isinstance(e, LiteRtEngine):   # what LiteRT did, not what was asked of it
            d = (f"XNNPACK ({e.delegate_nodes} delegate node{'s' if e.delegate_nodes != 1 else ''})"
                 if e.delegate_nodes else "no delegate applied: LiteRT's built-in kernels")
            recipes[e.name] = recipes[e.name].replace("XNNPACK", d)
    peers = [e.name for e in engines]
    results = {}
    preds = {}
    for engine in engines:
        say(f"{engine.name}: accuracy on {count} images")
        pred = got if engine is ort_float else predictions(engine, xs)
        preds[engine.name] = pred
        correct = int((pred.argmax(axis=1) == labels).sum())
        results[engine.name] = {"kind": engine.kind, "threads": getattr(engine, "threads", 1), "median_us": None,
                                "p99_us": None, "accuracy": 100.0 * correct / count, "correct": correct,
                                "recipe": recipes[engine.name], **engine.details()}
    if litert:
        # The converter's check: the float TFLite model computes what the ONNX model does.
        fdiff = float(np.abs(preds["litert-float"] - got).max())
        tol = 1e-3 * max(1.0, float(np.abs(got).max()))
        litert["float_check"] = {"images": count, "max_abs_diff": fdiff, "tolerance": tol,
                                 "same_top1": int((preds["litert-float"].argmax(1) == got.argmax(1)).sum())}
        if fdiff > tol:
            raise PeerError(f"the float TFLite model's logits differ from ONNX Runtime's by up to {fdiff:g} (tolerance {tol:g})")
    floors = {"ort": call_floor(OrtEngine, args.cache_dir, xs[0]), "openvino": call_floor(OpenVinoEngine, args.cache_dir, xs[0])}
    for name in peers:
        results[name]["call_floor_us"] = floors.get(name.split("-")[0])

    # Sieve, on the same images: when --limit cuts them, hand sieve the same first N as .npy.
    with tempfile.TemporaryDirectory(prefix="peers-") as tmp:
        images_arg, labels_arg = args.images, labels_path
        if args.limit is not None:
            images_arg, labels_arg = os.path.join(tmp, "images.npy"), os.path.join(tmp, "labels.npy")
            np.save(images_arg, np.ascontiguousarray(images, dtype=np.uint8))
            np.save(labels_arg, np.ascontiguousarray(labels, dtype=np.uint8))
        # One thread, said explicitly when this build of sieve takes --threads (it defaults to 1).
        one = ["--threads", "1"] if "--threads" in run_sieve("bench", "--help") else []
        if args.isa == "avx2":
            one += ["--isa", "avx2"]
        say(f"sieve: eval on {count} images")
        ev = json.loads(run_sieve("eval", args.blob, "--images", images_arg, "--labels", labels_arg, *one, "--json"))
        # Timing in rounds: every peer, then sieve, each round, so that a change in the machine's
        # speed (a VM's can jump for seconds at a time) reaches every engine alike; medians over rounds.
        rounds = []
        for r in range(args.rounds):
            say(f"round {r + 1} of {args.rounds}: each engine {args.warmup} + {args.runs} timed runs, sieve last")
            timed = {e.name: latency_stats(time_engine(e, xs, args.runs, args.warmup)) for e in engines}
            bench = json.loads(run_sieve("bench", args.blob, "--images", images_arg, "--runs", args.runs,
                                         "--warmup", args.warmup, *one, "--json"))
            timed["sieve"] = (bench["median_us"], bench["p99_us"])
            if "exits_median_us" in bench:
                timed["sieve-exits"] = (bench["exits_median_us"], bench.get("exits_p99_us"))
            rounds.append(timed)
    del engines, ort_float, preds

    def over_rounds(name, i):
        values = [t[name][i] for t in rounds if t[name][i] is not None]
        return statistics.median(values) if values else None

    for name in peers:
        results[name]["median_us"], results[name]["p99_us"] = over_rounds(name, 0), over_rounds(name, 1)
    bench["median_us"], bench["p99_us"] = over_rounds("sieve", 0), over_rounds("sieve", 1)
    if "exits_median_us" in bench:
        bench["exits_median_us"], bench["exits_p99_us"] = over_rounds("sieve-exits", 0), over_rounds("sieve-exits", 1)
    if ev.get("images") != count:
        raise PeerError(f"sieve eval ran {ev.get('images')} images, expected {count}")
    full_macs = int(bench["full_macs"])
    sieve = {"kind": "int8", "threads": bench.get("threads", 1), "median_us": bench["median_us"], "p99_us": bench["p99_us"],
             "accuracy": ev["accuracy_no_exit"], "correct": round(ev["accuracy_no_exit"] * count / 100),
             "recipe": "sieve quantize (the blob)" + (f": {prov['calibration']}" if prov.get("calibration") else "")}
    for k in ("kernels", "isa", "peak_gmacs"):   # whichever this build of sieve reports
        if k in bench:
            sieve[k] = bench[k]
    for r in [sieve, *results.values()]:
        r["gmacs"] = full_macs / r["median_us"] / 1000.0 if r["median_us"] else None
    head = {"sieve": sieve}
    if "exits_median_us" in bench:
        # Exits on: the blob's tuned thresholds; MACs vary per image, so no GMAC/s.
        head["sieve-exits"] = {"kind": "int8", "threads": sieve["threads"], "median_us": bench["exits_median_us"],
                               "p99_us": bench.get("exits_p99_us"), "gmacs": None, "accuracy": ev["accuracy"],
                               "correct": round(ev["accuracy"] * count / 100), "recipe": "the blob, exits on",
                               "mean_macs": bench.get("exits_mean_macs", ev.get("mean_macs"))}
    results = {**head, **results}

    if sieve["threads"] != 1:
        warn(f"sieve bench ran on {sieve['threads']} threads, the one-thread peers on 1")

    # Each int8 engine against its own float model: flagged, not an error.
    flags = []
    for name, r in results.items():
        ref = FLOAT_OF.get(name)
        if ref in results:
            r["float_model"] = ref
            r["below_float"] = results[ref]["accuracy"] - r["accuracy"]
            r["flagged"] = r["below_float"] > WITHIN
            if r["flagged"]:
                flags.append(f"{name}: {r['accuracy']:.2f} %, {r['below_float']:.2f} points below its float model "
                             f"{ref} ({results[ref]['accuracy']:.2f} %); recipe: {r['recipe']}")

    one_thread_int8 = [n for n in ONE_THREAD_INT8 if n in results]
    fastest = min(one_thread_int8, key=lambda n: results[n]["median_us"])
    close = [n for n in one_thread_int8 if not results[n]["flagged"]]
    fastest_close = min(close, key=lambda n: results[n]["median_us"]) if close else None
    ratios = {n: ratio(sieve["median_us"], results[n]["median_us"]) for n in peers}
    ratios["fastest-int8-peer"] = ratios[fastest]
    ratios["fastest-int8-peer-within-1pt"] = ratios[fastest_close] if fastest_close else None
    versions = {"python": platform.python_version(), "numpy": np.__version__, "onnx": onnx.__version__,
                "onnxruntime": onnxruntime.__version__, "openvino": openvino.get_version(), "sieve": sieve_version()}
    if litert:
        versions["ai-edge-litert"] = litert_version
        versions["tensorflow"] = litert["converter"].get("tensorflow")
    report = {
        "model": args.model, "model_sha256": model_sha, "blob": args.blob, "images": args.images, "labels": labels_path,
        "image_count": count, "runs": args.runs, "warmup": args.warmup, "rounds": args.rounds, "threads": 1, "batch": 1,
        "cpu": cpu_model(), "cpu_features": features, "isa_limit": args.isa if args.isa != "best" else None,
        "ort_recipe": {"name": recipe, "description": ORT_RECIPES[recipe], "why": recipe_why, "choice": args.ort_recipe},
        "versions": versions, "full_macs": full_macs, "logits_only": prune_info,
        "qdq": qdq_ort, "models": models,
        "engines": results, "peers": peers, "int8_peers_one_thread": one_thread_int8,
        "fastest_int8_peer": fastest, "fastest_int8_peer_within_1pt": fastest_close, "ratios": ratios,
        "accuracy_flags": flags,
        # Each round's medians, and Sieve's against the fastest one-thread int8 peer in that round.
        "round_medians_us": [{n: t[n][0] for n in t} for t in rounds],
        "round_ratios": [ratio(t["sieve"][0], t[fastest][0]) for t in rounds],
    }
    if "sieve-exits" in results:
        ex = results["sieve-exits"]["median_us"]
        report["ratios_exits"] = {**{n: ratio(ex, results[n]["median_us"]) for n in peers},
                                  "fastest-int8-peer": ratio(ex, results[fastest]["median_us"]),
                                  "fastest-int8-peer-within-1pt": ratio(ex, results[fastest_close]["median_us"])
                                  if fastest_close else None}
    report["warnings"] = warnings
    return report


def fmt(v, spec):
    return "" if v is None else format(v, spec)


NAMES = {"sieve": "sieve", "sieve-exits": "sieve, exits on", "ort-float": "onnxruntime float",
         "ort-qdq": "onnxruntime QDQ int8", "openvino-qdq": "openvino QDQ int8",
         "litert-float": "litert float", "litert-float-2t": "litert float, 2 thr",
         "litert-int8": "litert int8", "litert-int8-2t": "litert int8, 2 thr"}


def print_table(rep):
    v = rep["versions"]
    s = rep["engines"]["sieve"]
    print(f"{show(rep['model'])} vs {show(rep['blob'])}: {rep['runs']} runs after {rep['warmup']} warm-up, batch 1, "
          f"1 thread{' (LiteRT also 2)' if 'tflite' in rep['models'] else ''}, {rep['image_count']} images from {show(rep['images'])}")
    f = rep["cpu_features"]
    isa = "AVX-512 VNNI" if f["avx512_vnni"] else "AVX-VNNI" if f["avx_vnni"] else "AVX2, no VNNI" if f["avx2"] else f["arch"]
    print(f"CPU: {rep['cpu']}, {isa}; onnxruntime {v['onnxruntime']}, openvino {v['openvino']}"
          + (f", ai-edge-litert {v['ai-edge-litert']} (TFLite models from tensorflow {v['tensorflow']})" if "ai-edge-litert" in v else "")
          + f", sieve {v['sieve']}")
    facts = [f"kernels {s['kernels']}"] if s.get("kernels") else []
    facts += [f"isa {s['isa']}"] if s.get("isa") else []
    facts += [f"peak {s['peak_gmacs']:.1f} GMAC/s"] if isinstance(s.get("peak_gmacs"), (int, float)) else []
    if facts:
        print("sieve: " + ", ".join(facts))
    if rep.get("isa_limit"):
        print(f"held to {rep['isa_limit'].upper()}: sieve --isa {rep['isa_limit']}, OpenVINO ONEDNN_MAX_CPU_ISA="
              f"{rep['isa_limit'].upper()}; ONNX Runtime int8 and LiteRT left out (they cannot be held back)")
    ov_kernels = rep["engines"].get("openvino-qdq", {}).get("kernels")
    if ov_kernels:
        print("openvino kernels: " + ", ".join(f"{k} x{n}" for k, n in ov_kernels.items()))
    o = rep["ort_recipe"]
    if "ort-qdq" in rep["engines"]:
        print(f"onnxruntime int8 recipe: {o['description']} ({o['why']})")
    for key, q in rep["models"].items():
        if key == "tflite":
            c = q["converter"]
            print(f"TFLite models: {show(q['float_path'])}, {show(q['int8_path'])}{' (cached)' if q['cached'] else ''}; "
                  f"Keras logits within {c['keras_max_abs_diff']:.2g} of ONNX Runtime's; float TFLite within "
                  f"{q['float_check']['max_abs_diff']:.2g} on {q['float_check']['images']} images; int8 calibrated on "
                  f"{c['calibration_images']} images")
        else:
            print(f"QDQ model ({q['recipe']}): {show(q['path'])}{' (cached)' if q['cached'] else ''}; activations "
                  f"{q['activations']}, weights {q['weights']}, {q['calibration']['method']} on "
                  f"{q['calibration']['count']} images from {show(q['calibration']['path'])}")
    lo = rep["logits_only"]
    same = "identical to" if lo["identical"] else f"within {lo['max_abs_diff']:.2g} of"
    print(f"peers run the logits-only graph ({lo['nodes']} of {lo['full_nodes']} nodes; logits {same} the full "
          f"model's on {lo['checked_images']} images); GMAC/s from sieve's full_macs {rep['full_macs']:,}")
    print("")
    print(f"{'engine':<22}{'kind':>5}{'thr':>4}{'median us':>11}{'p99 us':>10}{'GMAC/s':>9}{'accuracy':>11}"
          f"{'vs float':>10}{'sieve/this':>12}")
    for name, r in rep["engines"].items():
        rat = rep["ratios"].get(name)
        below = r.get("below_float")
        vs = "" if below is None else f"{0.0 - below:+.2f}" + ("!" if r.get("flagged") else " ")
        print(f"{NAMES.get(name, name):<22}{r['kind']:>5}{r.get('threads', 1):>4}{fmt(r['median_us'], '.1f'):>11}"
              f"{fmt(r['p99_us'], '.1f'):>10}{fmt(r['gmacs'], '.2f'):>9}{fmt(r['accuracy'], '.2f') + ' %':>11}"
              f"{vs:>10}{fmt(rat, '.2f'):>12}")
    print("")
    r = rep["ratios"]
    line = f"sieve / fastest one-thread int8 peer ({rep['fastest_int8_peer']}): {r['fastest-int8-peer']:.2f}; "
    if rep["fastest_int8_peer_within_1pt"]:
        line += (f"within 1 point of its float model ({rep['fastest_int8_peer_within_1pt']}): "
                 f"{r['fastest-int8-peer-within-1pt']:.2f}; ")
    else:
        line += "no int8 peer is within 1 point of its float model; "
    line += f"sieve / onnxruntime float: {r['ort-float']:.2f}"
    if "ratios_exits" in rep:
        re_ = rep["ratios_exits"]
        line += f"; with exits on: {re_['fastest-int8-peer']:.2f} and {re_['ort-float']:.2f}"
    print(line)
    if rep["rounds"] > 1:
        print(f"each round's sieve / {rep['fastest_int8_peer']}: " + ", ".join(f"{x:.2f}" for x in rep["round_ratios"])
              + f" (medians above: the median over {rep['rounds']} rounds)")
    e = rep["engines"]
    print(f"call floor, the timed call on a one-node Identity graph: onnxruntime {e['ort-float']['call_floor_us']:.1f} us, "
          f"openvino {e['openvino-qdq']['call_floor_us']:.1f} us (sieve's timing has none)")
    print("vs float: accuracy less that of the engine's float model (ort-float; litert-float for litert int8); "
          f"! marks more than {WITHIN:g} point below")
    print("recipes:")
    for name, r in rep["engines"].items():
        print(f"  {name}: {r['recipe']}")
    for flag in rep["accuracy_flags"]:
        print(f"flag: {flag}")
    for w in rep["warnings"]:
        print(f"warning: {w}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="the float ONNX model (with its early-exit head outputs)")
    p.add_argument("blob", help="the .sieve blob quantised from it")
    p.add_argument("--images", default=DEFAULT_IMAGES, help="IDX or .npy uint8 images, cycled through (default %(default)s)")
    p.add_argument("--labels", help="their labels (default: the matching -labels-idx1- file)")
    p.add_argument("--calib", default=DEFAULT_CALIB, help="calibration images for the peers' int8 models (default %(default)s)")
    p.add_argument("--calib-count", type=int, help="use the first N (default: as many as the blob's provenance says, else 1000)")
    p.add_argument("--calib-method", choices=["minmax", "entropy", "percentile"], default="minmax",
                   help="ORT calibration (default %(default)s, ORT's default)")
    p.add_argument("--activations", choices=["uint8", "int8"], default="uint8",
                   help="QDQ activation type (default %(default)s, U8S8: what ORT's x86 int8 kernels take; with int8 "
                        "ORT must rewrite activations to uint8 at load and, on residual networks, leaves convs in float)")
    p.add_argument("--ort-recipe", choices=["auto", "full-range", "reduce-range"], default="auto",
                   help="ONNX Runtime's QDQ weights: auto (default) is reduce_range on x86 without VNNI, else full range")
    p.add_argument("--no-litert", action="store_true", help="leave the LiteRT peers out (no TensorFlow needed)")
    p.add_argument("--tf-python", help="the Python with tensorflow-cpu (and onnx) that converts the TFLite models "
                                        "(default: this one when it has TensorFlow, else CACHE_DIR/tf-env/bin/python)")
    p.add_argument("--runs", type=int, default=200, help="timed runs per engine (default %(default)s, as sieve bench)")
    p.add_argument("--warmup", type=int, default=20, help="untimed warm-up runs first (default %(default)s)")
    p.add_argument("--rounds", type=int, default=1,
                   help="time every engine this many times in turn (each round: every peer, then sieve) and report "
                        "each engine's median over the rounds, with each round's ratio (default %(default)s)")
    p.add_argument("--limit", type=int, help="use only the first N images, for timing and accuracy")
    p.add_argument("--cache-dir", default=os.path.join(REPO, "out", "peers"), help="where the QDQ, TFLite and logits-only models go")
    p.add_argument("--isa", choices=["best", "avx2"], default="best",
                   help="avx2: Sieve and OpenVINO held to AVX2 on a CPU that has more, ONNX Runtime int8 and LiteRT "
                        "left out (see above); default: every engine's best")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args(argv)
    if args.runs < 1:
        p.error("--runs must be at least 1")
    if args.rounds < 1:
        p.error("--rounds must be at least 1")
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
