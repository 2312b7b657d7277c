"""Tools/train/strip_heads.py on the committed camera model: the heads' outputs, nodes, weights and
`sieve.heads` go; what is left computes the same final logits as the model with heads, and
`sieve retrofit` accepts it."""
import os
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort

from conftest import REPO, run_cli

MODEL = os.path.join(REPO, "models", "camera-mobilenet.onnx")
SCRIPT = os.path.join(REPO, "Tools", "train", "strip_heads.py")


def final_logits(path, x, name):
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return session.run([name], {session.get_inputs()[0].name: x})[0]


def test_strip_heads_keeps_the_final_answer_and_nothing_else(tmp_path):
    out = tmp_path / "noheads.onnx"
    subprocess.run([sys.executable, SCRIPT, MODEL, out], check=True, capture_output=True, text=True)
    full, stripped = onnx.load(MODEL), onnx.load(out)
    meta = {p.key: p.value for p in full.metadata_props}
    final = meta["sieve.final_output"]
    assert len(full.graph.output) > 1 and "sieve.heads" in meta  # the committed model has heads to strip
    assert [o.name for o in stripped.graph.output] == [final]
    kept = {p.key: p.value for p in stripped.metadata_props}
    assert "sieve.heads" not in kept and kept["sieve.final_output"] == final
    assert len(stripped.graph.node) < len(full.graph.node)
    assert len(stripped.graph.initializer) < len(full.graph.initializer)
    # Every node left feeds the final output: nothing only a head read survives.
    consumers = {i for n in stripped.graph.node for i in n.input} | {final}
    assert all(any(o in consumers for o in n.output) for n in stripped.graph.node)

    shape = [d.dim_value or 1 for d in full.graph.input[0].type.tensor_type.shape.dim]
    x = np.random.default_rng(0).random(shape, dtype=np.float32)
    assert np.array_equal(final_logits(str(out), x, final), final_logits(MODEL, x, final))


def test_retrofit_lists_taps_of_the_stripped_model(tmp_path):
    out = tmp_path / "noheads.onnx"
    subprocess.run([sys.executable, SCRIPT, MODEL, out], check=True, capture_output=True, text=True)
    proc, _ = run_cli("retrofit", out, "--taps", "list", "--images", "unused", "--labels", "unused", "-o", tmp_path / "r.onnx")
    assert "grid4 head" in proc.stdout and "backbone:" in proc.stdout
