"""The zoo end to end (Tools/zoo/zoo.py): four torchvision classifiers built with fixed seeds,
exported with torch's default exporter, quantised with `--norm imagenet` and nothing else, run by
the runtime and by the independent int8 reference.

What is asserted, and why not top-1 agreement with the float model: these networks have random
weights (no downloads), BatchNorm re-estimated and the last layer fitted on camera-like pictures.
Such networks are chaotic: the zoo's own "float + 40 dB noise" column shows the float model
disagreeing with itself on most pictures, so int8 agreement says little about the quantiser.
docs/ZOO.md gives those figures. Here: every model imports and quantises from the default export,
its float logits vary across pictures (a constant network would prove nothing), and the runtime's
int8 logits equal the reference's bit for bit. Trained weights (zoo.py --train-seconds) take
minutes per model, so the agreement table in docs/ZOO.md is made by that command, not in CI; here
only its training schedule and option checks.
"""
import json
import os
import subprocess
import sys

from conftest import REPO, SIEVE_BIN

MODELS = ["mobilenet_v2", "mobilenet_v3_small", "resnet18", "squeezenet1_1"]


def test_zoo_models_quantise_from_the_default_export_and_run_exactly(tmp_path):
    out = tmp_path / "zoo"
    proc = subprocess.run([sys.executable, os.path.join(REPO, "Tools", "zoo", "zoo.py"), "--models", ",".join(MODELS),
                           "--out", str(out), "--sieve", SIEVE_BIN, "--images", "24", "--calib-images", "16",
                           "--bn-images", "48", "--fit-images", "200", "--runs", "3", "--reference", "3",
                           "--threads", "2"],  # torch on both of CI's cores (zoo.py's default is 1)
                          capture_output=True, text=True, timeout=2400)
    print(proc.stdout)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = {r["model"]: r for r in json.load(open(out / "zoo.json"))}
    assert sorted(rows) == sorted(MODELS)
    for name, r in rows.items():
        assert "error" not in r, f"{name}: {r.get('error')}"
        assert r["ops"] > 10 and r["macs"] > 10_000_000, f"{name}: {r['ops']} ops, {r['macs']} MACs"
        assert r["logit_spread"] > 0.1, f"{name}: float logits barely vary across pictures ({r['logit_spread']})"
        assert r["reference_images"] == 3 and r["reference_mismatches"] == 0, \
            f"{name}: runtime and reference int8 or exact logits differ on {r['reference_mismatches']} of 3 pictures"
    # sensitivity.py simulates the int8 tensors Sieve stores: one per op of the blob.
    sensitivity = zoo_module("sensitivity")
    simulated = sensitivity.quantised_points(sensitivity.torchvision_models.build("mobilenet_v3_small"))
    assert len(simulated) == rows["mobilenet_v3_small"]["ops"], [name for name, _ in simulated]


def zoo_module(name):
    sys.path.insert(0, os.path.join(REPO, "Tools", "zoo"))
    return __import__(name)


def test_fake_quantisation_is_int8_and_per_channel_is_finer():
    import torch
    sensitivity = zoo_module("sensitivity")
    torch.manual_seed(0)
    layer = torch.nn.Identity()
    fake = sensitivity.FakeQuant([("x", layer)])
    # Channels of very different ranges, one of them all negative: where per-channel ranges pay.
    x = torch.randn(4, 3, 8, 8) * torch.tensor([20.0, 1.0, 0.1]).view(1, 3, 1, 1) - torch.tensor([0, 0, 0.5]).view(1, 3, 1, 1)
    layer(x)
    fake.calibrating = False
    assert torch.equal(layer(x), x)  # float mode: untouched
    fake.mode = {"x": "tensor"}
    per_tensor = layer(x)
    assert len(torch.unique(per_tensor)) <= 256
    assert torch.equal(layer(torch.zeros(1, 3, 1, 1)), torch.zeros(1, 3, 1, 1))  # zero is exact
    fake.mode = {"x": "channel"}
    per_channel = layer(x)
    for c in range(3):
        assert len(torch.unique(per_channel[:, c])) <= 256
        assert (per_channel[:, c] - x[:, c]).abs().max() <= (per_tensor[:, c] - x[:, c]).abs().max()
    assert (per_channel[:, 2] - x[:, 2]).abs().max() < 0.01 < (per_tensor[:, 2] - x[:, 2]).abs().max()


def test_training_resolutions_are_progressive_and_end_at_the_last():
    sys.path.insert(0, os.path.join(REPO, "Tools", "zoo"))
    import train_zoo
    schedule = [train_zoo.resolution_at([64, 128, 224], f / 100) for f in range(100)]
    assert schedule[:50] == [64] * 50 and schedule[50:75] == [128] * 25 and schedule[75:] == [224] * 25, schedule
    assert {train_zoo.resolution_at([96], f / 10) for f in range(10)} == {96}


def test_zoo_refuses_bad_training_options(tmp_path):
    for option, value, expected in [("--train-resolutions", "64,abc", "--train-resolutions"),
                                    ("--train-resolutions", "16", "resolution"),
                                    ("--train-seconds", "-5", "--train-seconds"),
                                    ("--sieve", str(tmp_path / "no-sieve"), "no sieve CLI")]:
        proc = subprocess.run([sys.executable, os.path.join(REPO, "Tools", "zoo", "zoo.py"), "--out", str(tmp_path),
                               option, value], capture_output=True, text=True, timeout=300)
        assert proc.returncode != 0 and expected in proc.stderr, (option, value, proc.stderr)


def test_margins_refuses_a_directory_without_a_zoo_report(tmp_path):
    proc = subprocess.run([sys.executable, os.path.join(REPO, "Tools", "zoo", "margins.py"), str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and "zoo.json" in proc.stderr, proc.stderr
