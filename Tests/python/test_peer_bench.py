"""Tools/bench/peers.py end to end: Sieve against ONNX Runtime (float and QDQ int8), OpenVINO and
LiteRT (float and int8, 1 and 2 threads) on VGG-S, few runs. Checks the report's structure, Sieve's
own accuracy, that the ratios are the latency quotients, the per-CPU ONNX Runtime recipe, that the
converted TFLite models compute what the ONNX model does, and that the models are cached. Nothing
here asserts a peer's accuracy or speed: those are what the benchmark measures, not what it is."""
import json
import os
import stat
import subprocess
import sys

import numpy as np
import pytest

from conftest import CALIB, MODEL, REPO, SIEVE_BIN, TEST1000_IMAGES, run_cli

sys.path.insert(0, os.path.join(REPO, "Tools", "bench"))
import engines as bench_engines  # noqa: E402

PEERS_PY = os.path.join(REPO, "Tools", "bench", "peers.py")
CONVERTER = os.path.join(REPO, "Tools", "bench", "tflite_convert.py")
ORT_OV = ["ort-float", "ort-qdq", "openvino-qdq"]
LITERT = ["litert-float", "litert-float-2t", "litert-int8", "litert-int8-2t"]
PEERS = ORT_OV + LITERT
ONE_THREAD_INT8 = ["ort-qdq", "openvino-qdq", "litert-int8"]
FLOAT_OF = {"ort-qdq": "ort-float", "openvino-qdq": "ort-float", "litert-int8": "litert-float",
            "litert-int8-2t": "litert-float", "sieve": "ort-float", "sieve-exits": "ort-float"}
LIMIT = 200


def run_peers(*args, sieve_bin=SIEVE_BIN):
    cmd = [sys.executable, PEERS_PY, *map(str, args)]
    env = {**os.environ, "SIEVE_BIN": sieve_bin}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env)
    if proc.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


def quick(blob, cache, *extra):
    return run_peers(MODEL, blob, "--images", TEST1000_IMAGES, "--limit", LIMIT, "--runs", 5, "--warmup", 1,
                     "--cache-dir", cache, *extra)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("peers-cache")


@pytest.fixture(scope="module")
def report(quantized_blob, cache_dir):
    return json.loads(quick(quantized_blob, cache_dir, "--json").stdout)


def check_ratios(ratios, sieve_us, engines, fastest, fastest_close, peers=PEERS):
    for name in peers:
        assert ratios[name] == pytest.approx(sieve_us / engines[name]["median_us"], rel=1e-12)
    assert ratios["fastest-int8-peer"] == pytest.approx(sieve_us / engines[fastest]["median_us"], rel=1e-12)
    if fastest_close is None:
        assert ratios["fastest-int8-peer-within-1pt"] is None
    else:
        assert ratios["fastest-int8-peer-within-1pt"] == pytest.approx(sieve_us / engines[fastest_close]["median_us"], rel=1e-12)


def test_report_structure(report, quantized_blob):
    assert report["image_count"] == LIMIT and report["runs"] == 5 and report["warmup"] == 1
    assert report["threads"] == 1 and report["batch"] == 1
    v = report["versions"]
    assert report["cpu"] and v["onnxruntime"] and v["openvino"] and v["ai-edge-litert"] and v["tensorflow"]
    # Sieve's full_macs is the network without heads, the graph the peers run.
    info = json.loads(run_cli("inspect", quantized_blob, "--json")[0].stdout)
    assert report["full_macs"] == info["full_macs"] - info["head_macs"]
    lo = report["logits_only"]
    assert lo["outputs"] == ["logits"] and lo["removed_outputs"] == [f"head{i}" for i in range(6)]
    assert lo["nodes"] < lo["full_nodes"] and lo["checked_images"] == LIMIT and lo["max_abs_diff"] <= 1e-4
    models = report["models"]
    for key, q in models.items():
        if key != "tflite":
            assert q["format"] == "QDQ" and q["calibration"]["count"] == 1000 and os.path.isfile(q["path"]), key
            assert q["reduce_range"] == (key == "qdq-reduce-range") and len(q["cache_key"]) == 64
    assert models["qdq"]["reduce_range"] is False and models["qdq"]["cache_key"][:12] in models["qdq"]["path"]
    assert report["warnings"] == []


