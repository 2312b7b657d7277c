"""Every kernel path this CPU has, on one and two threads, against the numpy reference: every logit
of every head of real networks (VGG-S, ResNet-S, MobileNet-S) and of a blob that uses every op kind
must be exact, and so must every exact logit (docs/FORMAT.md). The random-shape property test of the kernels themselves is Tools/test-kernels.sh."""
import json
import os

import numpy as np
import pytest

import fmnist
import sieve_blob as sb
from conftest import CALIB, MODEL, TEST1000_IMAGES, TEST1000_LABELS, report, require_file, run_cli
from test_reference_vs_runtime import describe_differences, every_op_kind_graph

N = 200


def kernel_paths():
    proc, _ = run_cli("kernels", "--json")
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def blobs(tmp_path_factory):
    out = tmp_path_factory.mktemp("paths")
    paths = {}
    for arch in ["vgg-s", "resnet-s", "mobilenet-s"]:
        model = os.path.join(os.path.dirname(MODEL), f"{arch}.onnx")
        require_file(model, f"trained {arch} model")
        paths[arch] = out / f"{arch}.sieve"
        run_cli("quantize", model, "--calib", CALIB, "-o", paths[arch])
    return paths


def test_kernels_lists_paths():
    paths = kernel_paths()
    assert paths["available"][0] == "scalar"
    assert paths["chosen"] in paths["available"]
    if os.uname().machine == "x86_64" and "avx512_vnni" in open("/proc/cpuinfo").read():
        assert paths["chosen"] == "avx512vnni"


@pytest.mark.parametrize("network", ["vgg-s", "resnet-s", "mobilenet-s", "every-op-kind"])
def test_every_path_and_thread_count_is_exact(blobs, blob_builder, network, tmp_path):
    if network == "every-op-kind":
        blobs = {network: tmp_path / "every-op-kind.sieve"}
        blobs[network].write_bytes(every_op_kind_graph(blob_builder))
    blob = sb.load(str(blobs[network]))
    images = fmnist.read_idx(TEST1000_IMAGES)[:N]
    out = sb.run(blob, images, keep_all=True)
    reference = np.concatenate([out["final"][:, None, :], out["heads"]], axis=1)
    reference_exact = sb.exact_logits(blob, out["tensors"])
    checked = []
    for path in kernel_paths()["available"]:
        for threads in [1, 2]:
            dump, exact = tmp_path / f"{path}-{threads}.npy", tmp_path / f"{path}-{threads}-exact.npy"
            proc, _ = run_cli("eval", blobs[network], "--images", TEST1000_IMAGES, "--labels", TEST1000_LABELS,
                              "--limit", N, "--isa", path, "--threads", threads, "--json", "--dump-logits", dump,
                              "--dump-exact-logits", exact)
            assert json.loads(proc.stdout.strip().splitlines()[-1])["kernels"] == path
            runtime = np.load(dump)
            assert np.array_equal(runtime, reference), f"{path}, {threads} threads:\n" + \
                describe_differences(runtime, reference, blob)
            differ = int((np.load(exact) != reference_exact).sum())
            assert differ == 0, f"{path}, {threads} threads: {differ} exact logits differ from the reference's"
            checked.append(f"{path}/{threads}")
    report(f"{network}: {N} images, every logit exact on {', '.join(checked)}")


def test_unavailable_path_is_an_error(blobs):
    other = "neon" if os.uname().machine == "x86_64" else "avx2"
    import subprocess
    from conftest import SIEVE_BIN
    for args, env in [(["--isa", other], None), ([], {**os.environ, "SIEVE_ISA": "sse9"})]:
        proc = subprocess.run([SIEVE_BIN, "eval", str(blobs["vgg-s"]), "--images", TEST1000_IMAGES, "--labels",
                               TEST1000_LABELS, "--limit", "5", *args], capture_output=True, text=True, env=env)
        assert proc.returncode != 0
        assert ("not available" in proc.stderr or "names no kernel path" in proc.stderr), proc.stderr
