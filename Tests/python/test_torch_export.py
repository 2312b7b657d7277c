"""`sieve quantize` on what torch exports by default: small torch models with the patterns real
classifiers carry (BatchNorm after a ReLU and after a Linear, ReLU6, an explicit ZeroPad2d,
MaxPool ceil_mode, the global pool as a mean, a final Softmax, normalisation inside the graph),
exported with the dynamo exporter (opset 18+, external .onnx.data) and the legacy one at opsets
11, 13, 17 and 21 (and both with a dynamic batch axis), quantised, run with `sieve eval`, and compared with the float model in ONNX
Runtime (top-1 agreement). Also the refusals: no normalisation, an unsupported op."""
import os
import subprocess
import warnings

import numpy as np
import pytest

from conftest import SIEVE_BIN, report, run_cli

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")
nn = torch.nn

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)
SIZE = 32


class Net(nn.Module):
    """A few convs with the awkward bits in odd places; `normalise` puts (x - mean) / std in the graph."""

    def __init__(self, normalise):
        super().__init__()
        self.normalise = normalise
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        self.stem = nn.Conv2d(3, 16, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.pool = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.pad = nn.ZeroPad2d((1, 1, 1, 1))
        self.conv2 = nn.Conv2d(16, 24, 3)
        self.bn2 = nn.BatchNorm2d(24)          # after the ReLU: a per-channel affine
        self.conv3 = nn.Conv2d(24, 32, 1)      # no padding: bn2 may fold forward into it
        self.fc1 = nn.Linear(32, 32)
        self.bn3 = nn.BatchNorm1d(32)          # after a Linear: folds back
        self.fc2 = nn.Linear(32, 10)

    def forward(self, x):
        if self.normalise:
            x = (x - self.mean) / self.std
        x = nn.functional.relu6(self.bn1(self.stem(x)))
        x = self.pool(x)
        x = self.bn2(torch.relu(self.conv2(self.pad(x))))
        x = torch.relu(self.conv3(x))
        x = x.mean((2, 3))
        x = torch.relu(self.bn3(self.fc1(x)))
        return torch.softmax(self.fc2(x), 1)


def make_net(normalise, seed=0):
    torch.manual_seed(seed)
    net = Net(normalise)
    for bn in (net.bn1, net.bn2, net.bn3):
        n = bn.num_features
        bn.running_mean.uniform_(-0.3, 0.3)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.data.uniform_(0.5, 1.5)
        bn.bias.data.uniform_(-0.2, 0.2)
    net.eval()
    # Centre the classifier on the features of sample images, so the answer depends on the image
    # (a random net with a global pool answers one class, which would prove nothing).
    features = []
    hook = net.fc2.register_forward_hook(lambda m, inputs, out: features.append(inputs[0]))
    with torch.no_grad():
        x = torch.tensor(images(64, seed=3)).permute(0, 3, 1, 2).float() / 255
        net(x if normalise else (x - net.mean) / net.std)
        f = features[0]
        # Score along the features' main directions of variation, where quantisation noise is relatively
        # smallest, each scaled to the same spread so one per-tensor scale suits every logit.
        _, spread, directions = torch.linalg.svd(f - f.mean(0), full_matrices=False)
        top = directions[:5] / spread[:5, None] * 8
        net.fc2.weight.data = torch.cat([top, -top])
        net.fc2.bias.data = -net.fc2.weight.data @ f.mean(0)
    hook.remove()
    return net


def images(n, seed):
    """Smooth colour patterns with noise: structure the convs respond to differently per image."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    out = np.empty((n, SIZE, SIZE, 3), np.uint8)
    for i in range(n):
        f = rng.uniform(0.05, 0.8, (3, 2))
        phase = rng.uniform(0, 6.3, 3)
        level = rng.uniform(40, 215, 3)
        amp = rng.uniform(5, 100, 3)
        planes = [level[c] + amp[c] * np.sin(f[c, 0] * x + f[c, 1] * y + phase[c]) for c in range(3)]
        img = np.stack(planes, -1) + rng.normal(0, 12, (SIZE, SIZE, 3))
        out[i] = np.clip(img, 0, 255).astype(np.uint8)
    return out


def export(net, path, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.zeros(1, 3, SIZE, SIZE),), str(path), **kwargs)
    return path


def float_outputs(onnx_path, pixels, normalise_outside):
    x = pixels.astype(np.float32).transpose(0, 3, 1, 2) / 255.0
    if normalise_outside:
        x = (x - IMAGENET_MEAN.reshape(1, 3, 1, 1)) / IMAGENET_STD.reshape(1, 3, 1, 1)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return np.concatenate([session.run(None, {name: x[i:i + 1]})[0] for i in range(len(x))])


def float_top1(onnx_path, pixels, normalise_outside):
    return float_outputs(onnx_path, pixels, normalise_outside).argmax(1)


def softmax(z):
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def int8_top1(blob, pixels, tmp_path):
    np.save(tmp_path / "test.npy", pixels)
    np.save(tmp_path / "labels.npy", np.zeros(len(pixels), np.uint8))
    dump = tmp_path / "logits.npy"
    run_cli("eval", blob, "--images", tmp_path / "test.npy", "--labels", tmp_path / "labels.npy", "--dump-exact-logits", dump)
    return np.load(dump)[:, 0, :].argmax(1)


def quantize_fail(*args):
    proc = subprocess.run([SIEVE_BIN, "quantize", *map(str, args)], capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0, proc.stdout
    return proc.stderr


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("torch-export")
    np.save(d / "calib.npy", images(64, seed=1))
    return d, images(200, seed=2)


VARIANTS = [("dynamo", {}), ("legacy-11", {"dynamo": False, "opset_version": 11}), ("legacy-13", {"dynamo": False, "opset_version": 13}),
            ("legacy-17", {"dynamo": False, "opset_version": 17}), ("legacy-21", {"dynamo": False, "opset_version": 21})]
# The tutorials' export: a dynamic batch axis (Sieve runs batch 1, and says so).
DYNAMIC_BATCH = {"input_names": ["image"], "output_names": ["scores"], "dynamic_axes": {"image": {0: "batch"}, "scores": {0: "batch"}}}
VARIANTS += [("dynamo-dynamic-batch", DYNAMIC_BATCH), ("legacy-17-dynamic-batch", {"dynamo": False, "opset_version": 17, **DYNAMIC_BATCH})]
# Height and width left dynamic too: refused until --input-size gives them.
DYNAMIC_SIZE = {"input_names": ["image"], "output_names": ["scores"], "dynamic_axes": {"image": {0: "batch", 2: "height", 3: "width"}}}
VARIANTS += [("legacy-17-dynamic-size", {"dynamo": False, "opset_version": 17, **DYNAMIC_SIZE})]


@pytest.mark.parametrize("name,kwargs", VARIANTS, ids=[v[0] for v in VARIANTS])
def test_in_graph_normalisation_export(data, tmp_path, name, kwargs):
    """(x - mean) / std in the graph, no options: quantises, and int8 top-1 follows the float model."""
    calib_dir, test = data
    model = export(make_net(normalise=True), tmp_path / "net.onnx", **kwargs)
    if name == "dynamo":
        assert os.path.exists(str(model) + ".data"), "the dynamo exporter no longer writes external data: the test lost its point"
    blob, imported = tmp_path / "net.sieve", tmp_path / "float.npy"
    size = []
    if name.endswith("dynamic-size"):
        assert "give its size with --input-size WxH" in quantize_fail(model, "--calib", calib_dir / "calib.npy", "-o", blob)
        size = ["--input-size", f"{SIZE}x{SIZE}"]
    proc, _ = run_cli("quantize", model, "--calib", calib_dir / "calib.npy", "--calib-count", 64, "-o", blob, "--dump-float-logits", imported, *size)
    assert ("dynamic height or width: imported at" in proc.stderr) == bool(size), proc.stderr
    assert "dropped Softmax" in proc.stderr and "into the input normalisation" in proc.stderr, proc.stderr
    # The float model as Sieve imported it (folds, the normalisation, Softmax dropped) computes what
    # ONNX Runtime does on the 64 calibration images.
    calib = np.load(calib_dir / "calib.npy")
    probabilities = float_outputs(model, calib, normalise_outside=False)
    assert np.abs(softmax(np.load(imported)) - probabilities).max() < 1e-5
    assert ("dynamic batch axis 'batch': imported with batch 1" in proc.stderr) == ("dynamic" in name), proc.stderr
    reference = float_top1(model, test, normalise_outside=False)
    assert len(set(reference.tolist())) >= 3, "the float model answers (nearly) one class: the comparison would prove nothing"
    agreement = (int8_top1(blob, test, tmp_path) == reference).mean()
    report(f"torch export {name}: int8 (sieve eval) vs float (onnxruntime) top-1 agreement {100 * agreement:.1f}% on {len(test)} images")
    assert agreement >= 0.95, f"{name}: int8 vs float top-1 agreement {agreement:.3f}"


@pytest.mark.parametrize("how", ["norm", "mean-std"])
def test_plain_export_with_options(data, tmp_path, how):
    """A plain dynamo export (no normalisation anywhere) is refused without options, naming them,
    and quantises with --norm imagenet or --mean/--std, with labels from a file."""
    calib_dir, test = data
    model = export(make_net(normalise=False), tmp_path / "plain.onnx")
    blob = tmp_path / "plain.sieve"
    err = quantize_fail(model, "--calib", calib_dir / "calib.npy", "-o", blob)
    assert "does not say how its input is normalised" in err and "--norm imagenet" in err and "--mean R,G,B --std R,G,B" in err, err
    assert not blob.exists()
    options = ["--norm", "imagenet"] if how == "norm" else ["--mean", "0.485,0.456,0.406", "--std", "0.229,0.224,0.225"]
    labels = tmp_path / "labels.txt"
    labels.write_text("".join(f"class {i}\n" for i in range(10)))
    run_cli("quantize", model, "--calib", calib_dir / "calib.npy", "--calib-count", 64, *options, "--labels", labels, "-o", blob)
    info = run_cli("inspect", blob)[0].stdout
    assert "class 9" in info, info
    reference = float_top1(model, test, normalise_outside=True)
    agreement = (int8_top1(blob, test, tmp_path) == reference).mean()
    report(f"torch export plain + {how}: int8 vs float top-1 agreement {100 * agreement:.1f}% on {len(test)} images")
    assert agreement >= 0.95, f"int8 vs float top-1 agreement {agreement:.3f}"
    labels.write_text("a\nb\n")
    assert "--labels gives 2 labels; the model has 10 classes" in quantize_fail(model, "--calib", calib_dir / "calib.npy", "--norm", "none",
                                                                                 "--labels", labels, "-o", blob)


def test_refusals_say_what_to_do(data, tmp_path):
    """An op classifiers do not need gets one line naming it and what to do."""
    calib_dir, _ = data

    class Upsampling(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)
            self.fc = nn.Linear(4, 10)

        def forward(self, x):
            x = nn.functional.interpolate(torch.relu(self.conv(x)), scale_factor=2.0, mode="nearest")
            return self.fc(x.mean((2, 3)))

    model = export(Upsampling().eval(), tmp_path / "up.onnx")
    err = quantize_fail(model, "--calib", calib_dir / "calib.npy", "--norm", "none", "-o", tmp_path / "up.sieve")
    assert "Resize is not supported; classifiers do not need it" in err and len(err.strip().splitlines()) == 1, err
    err = quantize_fail(model, "--calib", calib_dir / "calib.npy", "--norm", "imagenet", "--mean", "0.5", "--std", "0.5", "-o", tmp_path / "x.sieve")
    assert "--norm cannot be combined with --mean/--std" in err, err