def test_ort_recipe_follows_this_cpu(report):
    """The recipe is the one this host's /proc/cpuinfo calls for, and ort-qdq runs its model."""
    feats = bench_engines.cpu_features()
    assert report["cpu_features"] == feats
    want = "reduce-range" if feats["x86"] and not feats["vnni"] else "full-range"
    rec = report["ort_recipe"]
    assert rec["name"] == want and rec["choice"] == "auto" and rec["why"]
    models = report["models"]
    assert ("qdq-reduce-range" in models) == (want == "reduce-range")
    ort_model = models["qdq-reduce-range" if want == "reduce-range" else "qdq"]
    assert report["qdq"] == ort_model
    assert report["engines"]["ort-qdq"]["model"] == ort_model["path"]
    assert report["engines"]["openvino-qdq"]["model"] == models["qdq"]["path"]
    assert ("reduce_range=True" in report["engines"]["ort-qdq"]["recipe"]) == (want == "reduce-range")


@pytest.mark.parametrize("text, arch, recipe", [
    ("flags\t\t: fpu sse2 avx avx2 fma\n", "x86_64", "reduce-range"),                      # Zen 3, Haswell
    ("flags\t\t: fpu sse2 avx avx2 avx512f avx512bw avx512_vnni\n", "x86_64", "full-range"),  # Cascade Lake, Zen 4
    ("flags\t\t: fpu sse2 avx avx2 avx_vnni\n", "x86_64", "full-range"),                     # Alder Lake
    ("flags\t\t: fpu sse2 ssse3\n", "x86_64", "reduce-range"),                               # pre-AVX2
    ("Features\t: fp asimd asimddp\n", "aarch64", "full-range"),                             # Pi 5
])
def test_ort_recipe_rule(text, arch, recipe):
    feats = bench_engines.cpu_features(text, arch)
    assert bench_engines.ort_int8_recipe(feats)[0] == recipe
    assert bench_engines.ort_int8_recipe(feats, "full-range")[0] == "full-range"


def test_engines_structure(report):
    engines = report["engines"]
    assert report["peers"] == PEERS and set(PEERS + ["sieve"]) <= set(engines)
    for name, e in engines.items():
        assert e["median_us"] > 0 and (e["p99_us"] is None or e["p99_us"] >= e["median_us"]), name
        assert 0.0 <= e["accuracy"] <= 100.0 and e["correct"] == round(e["accuracy"] * LIMIT / 100), name
        assert e["recipe"], name
        if e["gmacs"] is not None:
            assert e["gmacs"] == pytest.approx(report["full_macs"] / e["median_us"] / 1000, rel=1e-12)
    assert [engines[n]["kind"] for n in PEERS] == ["float", "int8", "int8", "float", "float", "int8", "int8"]
    assert engines["sieve"]["kind"] == "int8"
    assert [engines[n]["threads"] for n in PEERS] == [1, 1, 1, 1, 2, 1, 2]
    assert engines["sieve"]["threads"] == 1
    assert all(engines[n]["call_floor_us"] > 0 for n in ORT_OV)
    assert all(engines[n]["num_threads"] == engines[n]["threads"] for n in LITERT)
    assert engines["litert-int8"]["input_dtype"] == "int8" and engines["litert-float"]["input_dtype"] == "float32"
    # Every int8 engine against its float model: the difference is reported, flagged past 1 point.
    flagged = []
    for name, ref in FLOAT_OF.items():
        if name not in engines:
            continue
        e = engines[name]
        assert e["float_model"] == ref
        assert e["below_float"] == pytest.approx(engines[ref]["accuracy"] - e["accuracy"], abs=1e-9)
        assert e["flagged"] == (e["below_float"] > 1.0)
        if e["flagged"]:
            flagged.append(name)
    assert [f.split(":")[0] for f in report["accuracy_flags"]] == [n for n in engines if n in flagged]


