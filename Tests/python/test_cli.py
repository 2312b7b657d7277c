"""The sieve CLI end to end: inspect and eval on a real quantised blob, and a clear one-line
error with a non-zero exit code for every kind of bad input."""
import json
import os
import subprocess
import time

import numpy as np
import pytest
import onnx
from onnx import TensorProto, helper

import sieve_blob as sb
from conftest import CALIB, MODEL, SIEVE_BIN, TEST1000_IMAGES, TEST1000_LABELS, REPO, run_cli

VAL2000_IMAGES = os.path.join(REPO, "data", "fashion-mnist-val-2000-images-idx3-ubyte.gz")
VAL2000_LABELS = os.path.join(REPO, "data", "fashion-mnist-val-2000-labels-idx1-ubyte.gz")

# VGG-S MACs from the architecture alone: six 3x3 convs, FC 1152->256, FC 256->10, six heads C->10.
CONV_MACS = [28 * 28 * 32 * 9 * 1, 28 * 28 * 32 * 9 * 32, 14 * 14 * 64 * 9 * 32,
             14 * 14 * 64 * 9 * 64, 7 * 7 * 128 * 9 * 64, 7 * 7 * 128 * 9 * 128]
BACKBONE_MACS = sum(CONV_MACS) + 1152 * 256 + 256 * 10
HEAD_MACS = 10 * (32 + 32 + 64 + 64 + 128 + 128)


def run_fail(*args):
    """Runs the CLI expecting failure; returns stderr."""
    proc = subprocess.run([SIEVE_BIN, *map(str, args)], capture_output=True, text=True, timeout=600)
    assert proc.returncode != 0, f"expected failure, got exit 0:\n{proc.stdout}"
    assert "Fatal error" not in proc.stderr and "Segmentation" not in proc.stderr, proc.stderr
    assert proc.returncode < 128, f"crashed with signal {proc.returncode - 128}: {proc.stderr}"
    return proc.stderr


def test_inspect_json(quantized_blob):
    proc, _ = run_cli("inspect", quantized_blob, "--json")
    info = json.loads(proc.stdout)
    assert info["full_macs"] == BACKBONE_MACS + HEAD_MACS
    assert info["head_macs"] == HEAD_MACS
    convs = [op for op in info["ops"] if op["kind"] == "CONV"]
    assert [op["macs"] for op in convs] == CONV_MACS
    assert len(info["heads"]) == 6 and all(h["kind"] == "exclusion" for h in info["heads"])
    # The arena reuses memory: smaller than all activations side by side, at least the two largest live together.
    assert 2 * 28 * 28 * 32 <= info["arena_bytes"] < info["arena_unshared_bytes"]
    assert info["labels"][0] == "T-shirt/top" and len(info["labels"]) == 10
    assert "source_sha256:" in info["provenance"] and "sqnr" in info["provenance"]


def test_inspect_text(quantized_blob):
    proc, _ = run_cli("inspect", quantized_blob)
    assert "arena:" in proc.stdout and "MACs:" in proc.stdout and "provenance:" in proc.stdout


def test_eval_json_and_logits(quantized_blob, tmp_path):
    dump, exact_dump = tmp_path / "logits.npy", tmp_path / "exact.npy"
    proc, _ = run_cli("eval", quantized_blob, "--images", TEST1000_IMAGES, "--labels", TEST1000_LABELS,
                      "--limit", 200, "--json", "--dump-logits", dump, "--dump-exact-logits", exact_dump)
    result = json.loads(proc.stdout)
    assert result["images"] == 200
    assert result["accuracy"] > 85.0
    assert result["mean_us"] > 0
    logits = np.load(dump)
    assert logits.shape == (200, 7, 10) and logits.dtype == np.int8
    labels = np.frombuffer(__import__("gzip").open(TEST1000_LABELS).read()[8:208], dtype=np.uint8)
    # Answers come from the exact logits (docs/FORMAT.md); the int8 ones are them rounded to a step.
    exact = np.load(exact_dump)
    assert exact.shape == (200, 7, 10) and exact.dtype == np.float32
    assert (exact[:, 0, :].argmax(1) == labels).mean() * 100 == result["accuracy"]
    out = sb.load(quantized_blob)
    t = out.tensors[out.output_tensor]
    q = logits[:, 0, :].astype(np.float64)
    inside = (q > -128) & (q < 127)
    assert np.abs(exact[:, 0, :] - (q - t.zero_point) * t.scale)[inside].max() <= t.scale / 2 * 1.001


def corrupt(src, dst, change):
    data = bytearray(open(src, "rb").read())
    data = change(data)
    with open(dst, "wb") as f:
        f.write(data)
    return dst


