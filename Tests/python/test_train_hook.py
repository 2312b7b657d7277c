"""Joint training for any architecture (Tools/train/exits.py): heads on named submodules of a user's
network, the export Sieve reads, and train.py's `--arch FILE.py:CLASS --taps` path end to end."""
import json
import os
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from conftest import REPO, run_cli

TRAIN = os.path.join(REPO, "Tools", "train")
sys.path.insert(0, TRAIN)
import exits  # noqa: E402

TINY = '''
from torch import nn

class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.block1 = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU())
        self.block2 = nn.Sequential(nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU())
        self.block3 = nn.Sequential(nn.Conv2d(16, 16, 3, stride=2, padding=1), nn.ReLU())
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        return self.fc(self.block3(self.block2(self.block1(x))).mean((2, 3)))
'''


def tiny_class(tmp_path):
    path = tmp_path / "tiny.py"
    path.write_text(TINY)
    scope = {}
    exec(compile(TINY, str(path), "exec"), scope)
    return path, scope["Tiny"]


def test_heads_hang_on_named_submodules_and_export_as_outputs(tmp_path):
    _, Tiny = tiny_class(tmp_path)
    torch.manual_seed(0)
    example = torch.zeros(1, 1, 28, 28)
    net = exits.WithExits(Tiny(), ["block1", "block2", "block3"], example, classes=10, head_type="grid2")
    # 28x28 and 14x14 taps are even: 2x2 grids; 7x7 is not: global pool.
    assert [h.grid for h in net.heads] == [2, 2, 1]
    assert [h.fc.in_features for h in net.heads] == [32, 64, 16]
    path = tmp_path / "tiny.onnx"
    exits.export_with_exits(net, str(path), example, "confidence", {"sieve.input_mean": "[0.5]"})
    model = onnx.load(str(path))
    props = {p.key: p.value for p in model.metadata_props}
    assert [o.name for o in model.graph.output] == ["logits", "head0", "head1", "head2"]
    assert json.loads(props["sieve.heads"]) == [{"output": f"head{i}", "kind": "confidence"} for i in range(3)]
    assert props["sieve.final_output"] == "logits" and props["sieve.input_mean"] == "[0.5]"
    x = torch.randn(1, 1, 28, 28)
    with torch.no_grad():
        logits, heads = net.eval()(x)
    got = ort.InferenceSession(str(path)).run(None, {"input": x.numpy()})
    for want, have in zip([logits, *heads], got):
        np.testing.assert_allclose(have, want.numpy(), rtol=1e-4, atol=1e-5)


def test_unknown_tap_names_the_submodules(tmp_path):
    _, Tiny = tiny_class(tmp_path)
    with pytest.raises(ValueError, match="no submodule named block9"):
        exits.WithExits(Tiny(), ["block9"], torch.zeros(1, 1, 28, 28), classes=10)


def test_train_py_trains_a_user_architecture_that_sieve_quantizes(tmp_path):
    path, _ = tiny_class(tmp_path)
    out = tmp_path / "tiny-exits.onnx"
    proc = subprocess.run([sys.executable, os.path.join(TRAIN, "train.py"), "--arch", f"{path}:Tiny",
                           "--taps", "block1,block2", "--head-type", "grid2", "--epochs", "1", "--limit", "3000",
                           "--threads", "1", "--out", str(out)], capture_output=True, text=True, timeout=900, cwd=TRAIN)
    assert proc.returncode == 0, proc.stderr
    blob = tmp_path / "tiny.sieve"
    run_cli("quantize", out, "--calib", os.path.join(REPO, "data", "fashion-mnist-calib-1000-images-idx3-ubyte.gz"),
            "-o", blob)
    inspect, _ = run_cli("inspect", blob, "--json")
    heads = json.loads(inspect.stdout)["heads"]
    assert len(heads) == 2
    # A 2x2 grid over 8 and 16 channels, to 10 classes.
    assert [h["macs"] for h in heads] == [4 * 8 * 10, 4 * 16 * 10]