def test_sieve_accuracy(report):
    """Sieve's own int8 model: within 2 points of the float model on the same images."""
    engines = report["engines"]
    assert engines["sieve"]["accuracy"] > 80.0
    assert engines["sieve"]["accuracy"] >= engines["ort-float"]["accuracy"] - 2.0


def test_ratios_are_latency_quotients(report):
    engines = report["engines"]
    fastest = report["fastest_int8_peer"]
    assert report["int8_peers_one_thread"] == ONE_THREAD_INT8
    assert fastest == min(ONE_THREAD_INT8, key=lambda n: engines[n]["median_us"])
    close = [n for n in ONE_THREAD_INT8 if engines["ort-float" if n != "litert-int8" else "litert-float"]["accuracy"]
             - engines[n]["accuracy"] <= 1.0]
    fastest_close = min(close, key=lambda n: engines[n]["median_us"]) if close else None
    assert report["fastest_int8_peer_within_1pt"] == fastest_close
    check_ratios(report["ratios"], engines["sieve"]["median_us"], engines, fastest, fastest_close)
    if "sieve-exits" in engines:
        check_ratios(report["ratios_exits"], engines["sieve-exits"]["median_us"], engines, fastest, fastest_close)
    else:
        assert "ratios_exits" not in report


def test_tflite_models(report):
    """Our converter, not LiteRT's speed: the Keras and float TFLite logits equal ONNX Runtime's float
    logits, and the int8 model is full-integer and was calibrated on the blob's 1000 images."""
    t = report["models"]["tflite"]
    c = t["converter"]
    assert c["keras_check_images"] == LIMIT and c["keras_max_abs_diff"] <= min(c["keras_tolerance"], 1e-3)
    f = t["float_check"]
    assert f["images"] == LIMIT and f["max_abs_diff"] <= 1e-3
    assert c["calibration_images"] == 1000 and t["calibration"]["count"] == 1000
    assert t["int8_path"].endswith("-int8-calib1000.tflite") and os.path.isfile(t["int8_path"])
    assert t["tf_python"] == sys.executable
    assert os.path.isfile(t["float_path"]) and len(t["cache_key"]) == 64 and t["cache_key"][:12] in t["float_path"]
    from ai_edge_litert.interpreter import Interpreter
    interp = Interpreter(model_path=t["int8_path"])
    details = interp.get_tensor_details()
    weights = [d for d in details if len(d["shape"]) == 4 and d["shape"][0] > 1]    # conv kernels (OHWI)
    assert weights and all(d["dtype"] == np.int8 for d in weights)
    assert all(len(d["quantization_parameters"]["scales"]) == d["shape"][0] for d in weights)  # per channel
    assert interp.get_input_details()[0]["dtype"] == np.int8 and interp.get_output_details()[0]["dtype"] == np.int8


def test_cached_models_and_table(report, quantized_blob, cache_dir):
    proc = quick(quantized_blob, cache_dir)
    lines = proc.stdout.splitlines()
    qdq_lines = [line for line in lines if line.startswith("QDQ model")]
    assert qdq_lines and all("(cached)" in line for line in qdq_lines), proc.stdout
    assert any(line.startswith("TFLite models:") and "(cached)" in line for line in lines), proc.stdout
    for row in ("sieve ", "onnxruntime float", "onnxruntime QDQ int8", "openvino QDQ int8", "litert float ",
                "litert float, 2 thr", "litert int8 ", "litert int8, 2 thr"):
        assert any(line.startswith(row) for line in lines), (row, proc.stdout)
    assert "sieve / fastest one-thread int8 peer" in proc.stdout and "onnxruntime int8 recipe:" in proc.stdout
    assert "AVX" in lines[1] or "aarch64" in lines[1]


