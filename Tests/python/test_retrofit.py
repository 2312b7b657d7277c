"""`sieve retrofit` end to end: a small network trained without heads gets exit heads fitted on its
frozen features; the model with heads is quantised and tuned, and the runtime's exits on the tuned
blob are exactly the ones tune predicted."""
import gzip
import json
import os
import subprocess

import numpy as np
import pytest

from conftest import MODEL, REPO, SIEVE_BIN, TEST1000_IMAGES, TEST1000_LABELS, run_cli

VAL_IMAGES = os.path.join(REPO, "data", "fashion-mnist-val-2000-images-idx3-ubyte.gz")
VAL_LABELS = os.path.join(REPO, "data", "fashion-mnist-val-2000-labels-idx1-ubyte.gz")
CALIB = os.path.join(REPO, "data", "fashion-mnist-calib-1000-images-idx3-ubyte.gz")


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


@pytest.fixture(scope="module")
def headless_model(tmp_path_factory):
    """A small conv net trained for a few seconds (200 steps) on the 2000 bundled validation images, exported
    the default way (dynamo) without heads or metadata, as a user's model comes."""
    torch = pytest.importorskip("torch")
    from torch import nn
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # faster than 2 on a shared machine for a net this small
    x = torch.tensor(read_idx(VAL_IMAGES), dtype=torch.float32).unsqueeze(1) / 255
    y = torch.tensor(read_idx(VAL_LABELS), dtype=torch.long)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(16 * 7 * 7, 10))
    opt = torch.optim.Adam(model.parameters(), 2e-3)
    for step in range(200):
        i = torch.randint(0, len(x), (64,))
        loss = nn.functional.cross_entropy(model(x[i]), y[i])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    path = tmp_path_factory.mktemp("retrofit") / "tiny.onnx"
    torch.onnx.export(model, (torch.zeros(1, 1, 28, 28),), str(path))
    with torch.no_grad():
        accuracy = (model(x).argmax(1) == y).float().mean().item()
    torch.set_num_threads(threads)
    assert accuracy > 0.7, f"the tiny net should learn something in 200 steps (train accuracy {accuracy:.3f})"
    return path


def taps_listed(model):
    proc, _ = run_cli("retrofit", model, "--norm", "none", "--taps", "list")
    return [line.split()[0] for line in proc.stdout.splitlines()[1:] if line.startswith("  ")]


def test_taps_list_names_the_stage_boundaries(headless_model):
    taps = taps_listed(headless_model)
    # conv1 (the channel count changes), conv2 (before the first pool), conv3 (the channel count
    # changes); conv4 has only the classifier after it.
    assert len(taps) == 3, taps