def test_blob_errors(quantized_blob, tmp_path):
    def flip(at):
        def change(d):
            d[at] ^= 0x40
            return d
        return change
    size = os.path.getsize(quantized_blob)
    cases = {
        "missing": ("/nonexistent/model.sieve", "cannot open /nonexistent/model.sieve: No such file or directory"),
        "truncated": (corrupt(quantized_blob, tmp_path / "t.sieve", lambda d: d[: size // 2]), "blob truncated"),
        "magic": (corrupt(quantized_blob, tmp_path / "m.sieve", flip(0)), "bad magic"),
        "version": (corrupt(quantized_blob, tmp_path / "v.sieve", flip(8)), "unsupported blob format version"),
        "crc": (corrupt(quantized_blob, tmp_path / "c.sieve", flip(size - 5000)), "CRC-32C mismatch"),
        "empty": (corrupt(quantized_blob, tmp_path / "e.sieve", lambda d: b""), "blob truncated"),
        "onnx": (os.path.join(os.path.dirname(CALIB), "..", "models", "vgg-s.onnx"), "bad magic"),
    }
    for name, (path, message) in cases.items():
        for command in (["inspect", path], ["eval", path, "--images", TEST1000_IMAGES, "--labels", TEST1000_LABELS]):
            err = run_fail(*command)
            assert message in err, f"{name}: {err}"
            assert len(err.strip().splitlines()) == 1, f"{name}: not one line: {err}"


def test_eval_input_errors(quantized_blob, tmp_path):
    small = tmp_path / "small.npy"
    np.save(small, np.zeros((3, 10, 10), dtype=np.uint8))
    assert "28x28" in run_fail("eval", quantized_blob, "--images", small, "--labels", TEST1000_LABELS)
    assert "labels" in run_fail("eval", quantized_blob, "--images", TEST1000_IMAGES, "--labels", TEST1000_IMAGES)
    assert "--limit" in run_fail("eval", quantized_blob, "--images", TEST1000_IMAGES, "--labels", TEST1000_LABELS, "--limit", 0)


def tiny_onnx(path, op_type):
    """Conv -> <op_type> model, to check how the quantiser treats an op."""
    w = helper.make_tensor("w", TensorProto.FLOAT, [4, 1, 3, 3], np.random.default_rng(0).standard_normal(36).tolist())
    nodes = [helper.make_node("Conv", ["input", "w"], ["c"], name="conv0", pads=[1, 1, 1, 1]),
             helper.make_node(op_type, ["c"], ["out"], name=f"{op_type}_7")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 1, 28, 28])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)], initializer=[w])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def test_quantize_errors(tmp_path):
    out = tmp_path / "x.sieve"
    err = run_fail("quantize", tiny_onnx(tmp_path / "softmax.onnx", "Softmax"), "--calib", CALIB, "-o", out)
    assert "unsupported ONNX op 'Softmax'" in err and "Softmax_7" in err
    text = tmp_path / "notes.onnx"
    text.write_text("this is not a model\n")
    assert "is not an ONNX model" in run_fail("quantize", text, "--calib", CALIB, "-o", out)
    assert "cannot read" in run_fail("quantize", tmp_path / "missing.onnx", "--calib", CALIB, "-o", out)
    assert not out.exists()


def test_bench_reports_every_op(quantized_blob):
    """`sieve bench --json`: one row per op with the blob's MACs, positive medians, shares summing to 100."""
    proc, _ = run_cli("bench", quantized_blob, "--runs", 5, "--warmup", 1, "--json")
    bench = json.loads(proc.stdout)
    info = json.loads(run_cli("inspect", quantized_blob, "--json")[0].stdout)
    assert [r["macs"] for r in bench["ops"]] == [o["macs"] for o in info["ops"]]
    assert [r["kind"] for r in bench["ops"]] == [o["kind"] for o in info["ops"]]
    heads = {op: h["index"] for h in info["heads"] for op in h["ops"]}
    assert [r.get("head") for r in bench["ops"]] == [heads.get(o["index"]) for o in info["ops"]]
    assert all(r["median_us"] > 0 for r in bench["ops"] if r["macs"] > 1000)
    assert sum(r["share"] for r in bench["ops"]) == pytest.approx(100, abs=0.01)
    assert bench["runs"] == 5 and bench["median_us"] > 0 and bench["full_macs"] == info["backbone_macs"]