def test_other_ort_recipe(quantized_blob, cache_dir):
    """--ort-recipe forces the recipe this host would not pick: recorded, and its own cached model."""
    feats = bench_engines.cpu_features()
    auto = "reduce-range" if feats["x86"] and not feats["vnni"] else "full-range"
    other = "full-range" if auto == "reduce-range" else "reduce-range"
    rep = json.loads(quick(quantized_blob, cache_dir, "--ort-recipe", other, "--no-litert", "--json").stdout)
    assert rep["ort_recipe"]["name"] == other and rep["ort_recipe"]["choice"] == other
    assert ("qdq-reduce-range" in rep["models"]) == (other == "reduce-range") and "tflite" not in rep["models"]
    assert rep["peers"] == ORT_OV and not any(n.startswith("litert") for n in rep["engines"])
    assert rep["engines"]["ort-qdq"]["model"] == rep["qdq"]["path"]
    keys = {q["cache_key"] for q in rep["models"].values()}
    assert len(keys) == len(rep["models"])


def test_converter_residual_and_depthwise(tmp_path):
    """tflite_convert.py on ResNet-S (Add, strided 1x1 shortcuts, asymmetric-to-TF padding) and
    MobileNet-S (depthwise convs, Clip as ReLU6): float Keras and TFLite logits equal ONNX Runtime's."""
    sys.path.insert(0, os.path.join(REPO, "Tools", "train"))
    import eval_float
    import float_exits
    from ai_edge_litert.interpreter import Interpreter
    procs = {}
    for name in ("resnet-s", "mobilenet-s"):
        path = os.path.join(REPO, "models", f"{name}.onnx")
        meta = eval_float.metadata(path)
        pruned, _ = bench_engines.logits_only(path, meta)
        onnx_path = tmp_path / f"{name}.onnx"
        onnx_path.write_bytes(pruned.SerializeToString())
        x = eval_float.preprocess(float_exits.read_array(TEST1000_IMAGES)[:50], meta)
        session = bench_engines.ort_session(str(onnx_path))
        want = np.concatenate([session.run(None, {session.get_inputs()[0].name: x[i:i + 1]})[0] for i in range(len(x))])
        np.save(tmp_path / f"{name}-x.npy", x)
        np.save(tmp_path / f"{name}-want.npy", want)
        np.save(tmp_path / f"{name}-calib.npy", eval_float.preprocess(float_exits.read_array(CALIB)[:20], meta))
        cmd = [sys.executable, CONVERTER, str(onnx_path), "--calib", str(tmp_path / f"{name}-calib.npy"),
               "--check", str(tmp_path / f"{name}-x.npy"), "--expect", str(tmp_path / f"{name}-want.npy"),
               "--float-out", str(tmp_path / f"{name}-float.tflite"), "--int8-out", str(tmp_path / f"{name}-int8.tflite")]
        procs[name] = (subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True), x, want)
    for name, (proc, x, want) in procs.items():
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, f"{name}: {err[-3000:]}"
        info = json.loads(out)
        assert info["keras_max_abs_diff"] <= 1e-4 * max(1.0, float(np.abs(want).max())) and info["calibration_images"] == 20
        ops = set(info["onnx_ops"])
        assert ("Add" in ops) if name == "resnet-s" else ("Clip" in ops)
        engine = bench_engines.LiteRtEngine(name, "float", str(tmp_path / f"{name}-float.tflite"))
        got = bench_engines.predictions(engine, [x[i:i + 1] for i in range(len(x))])
        assert np.abs(got - want).max() <= 1e-3 * max(1.0, float(np.abs(want).max())), name
        q = bench_engines.LiteRtEngine(name, "int8", str(tmp_path / f"{name}-int8.tflite"))
        assert q.inp["dtype"] == np.int8 and q.out["dtype"] == np.int8


