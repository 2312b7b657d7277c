"""The engines Tools/bench/peers.py times: the logits-only and QDQ int8 models, ONNX Runtime and
OpenVINO sessions on one thread, LiteRT interpreters (XNNPACK) on the TFLite models that
tflite_convert.py makes, their timing loop, the CPU features that pick ONNX Runtime's int8 recipe,
and the sieve CLI run as a subprocess."""
import gc
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "Tools", "reference"))
import sieve_blob  # noqa: E402
sys.path.insert(0, os.path.join(REPO, "Tools", "train"))
import eval_float  # noqa: E402


class PeerError(Exception):
    pass


def latency_stats(times_ns):
    """(median, p99) in microseconds, the way `sieve bench` picks them (LatencyStats)."""
    s = sorted(times_ns)
    return s[len(s) // 2] / 1000.0, s[min(len(s) - 1, len(s) * 99 // 100)] / 1000.0


def write_atomic(path, data):
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def sieve_bin():
    return os.environ.get("SIEVE_BIN") or os.path.join(REPO, ".build", "release", "sieve")


def run_sieve(*args):
    binary = sieve_bin()
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        raise PeerError(f"sieve CLI not found at {binary} (set SIEVE_BIN or run swift build -c release --product sieve)")
    cmd = [binary, *map(str, args)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise PeerError(f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr.strip()}")
    return proc.stdout


def sieve_version():
    try:
        return run_sieve("--version").strip()
    except PeerError:
        return None


def blob_provenance(blob_path):
    """{key: value} from the blob's provenance section, {} when it cannot be read."""
    try:
        return dict(sieve_blob.load(blob_path).provenance_items())
    except Exception:  # noqa: BLE001 - provenance is advisory; sieve itself reports a bad blob
        return {}


# ----------------------------------------------------------------------------------------------
# The CPU, and ONNX Runtime's int8 recipe for it

def cpu_features(cpuinfo=None, arch=None):
    """{arch, x86, avx2, avx512_vnni, avx_vnni, vnni} from /proc/cpuinfo's first flags line (or the
    text and machine name given): what decides ONNX Runtime's int8 recipe on x86."""
    import platform
    arch = (arch or platform.machine()).lower()
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo") as f:
                cpuinfo = f.read()
        except OSError:
            cpuinfo = ""
    flags = set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            flags = set(value.split())
            break
    x86 = arch in ("x86_64", "amd64", "i386", "i686")
    feats = {"arch": arch, "x86": x86, "avx2": "avx2" in flags, "avx512_vnni": "avx512_vnni" in flags,
             "avx_vnni": "avx_vnni" in flags}
    feats["vnni"] = feats["avx512_vnni"] or feats["avx_vnni"]
    return feats


ORT_RECIPES = {
    "full-range": "U8S8 QDQ, 8-bit weights",
    "reduce-range": "U8S8 QDQ, reduce_range=True (7-bit weights)",
}


def ort_int8_recipe(features, choice="auto"):
    """ONNX Runtime's recommended int8 recipe for this CPU: on x86 without VNNI its u8s8 kernels
    (vpmaddubsw) add pairs of u8 x s8 products in saturating int16, and its quantisation docs
    recommend reduce_range (7-bit weights, so a pair cannot saturate) there; with AVX-512 VNNI or
    AVX-VNNI (vpdpbusd, int32 sums) and on Arm, full 8-bit weights. (name, why)."""
    if choice != "auto":
        return choice, f"--ort-recipe {choice}"
    if features["x86"] and not features["vnni"]:
        return "reduce-range", "x86 without VNNI (no avx512_vnni or avx_vnni flag): u8s8 sums saturate in int16"
    if features["x86"]:
        return "full-range", "x86 with VNNI: u8s8 sums in int32"
    return "full-range", f"{features['arch']}: no u8s8 int16 saturation"


# ----------------------------------------------------------------------------------------------
# Models: logits only, and the QDQ int8 model

def logits_only(model_path, meta):
    """The model with every output but the final logits removed and unused nodes pruned."""
    import onnx
    from onnx.utils import Extractor
    model = onnx.load(model_path)
    outputs = [o.name for o in model.graph.output]
    try:
        final = eval_float.final_output(model_path, meta)
    except ValueError as error:
        raise PeerError(str(error))
    if final not in outputs:
        raise PeerError(f"{model_path}: sieve.final_output '{final}' is not a graph output ({', '.join(outputs)})")
    initializers = {t.name for t in model.graph.initializer}
    inputs = [i.name for i in model.graph.input if i.name not in initializers]
    pruned = Extractor(model).extract_model(inputs, [final])
    del pruned.metadata_props[:]
    pruned.metadata_props.extend(model.metadata_props)
    onnx.checker.check_model(pruned)
    info = {"full_nodes": len(model.graph.node), "nodes": len(pruned.graph.node), "outputs": [final],
            "removed_outputs": [o for o in outputs if o != final]}
    return pruned, info


def ort_session(model):
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3
    return ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])