@pytest.mark.parametrize("head,kind", [("gap", "exclusion"), ("grid2", "confidence")])
def test_retrofit_quantize_tune_run(headless_model, tmp_path, head, kind):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    out = tmp_path / "tiny-exits.onnx"
    proc, _ = run_cli("retrofit", headless_model, "--norm", "none", "--images", VAL_IMAGES, "--labels", VAL_LABELS,
                      "--head", head, "--kind", kind, "-o", out)
    assert "wrote" in proc.stdout and "3 " + kind + " heads" in proc.stdout, proc.stdout

    # The original graph is untouched, the heads are extra outputs listed in the metadata, and the
    # file stands alone (no external data beside it).
    original = onnx.load(str(headless_model))
    model = onnx.load(str(out), load_external_data=False)
    assert not any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer)
    assert [n.name for n in model.graph.node[:len(original.graph.node)]] == [n.name for n in original.graph.node]
    meta = {p.key: p.value for p in model.metadata_props}
    heads = json.loads(meta["sieve.heads"])
    assert [h["kind"] for h in heads] == [kind] * 3
    assert meta["sieve.final_output"] == original.graph.output[0].name
    assert [o.name for o in model.graph.output] == [original.graph.output[0].name] + [h["output"] for h in heads]

    # ONNX Runtime runs it: the final logits are the original model's, and each head's argmax beats
    # chance by far on the images it was fitted on (heads are linear on frozen features).
    x = read_idx(VAL_IMAGES)[:500].astype(np.float32)[:, None] / 255
    y = read_idx(VAL_LABELS)[:500]
    before = ort.InferenceSession(str(headless_model))
    after = ort.InferenceSession(str(out))
    for i in range(0, 500, 50):
        (ref,) = before.run(None, {before.get_inputs()[0].name: x[i:i + 1]})
        got = after.run(None, {after.get_inputs()[0].name: x[i:i + 1]})
        np.testing.assert_allclose(got[0], ref, rtol=1e-5, atol=1e-5)
    right = np.zeros(3)
    for i in range(500):
        got = after.run(None, {after.get_inputs()[0].name: x[i:i + 1]})
        right += [int(np.argmax(got[1 + h]) == y[i]) for h in range(3)]
    assert (right / 500 > 0.5).all(), right / 500

    # Quantise with no normalisation option: retrofit wrote what --norm said into the metadata.
    blob = tmp_path / "tiny.sieve"
    proc, _ = run_cli("quantize", out, "--calib", CALIB, "--calib-count", "100", "-o", blob)
    assert "3 heads" in proc.stdout
    tuned = tmp_path / "tiny-tuned.sieve"
    proc, _ = run_cli("tune", blob, "--images", TEST1000_IMAGES, "--labels", TEST1000_LABELS, "--indices", "all",
                      "--max-drop", "1.0", "--safety", "0", "-o", tuned, "--json")
    tune = json.loads(proc.stdout)
    predicted = tune["results"][0]
    assert any(t > 0 for t in predicted["thresholds"]), "the search should turn at least one retrofitted head on"
    proc, _ = run_cli("eval", tuned, "--images", TEST1000_IMAGES, "--labels", TEST1000_LABELS, "--json")
    measured = json.loads(proc.stdout)
    assert measured["exits"] == predicted["exits"]
    assert measured["accuracy"] == pytest.approx(predicted["accuracy"], abs=1e-9)
    assert measured["mean_macs"] == pytest.approx(predicted["mean_macs"], abs=1e-6)
    assert measured["mean_macs"] < measured["full_macs"]
    # The quantised blob keeps each head's kind (tune's combined rule then makes them exclusion heads).
    info = json.loads(run_cli("inspect", blob, "--json")[0].stdout)
    assert [h["kind"] for h in info["heads"]] == [kind] * 3


def retrofit_fails(*args):
    proc = subprocess.run([SIEVE_BIN, "retrofit", *map(str, args)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc
    assert proc.stderr.startswith("error: ") and len(proc.stderr.splitlines()) == 1, proc.stderr
    return proc.stderr


def test_refusals(headless_model, tmp_path):
    assert "already has 6 exit heads" in retrofit_fails(MODEL, "--taps", "list")
    assert "does not say how its input is normalised" in retrofit_fails(headless_model, "--taps", "list")
    bad = tmp_path / "labels.npy"
    labels = read_idx(VAL_LABELS).astype(np.int64)
    labels[7] = 12
    np.save(bad, labels)
    assert "label 12 (image 7)" in retrofit_fails(headless_model, "--norm", "none", "--images", VAL_IMAGES, "--labels", bad, "-o", tmp_path / "x.onnx")
    np.save(bad, labels[:100])
    assert "100 labels for 2000 images" in retrofit_fails(headless_model, "--norm", "none", "--images", VAL_IMAGES, "--labels", bad, "-o", tmp_path / "x.onnx")
    assert "no tensor named 'nope'" in retrofit_fails(headless_model, "--norm", "none", "--images", VAL_IMAGES, "--labels", VAL_LABELS,
                                                     "--taps", "nope", "-o", tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()