def test_without_tensorflow(quantized_blob, cache_dir, tmp_path):
    """A converter Python without TensorFlow: peers.py stops with what to install, and names
    --no-litert; it does not quietly drop LiteRT."""
    fake = tmp_path / "python-without-tf"
    fake.write_text("#!/bin/sh\necho '{}'\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    cmd = [sys.executable, PEERS_PY, MODEL, quantized_blob, "--images", TEST1000_IMAGES, "--limit", 20, "--runs", 2,
           "--cache-dir", tmp_path / "cache", "--tf-python", fake]
    proc = subprocess.run(list(map(str, cmd)), capture_output=True, text=True, timeout=600,
                          env={**os.environ, "SIEVE_BIN": SIEVE_BIN})
    assert proc.returncode == 1 and proc.stdout == "", proc.stderr
    assert "pip install tensorflow-cpu" in proc.stderr and "--no-litert" in proc.stderr, proc.stderr


def test_without_optional_bench_keys(quantized_blob, cache_dir, tmp_path):
    """A sieve whose bench JSON lacks exits_median_us, isa and peak_gmacs (older builds): no exits row."""
    fake = tmp_path / "sieve"
    fake.write_text(f"""#!{sys.executable}
import json, subprocess, sys
proc = subprocess.run([{SIEVE_BIN!r}] + sys.argv[1:], capture_output=True, text=True)
out = proc.stdout
if proc.returncode == 0 and sys.argv[1:2] == ["bench"] and "--json" in sys.argv:
    d = json.loads(out)
    for k in [k for k in d if k.startswith("exits_") or k in ("isa", "peak_gmacs")]:
        del d[k]
    out = json.dumps(d)
sys.stdout.write(out)
sys.stderr.write(proc.stderr)
sys.exit(proc.returncode)
""")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    rep = json.loads(run_peers(MODEL, quantized_blob, "--images", TEST1000_IMAGES, "--limit", 50, "--runs", 3,
                               "--warmup", 0, "--cache-dir", cache_dir, "--json", sieve_bin=str(fake)).stdout)
    assert "sieve-exits" not in rep["engines"] and "ratios_exits" not in rep
    assert "isa" not in rep["engines"]["sieve"]
    check_ratios(rep["ratios"], rep["engines"]["sieve"]["median_us"], rep["engines"], rep["fastest_int8_peer"],
                 rep["fastest_int8_peer_within_1pt"])


