"""Tools/bench/peers.py end to end: Sieve against ONNX Runtime (float and QDQ int8) and OpenVINO on
VGG-S, few runs. Checks the report's structure, that every engine classifies plausibly, that the
ratios are the latency quotients and that the QDQ model is cached; never the timings themselves."""
import json
import os
import stat
import subprocess
import sys

import pytest

from conftest import MODEL, REPO, SIEVE_BIN, TEST1000_IMAGES, run_cli

PEERS_PY = os.path.join(REPO, "Tools", "bench", "peers.py")
PEERS = ["ort-float", "ort-qdq", "openvino-qdq"]
INT8_PEERS = ["ort-qdq", "openvino-qdq"]
LIMIT = 200


def run_peers(*args, sieve_bin=SIEVE_BIN):
    cmd = [sys.executable, PEERS_PY, *map(str, args)]
    env = {**os.environ, "SIEVE_BIN": sieve_bin}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
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


def check_ratios(ratios, sieve_us, engines, fastest):
    for name in PEERS:
        assert ratios[name] == pytest.approx(sieve_us / engines[name]["median_us"], rel=1e-12)
    assert ratios["fastest-int8-peer"] == pytest.approx(sieve_us / engines[fastest]["median_us"], rel=1e-12)


def test_report_structure(report, quantized_blob):
    assert report["image_count"] == LIMIT and report["runs"] == 5 and report["warmup"] == 1
    assert report["threads"] == 1 and report["batch"] == 1
    assert report["cpu"] and report["versions"]["onnxruntime"] and report["versions"]["openvino"]
    # Sieve's full_macs is the network without heads, the graph the peers run.
    info = json.loads(run_cli("inspect", quantized_blob, "--json")[0].stdout)
    assert report["full_macs"] == info["full_macs"] - info["head_macs"]
    lo = report["logits_only"]
    assert lo["outputs"] == ["logits"] and lo["removed_outputs"] == [f"head{i}" for i in range(6)]
    assert lo["nodes"] < lo["full_nodes"] and lo["checked_images"] == LIMIT and lo["max_abs_diff"] <= 1e-4
    q = report["qdq"]
    assert q["format"] == "QDQ" and q["calibration"]["count"] == 1000 and os.path.isfile(q["path"])
    assert report["warnings"] == []


def test_engines_plausible(report):
    engines = report["engines"]
    assert set(PEERS + ["sieve"]) <= set(engines)
    for name, e in engines.items():
        assert e["median_us"] > 0 and (e["p99_us"] is None or e["p99_us"] >= e["median_us"]), name
        assert 80.0 < e["accuracy"] <= 100.0, f"{name}: accuracy {e['accuracy']} on {LIMIT} images"
        if e["gmacs"] is not None:
            assert e["gmacs"] == pytest.approx(report["full_macs"] / e["median_us"] / 1000, rel=1e-12)
    assert engines["ort-float"]["kind"] == "float"
    assert all(engines[n]["kind"] == "int8" for n in INT8_PEERS + ["sieve"])
    assert all(engines[n]["call_floor_us"] > 0 for n in PEERS)
    # The same int8 model on two engines: the answers can differ on a handful of images, not more.
    assert abs(engines["ort-qdq"]["accuracy"] - engines["openvino-qdq"]["accuracy"]) <= 2.0


def test_ratios_are_latency_quotients(report):
    engines = report["engines"]
    fastest = report["fastest_int8_peer"]
    assert fastest == min(INT8_PEERS, key=lambda n: engines[n]["median_us"])
    check_ratios(report["ratios"], engines["sieve"]["median_us"], engines, fastest)
    if "sieve-exits" in engines:
        check_ratios(report["ratios_exits"], engines["sieve-exits"]["median_us"], engines, fastest)
    else:
        assert "ratios_exits" not in report


def test_cached_qdq_and_table(report, quantized_blob, cache_dir):
    proc = quick(quantized_blob, cache_dir)
    out = proc.stdout
    assert any(line.startswith("QDQ model:") and "(cached)" in line for line in out.splitlines()), out
    for row in ("sieve ", "onnxruntime float", "onnxruntime QDQ int8", "openvino QDQ int8"):
        assert row in out, out
    assert "sieve / fastest int8 peer" in out and "onnxruntime" in out.splitlines()[1]


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
    check_ratios(rep["ratios"], rep["engines"]["sieve"]["median_us"], rep["engines"], rep["fastest_int8_peer"])