class CalibReader:
    """onnxruntime.quantization CalibrationDataReader over preprocessed images, one at a time."""

    def __init__(self, name, x):
        self.name, self.x, self.i = name, x, 0

    def get_next(self):
        if self.i >= len(self.x):
            return None
        self.i += 1
        return {self.name: self.x[self.i - 1:self.i]}

    def rewind(self):
        self.i = 0


def make_qdq(pruned_path, qdq_path, calib_x, activations, method, reduce_range=False):
    """quantize_static in QDQ format after ORT's recommended pre-processing (shape inference, basic
    optimisation): per-channel symmetric int8 weights (7-bit with reduce_range), asymmetric
    activations of the given type."""
    from onnxruntime.quantization import (CalibrationMethod, QuantFormat, QuantType, quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process
    import onnx
    methods = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
               "percentile": CalibrationMethod.Percentile}
    act = {"uint8": QuantType.QUInt8, "int8": QuantType.QInt8}[activations]
    input_name = onnx.load(pruned_path, load_external_data=False).graph.input[0].name
    work = tempfile.mkdtemp(prefix="qdq-", dir=os.path.dirname(qdq_path))
    try:
        pre = os.path.join(work, "pre.onnx")
        out = os.path.join(work, "qdq.onnx")
        quant_pre_process(pruned_path, pre)
        quantize_static(pre, out, CalibReader(input_name, calib_x), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=act, weight_type=QuantType.QInt8,
                        calibrate_method=methods[method], reduce_range=reduce_range)
        os.replace(out, qdq_path)
    finally:
        for f in os.listdir(work):
            os.remove(os.path.join(work, f))
        os.rmdir(work)


# ----------------------------------------------------------------------------------------------
# Engines

class OrtEngine:
    def __init__(self, name, kind, model_path):
        self.name, self.kind, self.path = name, kind, model_path
        self.session = ort_session(model_path)
        self.input = self.session.get_inputs()[0].name
        self.outputs = [self.session.get_outputs()[0].name]
        self.feed = None

    def set_input(self, x):
        self.feed = {self.input: x}

    def infer(self):
        return self.session.run(self.outputs, self.feed)

    def logits(self):
        return self.infer()[0]

    def details(self):
        return {"model": self.path, "providers": self.session.get_providers(), "intra_op_threads": 1,
                "inter_op_threads": 1, "execution_mode": "sequential"}


