"""Mutants of working models (Tools/fuzz-onnx.py: attributes at 0, -1 or 2^62, nodes deleted,
rewired or retyped, initializers reshaped, retyped or cut, shape constants pushed to extremes, the
`sieve.*` metadata broken): `sieve quantize` quantises each or refuses it in one `error:` line, and
never traps, crashes or hangs. A fixed set here (seeded, 200 mutants of each of seven torch exports by
both exporters and of the bundled models); longer runs with the script find more, and what they find
joins Tests/hostile-onnx."""
import importlib.util
import os
import random

import numpy as np
import onnx
import pytest
import torch

from conftest import REPO, SIEVE_BIN
import test_new_ops

spec = importlib.util.spec_from_file_location("fuzz_onnx", os.path.join(REPO, "Tools", "fuzz-onnx.py"))
fuzz_onnx = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fuzz_onnx)

MUTANTS = 200
# Networks of test_new_ops (squeeze-excitation, channel shuffles, concatenations, the legacy GELU
# arithmetic, pooled vectors, run-time "same" padding, Softplus with its threshold), and the bundled
# models with heads and metadata.
EXPORTED = ["se-hardsigmoid", "shuffle-dynamo", "dense", "gelu-legacy", "pooled-vectors-dynamo", "same-padding", "softplus-dynamo"]
BUNDLED = {"vgg-s": (28, 1), "camera-mobilenet": (96, 3)}


def seed_model(name, tmp_path):
    """(path, calibration images) of one seed."""
    rng = np.random.default_rng(0)
    if name in BUNDLED:
        size, channels = BUNDLED[name]
        shape = (8, size, size) if channels == 1 else (8, size, size, channels)
        return os.path.join(REPO, "models", f"{name}.onnx"), rng.integers(0, 256, shape, dtype=np.uint8)
    torch.manual_seed(7)
    model = test_new_ops.MODELS[name][0]().eval()
    path = str(tmp_path / f"{name}.onnx")
    x = torch.zeros(1, 3, test_new_ops.SIZE, test_new_ops.SIZE)
    if name in test_new_ops.DYNAMO:
        torch.onnx.export(model, (x,), path)
    else:
        torch.onnx.export(model, (x,), path, dynamo=False, opset_version=17)
    onnx.save(onnx.load(path), path)  # the weights inline: a mutant is one file
    return path, test_new_ops.images(8, 2)


@pytest.mark.parametrize("name", EXPORTED + list(BUNDLED))
def test_mutants_quantise_or_are_refused_in_one_line(name, tmp_path):
    path, calib = seed_model(name, tmp_path)
    np.save(tmp_path / "calib.npy", calib)
    seed = onnx.load(path)
    norm = () if any(p.key == "sieve.input_mean" for p in seed.metadata_props) else ("--norm", "none")
    rng = random.Random(name)
    failures, outcomes = [], {"quantised": 0, "refused": 0}
    for k in range(MUTANTS):
        model, what = fuzz_onnx.mutant(seed, rng)
        mutant = tmp_path / "mutant.onnx"
        onnx.save(model, str(mutant))
        out = tmp_path / "out.sieve"
        if out.exists():
            out.unlink()
        failure, outcome = fuzz_onnx.quantize(SIEVE_BIN, str(mutant), str(tmp_path / "calib.npy"), str(out), norm)
        if failure:
            kept = tmp_path / f"failing-{k}.onnx"
            mutant.rename(kept)
            failures.append(f"{kept}: {what}: {failure}")
        else:
            outcomes[outcome] += 1
    assert not failures, "\n".join(failures)
    # The mutants reach past the first checks: some still quantise.
    assert outcomes["quantised"] > 0, outcomes