def test_converter_dynamo_global_pool(tmp_path):
    """tflite_convert.py on the default (dynamo) export of a conv, BatchNorm, ReLU, global pool and
    Linear: its ReduceMean over H, W and Reshape to [1, C] convert, and the float Keras and TFLite
    logits equal ONNX Runtime's; a ReduceMean over channels is refused by name."""
    torch = pytest.importorskip("torch")
    import onnx
    from ai_edge_litert.interpreter import Interpreter  # noqa: F401 (LiteRT present, as the other tests need)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
                                torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 4)).eval()
    path = tmp_path / "pool.onnx"
    torch.onnx.export(model, (torch.zeros(1, 3, 16, 16),), str(path))
    proto = onnx.load(str(path))
    assert {"ReduceMean", "Reshape"} <= {n.op_type for n in proto.graph.node}
    onnx.save(proto, str(path))  # weights inline
    x = np.random.default_rng(1).standard_normal((8, 3, 16, 16)).astype(np.float32)
    session = bench_engines.ort_session(str(path))
    want = np.concatenate([session.run(None, {session.get_inputs()[0].name: x[i:i + 1]})[0] for i in range(len(x))])
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "want.npy", want)
    cmd = [sys.executable, CONVERTER, str(path), "--calib", str(tmp_path / "x.npy"), "--check", str(tmp_path / "x.npy"),
           "--expect", str(tmp_path / "want.npy"), "--float-out", str(tmp_path / "f.tflite"), "--int8-out", str(tmp_path / "q.tflite")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    info = json.loads(proc.stdout)
    assert "ReduceMean" in info["onnx_ops"] and info["keras_max_abs_diff"] <= 1e-4 * max(1.0, float(np.abs(want).max()))
    engine = bench_engines.LiteRtEngine("pool", "float", str(tmp_path / "f.tflite"))
    got = bench_engines.predictions(engine, [x[i:i + 1] for i in range(len(x))])
    assert np.abs(got - want).max() <= 1e-3 * max(1.0, float(np.abs(want).max()))
    # A mean over channels is not a global pool: refused, naming the node.
    for node in proto.graph.node:
        if node.op_type == "ReduceMean":
            axes = next(i for i in proto.graph.initializer if i.name == node.input[1]) if len(node.input) > 1 else None
            if axes is not None:
                axes.CopyFrom(onnx.numpy_helper.from_array(np.array([1], np.int64), axes.name))
            else:
                node.attribute[:] = [onnx.helper.make_attribute("axes", [1])]
    bad = tmp_path / "channel-mean.onnx"
    onnx.save(proto, str(bad))
    cmd[2] = str(bad)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode != 0 and "ReduceMean" in proc.stderr and "only a mean over H and W" in proc.stderr


def test_rounds_report_medians_over_rounds(quantized_blob, cache_dir):
    """--rounds 3: each engine is timed once a round; its median is the median of its round medians,
    and each round's ratio is Sieve's median over the fastest int8 peer's in that round."""
    rep = json.loads(run_peers(MODEL, quantized_blob, "--images", TEST1000_IMAGES, "--limit", 50, "--runs", 3,
                               "--warmup", 0, "--rounds", 3, "--cache-dir", cache_dir, "--json").stdout)
    assert rep["rounds"] == 3 and len(rep["round_medians_us"]) == 3 and len(rep["round_ratios"]) == 3
    for name, r in rep["engines"].items():
        per_round = sorted(t[name] for t in rep["round_medians_us"])
        assert r["median_us"] == pytest.approx(per_round[1], rel=1e-12)
    fastest = rep["fastest_int8_peer"]
    for t, ratio in zip(rep["round_medians_us"], rep["round_ratios"]):
        assert ratio == pytest.approx(t["sieve"] / t[fastest], rel=1e-12)
    check_ratios(rep["ratios"], rep["engines"]["sieve"]["median_us"], rep["engines"], fastest,
                 rep["fastest_int8_peer_within_1pt"])


def test_isa_avx2_holds_sieve_and_openvino_back(quantized_blob, cache_dir):
    """--isa avx2: Sieve runs its avx2 path and OpenVINO its AVX2 kernels (named in the report); the
    engines that cannot be held back (ONNX Runtime int8, LiteRT) are left out, ort-float stays as the
    accuracy reference."""
    if not bench_engines.cpu_features()["avx2"]:
        pytest.skip("not an x86 CPU with AVX2: there is no AVX2 to hold the engines to")
    rep = json.loads(quick(quantized_blob, cache_dir, "--isa", "avx2", "--json").stdout)
    assert rep["isa_limit"] == "avx2"
    assert rep["engines"]["sieve"]["isa"] == "avx2"
    assert rep["peers"] == ["ort-float", "openvino-qdq"] and rep["int8_peers_one_thread"] == ["openvino-qdq"]
    assert "tflite" not in rep["models"] and "ort-qdq" not in rep["engines"]
    kernels = rep["engines"]["openvino-qdq"]["kernels"]
    assert any("avx2" in k for k in kernels), kernels
    assert not any(k.startswith("brgconv_avx512") or k.startswith("jit_avx512_1x1") for k in kernels), kernels
    check_ratios(rep["ratios"], rep["engines"]["sieve"]["median_us"], rep["engines"], rep["fastest_int8_peer"],
                 rep["fastest_int8_peer_within_1pt"], peers=rep["peers"])