class OpenVinoEngine:
    def __init__(self, name, kind, model_path):
        import openvino as ov
        self.ov = ov
        self.name, self.kind, self.path = name, kind, model_path
        self.compiled = ov.Core().compile_model(model_path, "CPU", {
            "INFERENCE_NUM_THREADS": 1, "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1})
        self.request = self.compiled.create_infer_request()

    def set_input(self, x):
        self.request.set_input_tensor(self.ov.Tensor(x, shared_memory=True))

    def infer(self):
        self.request.infer()

    def logits(self):
        self.infer()
        return self.request.get_output_tensor(0).data.copy()

    def details(self):
        d = {"model": self.path, "device": "CPU"}
        for key in ("INFERENCE_NUM_THREADS", "NUM_STREAMS", "PERFORMANCE_HINT", "INFERENCE_PRECISION_HINT"):
            try:
                d[key.lower()] = str(self.compiled.get_property(key))
            except Exception:  # noqa: BLE001 - a property this version lacks
                pass
        # The kernels it compiled, by name and count (jit_avx2_I8, brgconv_avx512_I8, ...): which ISA ran.
        kernels = {}
        try:
            for op in self.compiled.get_runtime_model().get_ordered_ops():
                info = op.get_rt_info()
                name = info["primitiveType"].astype(str) if "primitiveType" in info else ""
                if name and not name.startswith("unknown"):
                    kernels[name] = kernels.get(name, 0) + 1
        except Exception:  # noqa: BLE001 - a runtime model this version does not describe
            pass
        if kernels:
            d["kernels"] = dict(sorted(kernels.items(), key=lambda kv: -kv[1]))
        return d


class LiteRtEngine:
    """A LiteRT interpreter with its default delegate (XNNPACK) on num_threads threads. An int8-input
    model gets its input quantised in set_input, before timing, as every engine's normalisation is;
    the timed call is invoke() alone."""

    def __init__(self, name, kind, model_path, threads=1):
        from ai_edge_litert.interpreter import Interpreter
        self.name, self.kind, self.path, self.threads = name, kind, model_path, threads
        self.interp = Interpreter(model_path=model_path, num_threads=threads)
        self.interp.allocate_tensors()
        self.inp = self.interp.get_input_details()[0]
        self.out = self.interp.get_output_details()[0]
        self.in_q = self.inp["quantization"] if self.inp["dtype"] != np.float32 else None
        self.out_q = self.out["quantization"] if self.out["dtype"] != np.float32 else None
        ops = self.interp._get_ops_details()   # noqa: SLF001 - the only way to see delegation
        self.delegate_nodes = sum(1 for op in ops if op.get("op_name") == "DELEGATE")

    def set_input(self, x):
        x = np.asarray(x, dtype=np.float32)
        if x.ndim == 4 and tuple(self.inp["shape"]) != x.shape:
            x = x.transpose(0, 2, 3, 1)            # NCHW -> NHWC
        if self.in_q is not None:
            scale, zero = self.in_q
            info = np.iinfo(self.inp["dtype"])
            x = np.clip(np.round(x / scale) + zero, info.min, info.max)
        self.interp.set_tensor(self.inp["index"], np.ascontiguousarray(x, dtype=self.inp["dtype"]))

    def infer(self):
        self.interp.invoke()

    def logits(self):
        self.infer()
        y = self.interp.get_tensor(self.out["index"])
        if self.out_q is not None:
            scale, zero = self.out_q
            return (y.astype(np.float32) - zero) * scale
        return y.copy()

    def details(self):
        return {"model": self.path, "num_threads": self.threads, "delegate": "XNNPACK" if self.delegate_nodes else None,
                "delegate_nodes": self.delegate_nodes, "input_dtype": np.dtype(self.inp["dtype"]).name,
                "output_dtype": np.dtype(self.out["dtype"]).name}


def call_floor(engine_class, cache_dir, x, runs=1000):
    """Median microseconds of the timed call on a one-node Identity graph with the same input: what
    the Python binding and the engine's dispatch cost before any layer runs."""
    from onnx import TensorProto, helper
    shape = list(x.shape)
    path = os.path.join(cache_dir, "identity-" + "x".join(map(str, shape)) + ".onnx")
    if not os.path.isfile(path):
        graph = helper.make_graph([helper.make_node("Identity", ["input"], ["output"])], "identity",
                                  [helper.make_tensor_value_info("input", TensorProto.FLOAT, shape)],
                                  [helper.make_tensor_value_info("output", TensorProto.FLOAT, shape)])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        write_atomic(path, model.SerializeToString())
    engine = engine_class("identity", "float", path)
    return latency_stats(time_engine(engine, [x], runs, 50))[0]


def predictions(engine, xs):
    out = []
    for x in xs:
        engine.set_input(x)
        out.append(np.asarray(engine.logits()).reshape(-1))
    return np.stack(out)


def time_engine(engine, xs, runs, warmup):
    """Nanoseconds of each timed run; images cycled as `sieve bench` does."""
    times = []
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        for r in range(-warmup, runs):
            engine.set_input(xs[(r + warmup) % len(xs)])
            start = time.perf_counter_ns()
            engine.infer()
            stop = time.perf_counter_ns()
            if r >= 0:
                times.append(stop - start)
    finally:
        if was_enabled:
            gc.enable()
    return times


# ----------------------------------------------------------------------------------------------
# Sieve