def test_bench_peak_path_and_threads(quantized_blob):
    """The path in use, its peak measured in the run, each op's share of it, and one thread timed
    beside --threads 2; scalar has no peak loop."""
    chosen = json.loads(run_cli("kernels", "--json")[0].stdout)["chosen"]
    bench = json.loads(run_cli("bench", quantized_blob, "--runs", 5, "--warmup", 1, "--threads", 2, "--json")[0].stdout)
    assert bench["isa"] == chosen and bench["threads"] == 2
    assert bench["peak_gmacs"] > 1
    for row in bench["ops"]:
        assert row["route"] in ("", "u8", "winograd") and row["u8_route"] == (row["route"] == "u8")
        if row["route"] == "winograd":  # direct MACs over fewer multiplies: no share of a peak
            assert row["kind"] == "CONV" and row.get("peak_share") is None
        elif row["macs"] > 0:
            peak = bench["peak_u8_route_gmacs"] if row["u8_route"] else bench["peak_gmacs"]
            assert row["peak_share"] == pytest.approx(100 * row["gmacs"] / peak, rel=1e-6)
    assert bench["thread_speedup"] == pytest.approx(bench["one_thread_median_us"] / bench["median_us"], rel=1e-6)
    assert bench["exits_mean_macs"] == bench["full_macs"]  # an untuned blob never exits
    assert bench["preprocess_frame"] == "640x480 i420" and bench["preprocess_median_us"] > 0
    scalar = json.loads(run_cli("bench", quantized_blob, "--runs", 2, "--warmup", 0, "--isa", "scalar", "--json")[0].stdout)
    assert scalar["isa"] == "scalar" and scalar.get("peak_gmacs") is None and scalar.get("thread_speedup") is None


def test_bench_measures_u8_route_ops_against_their_own_peak(tmp_path):
    """A --weight-bits 7 blob on the avx2 path runs its convs on the u8 x s8 route; bench measures
    that route's peak and each such op's share of it (the int16 peak for the others)."""
    paths = json.loads(run_cli("kernels", "--json")[0].stdout)["available"]
    if "avx2" not in paths:
        pytest.skip("no avx2 path on this CPU")
    blob = tmp_path / "vgg-s-w7.sieve"
    run_cli("quantize", MODEL, "--calib", CALIB, "--weight-bits", 7, "-o", blob)
    bench = json.loads(run_cli("bench", blob, "--runs", 3, "--warmup", 1, "--isa", "avx2", "--json")[0].stdout)
    on_route = [row for row in bench["ops"] if row["u8_route"]]
    assert on_route and all(row["kind"] in ("CONV", "FULLY_CONNECTED") for row in on_route)
    assert bench["peak_u8_route_gmacs"] > 1
    for row in on_route:
        assert row["peak_share"] == pytest.approx(100 * row["gmacs"] / bench["peak_u8_route_gmacs"], rel=1e-6)


def busy_loops_of(pid):
    """Child processes of `pid` still running (BusyProcesses' shell loops)."""
    children = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                children.append(int(entry))
    return children


def test_bench_contend_reports_both_tails_and_leaves_no_process(quantized_blob):
    """--contend 2: the busy processes run while timing (two children of sieve seen mid-run), the
    report carries 1- and 2-thread medians and p99s, and no busy process outlives the bench."""
    args = [SIEVE_BIN, "bench", quantized_blob, "--runs", 400, "--warmup", 1, "--threads", 2, "--contend", 2, "--json"]
    proc = subprocess.Popen(list(map(str, args)), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = 0
    while proc.poll() is None:
        seen = max(seen, len(busy_loops_of(proc.pid)))
        time.sleep(0.02)
    out, err = proc.communicate()
    assert proc.returncode == 0, err
    bench = json.loads(out)
    assert bench["contend"] == 2 and bench["threads"] == 2 and seen == 2
    assert bench["one_thread_p99_us"] >= bench["one_thread_median_us"] > 0 and bench["p99_us"] >= bench["median_us"] > 0
    time.sleep(0.5)
    leftovers = [p for p in os.listdir("/proc") if p.isdigit() and _is_busy_loop(int(p))]
    assert leftovers == [], leftovers


def _is_busy_loop(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"while kill -0 $p" in f.read()
    except OSError:
        return False


def test_bench_runs_from_any_directory(quantized_blob, tmp_path):
    """Its default images are found beside the executable, not in the working directory."""
    proc = subprocess.run([SIEVE_BIN, "bench", quantized_blob, "--runs", "2", "--warmup", "0", "--json"],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["runs"] == 2
    # tune's default split is found the same way (its images: the bundled validation subset).
    proc = subprocess.run([SIEVE_BIN, "tune", quantized_blob, "--images", VAL2000_IMAGES, "--labels", VAL2000_LABELS,
                           "--indices", "all", "--json"], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr


def test_bench_rejects_images_of_the_wrong_size(quantized_blob, tmp_path):
    wrong = tmp_path / "wrong.npy"
    np.save(wrong, np.zeros((3, 32, 32), dtype=np.uint8))
    proc = subprocess.run([SIEVE_BIN, "bench", quantized_blob, "--images", str(wrong)], capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert proc.stderr.startswith("error:") and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
