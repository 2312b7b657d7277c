"""`sieve quantize --weight-bits 7`: every weight of the blob in [-63, 63] (the bound that makes
avx2's u8 x s8 vpmaddubsw conv route exact, docs/KERNELS.md), the setting recorded and printed by
`sieve inspect`, every logit on every kernel path and thread count equal to the numpy reference, and
bad values refused with a message naming the option."""
import json
import os
import subprocess

import numpy as np
import pytest

import fmnist
import sieve_blob as sb
from conftest import CALIB, MODEL, SIEVE_BIN, TEST1000_IMAGES, TEST1000_LABELS, report, require_file, run_cli
from test_reference_vs_runtime import describe_differences

N = 200
WEIGHTED = (sb.CONV, sb.DEPTHWISE_CONV, sb.FULLY_CONNECTED)


@pytest.fixture(scope="module")
def blob7(tmp_path_factory):
    require_file(MODEL, "trained VGG-S model")
    path = tmp_path_factory.mktemp("w7") / "vgg-s-w7.sieve"
    run_cli("quantize", MODEL, "--calib", CALIB, "-o", path, "--weight-bits", 7)
    return path


def test_weights_are_7_bit_and_the_setting_is_recorded(blob7):
    blob = sb.load(str(blob7))
    weighted = [op for op in blob.ops if op.kind in WEIGHTED]
    assert weighted
    for op in weighted:
        w = op.weights.astype(np.int32)
        assert w.min() >= -63 and w.max() <= 63, f"op {op.name}: weights in [{w.min()}, {w.max()}]"
        # Scale max|w| / 63 per channel: each layer's largest magnitude is 63 (not a narrower range).
        assert np.abs(w).max() == 63, f"op {op.name}: largest |weight| {np.abs(w).max()}"
    proc, _ = run_cli("inspect", blob7, "--json")
    provenance = json.loads(proc.stdout)["provenance"]
    assert "weights: per-channel symmetric int8, 7-bit [-63, 63]" in provenance, provenance
    report(f"--weight-bits 7: {len(weighted)} weighted ops, every weight in [-63, 63]")


def test_every_path_and_thread_count_is_exact(blob7, tmp_path):
    blob = sb.load(str(blob7))
    out = sb.run(blob, fmnist.read_idx(TEST1000_IMAGES)[:N], keep_all=True)
    reference = np.concatenate([out["final"][:, None, :], out["heads"]], axis=1)
    paths = json.loads(run_cli("kernels", "--json")[0].stdout)["available"]
    if os.uname().machine == "x86_64" and "avx2" in open("/proc/cpuinfo").read():
        assert "avx2" in paths
    checked = []
    for path in paths:
        for threads in [1, 2]:
            dump = tmp_path / f"{path}-{threads}.npy"
            proc, _ = run_cli("eval", blob7, "--images", TEST1000_IMAGES, "--labels", TEST1000_LABELS, "--limit", N,
                              "--isa", path, "--threads", threads, "--json", "--dump-logits", dump)
            assert json.loads(proc.stdout.strip().splitlines()[-1])["kernels"] == path
            runtime = np.load(dump)
            assert np.array_equal(runtime, reference), f"{path}, {threads} threads:\n" + describe_differences(runtime, reference, blob)
            checked.append(f"{path}/{threads}")
    report(f"--weight-bits 7 VGG-S: {N} images, every logit exact on {', '.join(checked)}")


@pytest.mark.parametrize("value", ["6", "9", "abc", "", "7.0"])
def test_bad_weight_bits_are_refused(value, tmp_path):
    out = tmp_path / "bad.sieve"
    proc = subprocess.run([SIEVE_BIN, "quantize", MODEL, "--calib", CALIB, "-o", str(out), "--weight-bits", value],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "--weight-bits must be 7 or 8" in proc.stderr and f"'{value}'" in proc.stderr, proc.stderr
    assert not out.exists()
