"""CONCAT, MUL, LUT and GATHER end to end: small torch models with a squeeze-excitation block (HardSigmoid and
Sigmoid), a SqueezeNet fire module (Concat), a DenseNet block (Concats of up to 7 inputs), HardSwish and SiLU,
LeakyReLU, PReLU, ELU, SELU, CELU, Softplus, GELU, Tanh and Mish (each a table), PReLU with a slope per
channel (a depthwise conv and an ADD), an average pool counting its padding (a depthwise conv), ReLUs after a pool or of a tensor read twice (clamp tables),
ShuffleNetV2 units (channel split and shuffle: GATHER), exported with the legacy exporter (opset 17; the
shuffle also with the default dynamo exporter) and the normalisation metadata, quantised by `sieve quantize`; the runtime's int8 logits
equal the numpy reference's bit for bit (int8 and exact logits), the blob holds the ops the model needs, and
the runtime's answers (exact logits) agree with the float model on >= 95 % of images of a classifier
standardised so that every class wins some images."""
import json
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
nn = torch.nn

import sieve_blob as sb
from conftest import report, run_cli

MEAN, STD = [0.45, 0.40, 0.35], [0.25, 0.22, 0.24]
SIZE, CLASSES = 32, 10


class SqueezeExcite(nn.Module):
    def __init__(self, c, gate):
        super().__init__()
        self.fc1, self.fc2, self.gate = nn.Conv2d(c, c // 4, 1), nn.Conv2d(c // 4, c, 1), gate

    def forward(self, x):
        s = nn.functional.adaptive_avg_pool2d(x, 1)
        return self.gate(self.fc2(torch.relu(self.fc1(s)))) * x   # torchvision's order: scale * input


class Fire(nn.Module):
    def __init__(self, cin, squeeze, expand):
        super().__init__()
        self.squeeze, self.e1, self.e3 = nn.Conv2d(cin, squeeze, 1), nn.Conv2d(squeeze, expand, 1), nn.Conv2d(squeeze, expand, 3, padding=1)

    def forward(self, x):
        s = torch.relu(self.squeeze(x))
        return torch.cat([torch.relu(self.e1(s)), torch.relu(self.e3(s))], 1)


class DenseBlock(nn.Module):
    """DenseNet's block: each layer reads the concatenation of all before it; the last Concat has 7 inputs."""
    def __init__(self, cin, growth, layers):
        super().__init__()
        self.layers = nn.ModuleList(nn.Sequential(nn.BatchNorm2d(cin + i * growth), nn.ReLU(), nn.Conv2d(cin + i * growth, growth, 3, padding=1))
                                    for i in range(layers))

    def forward(self, x):
        features = [x]
        for layer in self.layers:
            features.append(layer(torch.cat(features, 1)))
        return torch.cat(features, 1)


def channel_shuffle(x, groups):
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class ShuffleUnit(nn.Module):
    """ShuffleNetV2's unit: stride 1 splits the channels in two and transforms one half, stride 2
    transforms the input twice; then the halves are concatenated and shuffled in `groups` groups."""
    def __init__(self, cin, cout, stride, groups=2):
        super().__init__()
        half, self.stride, self.groups = cout // 2, stride, groups
        inner = half if stride == 1 else cin

        def body(c):
            return nn.Sequential(nn.Conv2d(c, half, 1), nn.BatchNorm2d(half), nn.ReLU(),
                                 nn.Conv2d(half, half, 3, stride, 1, groups=half), nn.BatchNorm2d(half),
                                 nn.Conv2d(half, half, 1), nn.BatchNorm2d(half), nn.ReLU())
        self.branch2 = body(inner)
        if stride == 2:
            self.branch1 = nn.Sequential(nn.Conv2d(cin, cin, 3, 2, 1, groups=cin), nn.BatchNorm2d(cin), nn.Conv2d(cin, half, 1), nn.BatchNorm2d(half), nn.ReLU())

    def forward(self, x):
        if self.stride == 1:
            a, b = x.chunk(2, dim=1)
            out = torch.cat([a, self.branch2(b)], 1)
        else:
            out = torch.cat([self.branch1(x), self.branch2(x)], 1)
        return channel_shuffle(out, self.groups)


class PoolsAndSharedReLU(nn.Module):
    """PyTorch's default AvgPool2d with padding (count_include_pad: a depthwise conv of weights 1/9), a
    ReLU after a max pool and a ReLU of a conv output that another op reads too (clamp tables)."""
    def __init__(self, c):
        super().__init__()
        self.conv, self.side, self.avg, self.max = nn.Conv2d(c, c, 3, padding=1), nn.Conv2d(c, c, 1), nn.AvgPool2d(3, 1, 1), nn.MaxPool2d(2)

    def forward(self, x):
        y = self.conv(x)
        z = torch.relu(y) + self.side(y)
        return torch.relu(self.max(self.avg(z) - 0.5))


def prelu_net():
    """PReLU with a slope per channel, spread over [-0.3, 1]: a 1x1 depthwise conv and an ADD."""
    prelu = nn.PReLU(24)
    with torch.no_grad():
        prelu.weight.copy_(torch.linspace(-0.3, 1.0, 24)[torch.randperm(24)])
    return net(nn.Conv2d(16, 24, 3, padding=1), prelu, nn.Conv2d(24, 24, 3, padding=1), nn.ReLU(), channels=24)


def shuffle_net():
    """A Split of a plain tensor (one channel run), a shuffle read twice (stored), Splits of a
    shuffle (each half an interleave of two runs) and a 4-group shuffle (any order): every GATHER
    kernel branch."""
    return net(ShuffleUnit(16, 16, 1), ShuffleUnit(16, 32, 2), ShuffleUnit(32, 32, 1, groups=4), channels=32)


class PooledVectors(nn.Module):
    """A head reading three pooled vectors side by side: amax over H, W (ReduceMax), the global average
    and AdaptiveMaxPool2d(1) (ReduceMax with keepdims, or the legacy exporter's whole-image MaxPool),
    concatenated as [1, K] vectors."""
    def forward(self, x):
        pooled = [x.amax((2, 3)), nn.functional.adaptive_avg_pool2d(x, 1).flatten(1), nn.functional.adaptive_max_pool2d(x, 1).flatten(1)]
        return torch.cat(pooled, 1)


def pooled_vectors_net():
    return nn.Sequential(nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.Conv2d(16, 16, 3, padding=1),
                         nn.BatchNorm2d(16), nn.ReLU(), PooledVectors(), nn.Linear(48, CLASSES))


class Conv2dSame(nn.Conv2d):
    """TensorFlow's "same" padding computed at run time, as timm's tf_* networks do: traced by the legacy
    exporter as float arithmetic on the input size (Ceil, Sub, Mul, Clip, Div, Casts) feeding a Pad."""
    def forward(self, x):
        ih, iw = x.size()[-2:]
        pads = [max((math.ceil(size / self.stride[i]) - 1) * self.stride[i] + self.kernel_size[i] - size, 0) for i, size in enumerate((ih, iw))]
        x = nn.functional.pad(x, [pads[1] // 2, pads[1] - pads[1] // 2, pads[0] // 2, pads[0] - pads[0] // 2])
        return nn.functional.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def same_padding_net():
    return net(Conv2dSame(16, 24, 3, stride=2), nn.ReLU(), Conv2dSame(24, 24, 5, groups=24), nn.ReLU(), channels=24)


def summed_net():
    """x.sum((2, 3)) before the classifier: the global average pool times H W, absorbed by the Linear."""
    class Sum(nn.Module):
        def forward(self, x):
            return x.sum((2, 3))
    return nn.Sequential(nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.Conv2d(16, 16, 3, padding=1),
                         nn.BatchNorm2d(16), nn.ReLU(), Sum(), nn.Linear(16, CLASSES))


def dilated_net():
    """Dilated convs, a dense one at dilation 2 and a depthwise one at (2, 4): the dense kernels they sample."""
    return net(nn.Conv2d(16, 24, 3, padding=2, dilation=2), nn.ReLU(), nn.Conv2d(24, 24, 3, padding=(2, 4), dilation=(2, 4), groups=24),
               nn.ReLU(), channels=24)


def softplus_net():
    """torch's Softplus as the default exporter writes it: Where(x > 20, x, Softplus(x)), and with beta 2 and
    threshold 3 Where(2 x > 3, x, Softplus(2 x) / 2): one table each (the Swift tests check that the
    threshold changes the function)."""
    return net(nn.Conv2d(16, 24, 3, padding=1), nn.Softplus(), nn.Conv2d(24, 24, 3, padding=1), nn.Softplus(beta=2, threshold=3),
               channels=24)


def net(*body, channels):
    return nn.Sequential(nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU(), *body,
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, CLASSES))


MODELS = {
    # name: (builder, blob op kinds that must appear)
    "se-hardsigmoid": (lambda: net(nn.Conv2d(16, 32, 3, padding=1), nn.Hardswish(), SqueezeExcite(32, nn.Hardsigmoid()), channels=32),
                       {sb.MUL, sb.LUT}),
    "se-sigmoid": (lambda: net(nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), SqueezeExcite(32, nn.Sigmoid()), channels=32),
                   {sb.MUL, sb.LUT}),
    "fire": (lambda: net(Fire(16, 8, 16), Fire(32, 8, 24), channels=48), {sb.CONCAT}),
    "dense": (lambda: net(DenseBlock(16, 4, 6), channels=40), {sb.CONCAT}),
    "hardswish-silu": (lambda: net(nn.Conv2d(16, 24, 3, padding=1), nn.Hardswish(), nn.Conv2d(24, 24, 3, padding=1), nn.SiLU(),
                                   channels=24), {sb.LUT}),
    "shuffle": (shuffle_net, {sb.GATHER, sb.CONCAT}),
    "shuffle-dynamo": (shuffle_net, {sb.GATHER, sb.CONCAT}),
    # Activations that are tables: LeakyReLU, PReLU with one slope, ELU; SELU, CELU, Softplus; and with
    # the default exporter GELU (erf and tanh forms), Tanh, Mish.
    "leaky-prelu-elu": (lambda: net(nn.Conv2d(16, 24, 3, padding=1), nn.LeakyReLU(0.1), nn.Conv2d(24, 24, 3, padding=1), nn.PReLU(init=0.2),
                                    nn.Conv2d(24, 24, 3, padding=1), nn.ELU(), channels=24), {sb.LUT}),
    "selu-celu-softplus": (lambda: net(nn.Conv2d(16, 24, 3, padding=1), nn.SELU(), nn.Conv2d(24, 24, 3, padding=1), nn.CELU(0.5),
                                       nn.Conv2d(24, 24, 3, padding=1), nn.Softplus(), channels=24), {sb.LUT}),
    "prelu-per-channel": (prelu_net, {sb.DEPTHWISE_CONV, sb.ADD}),
    "prelu-per-channel-dynamo": (prelu_net, {sb.DEPTHWISE_CONV, sb.ADD}),
    "pools-shared-relu": (lambda: net(PoolsAndSharedReLU(16), channels=16), {sb.DEPTHWISE_CONV, sb.LUT}),
    "pools-shared-relu-dynamo": (lambda: net(PoolsAndSharedReLU(16), channels=16), {sb.DEPTHWISE_CONV, sb.LUT}),
    "gelu-tanh-mish": (lambda: net(nn.Conv2d(16, 24, 3, padding=1), nn.GELU(), nn.Conv2d(24, 24, 3, padding=1), nn.GELU("tanh"),
                                   nn.Conv2d(24, 24, 3, padding=1), nn.Tanh(), nn.Conv2d(24, 24, 3, padding=1), nn.Mish(), channels=24), {sb.LUT}),
    # Legacy exporter below opset 20: GELU as Div, Erf, Add, Mul, Mul, its tanh form as nine Muls, Adds and a
    # Tanh; each fused back into one table.
    "gelu-legacy": (lambda: net(nn.Conv2d(16, 24, 3, padding=1), nn.GELU(), nn.Conv2d(24, 24, 3, padding=1), nn.GELU("tanh"),
                                channels=24), {sb.LUT}),
    "pooled-vectors": (pooled_vectors_net, {sb.MAX_POOL, sb.GLOBAL_AVERAGE_POOL, sb.CONCAT}),
    "pooled-vectors-dynamo": (pooled_vectors_net, {sb.MAX_POOL, sb.GLOBAL_AVERAGE_POOL, sb.CONCAT}),
    "summed-dynamo": (summed_net, {sb.GLOBAL_AVERAGE_POOL}),
    "dilated": (dilated_net, {sb.CONV, sb.DEPTHWISE_CONV}),
    "dilated-dynamo": (dilated_net, {sb.CONV, sb.DEPTHWISE_CONV}),
    "softplus-dynamo": (softplus_net, {sb.LUT}),
    "same-padding": (same_padding_net, {sb.CONV, sb.DEPTHWISE_CONV}),
}
# The default (dynamo) exporter: opset 18, Split with num_outputs where the legacy one has Slices;
# one Gelu op where the legacy one writes Erf or Tanh arithmetic; ReduceMax for amax and adaptive max pools;
# Softplus with its threshold as Greater and Where.
DYNAMO = {"shuffle-dynamo", "gelu-tanh-mish", "pools-shared-relu-dynamo", "prelu-per-channel-dynamo", "pooled-vectors-dynamo",
          "dilated-dynamo", "softplus-dynamo", "summed-dynamo"}
# Tables, one per activation (none fused into a conv).
TABLES = {"gelu-legacy": 2, "leaky-prelu-elu": 3, "selu-celu-softplus": 3, "gelu-tanh-mish": 4, "pools-shared-relu": 2, "pools-shared-relu-dynamo": 2,
          "softplus-dynamo": 2}
# SiLU's Sigmoid + Mul fuse into one table: no MUL may remain.
ABSENT = {"hardswish-silu": {sb.MUL}, "gelu-legacy": {sb.MUL}}


def images(n, seed):
    """Smooth colour images (upsampled noise plus a gradient): logits that vary from image to image."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, size=(n, 4, 4, 3))
    up = np.repeat(np.repeat(coarse, SIZE // 4, axis=1), SIZE // 4, axis=2)
    ramp = np.linspace(-40, 40, SIZE)[None, :, None, None] * rng.uniform(-1, 1, size=(n, 1, 1, 3))
    return np.clip(up + ramp + rng.normal(0, 8, size=up.shape), 0, 255).astype(np.uint8)


def float_logits(model, pixels):
    x = (pixels.astype(np.float32) / 255 - np.array(MEAN, np.float32)) / np.array(STD, np.float32)
    with torch.no_grad():
        return model(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).numpy()


@pytest.mark.parametrize("name", MODELS, ids=list(MODELS))
def test_new_ops_match_reference_and_float(name, tmp_path):
    torch.manual_seed(7)
    build, kinds = MODELS[name]
    model = build().eval()
    x = torch.from_numpy(((images(64, 1).astype(np.float32) / 255 - np.array(MEAN, np.float32)) / np.array(STD, np.float32)).transpose(0, 3, 1, 2).copy())
    with torch.no_grad():
        # BatchNorm statistics of real-looking inputs, so activations are not degenerate: the whole
        # batch's (momentum None), not a tenth of the way from the initial 0 and 1.
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.momentum = None
                m.reset_running_stats()
        model.train()
        model(x)
        model.eval()
        # Standardise each class logit over these images: with random weights one class would
        # otherwise win every image, and top-1 agreement would prove nothing.
        fc = model[-1]
        logits = model(x)
        mean, std = logits.mean(0), logits.std(0) + 1e-6
        fc.weight /= std[:, None]
        fc.bias.copy_((fc.bias - mean) / std)
    path = tmp_path / f"{name}.onnx"
    if name in DYNAMO:
        torch.onnx.export(model, (torch.zeros(1, 3, SIZE, SIZE),), str(path))
    else:
        torch.onnx.export(model, (torch.zeros(1, 3, SIZE, SIZE),), str(path), dynamo=False, opset_version=17)
    proto = onnx.load(str(path))
    for key, value in (("sieve.input_mean", MEAN), ("sieve.input_std", STD)):
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, json.dumps(value)
    onnx.save(proto, str(path))

    calib, test = images(200, 2), images(300, 3)
    np.save(tmp_path / "calib.npy", calib)
    np.save(tmp_path / "test.npy", test)
    np.save(tmp_path / "labels.npy", np.zeros(len(test), np.uint8))
    blob_path = tmp_path / f"{name}.sieve"
    run_cli("quantize", path, "--calib", tmp_path / "calib.npy", "-o", blob_path)
    blob = sb.load(str(blob_path))
    present = {op.kind for op in blob.ops}
    assert kinds <= present, f"blob ops {sorted(sb.OP_NAMES[k] for k in present)} lack {sorted(sb.OP_NAMES[k] for k in kinds - present)}"
    assert not (ABSENT.get(name, set()) & present), f"blob ops {sorted(sb.OP_NAMES[k] for k in present)}: a pattern was not fused"
    if name in TABLES:
        assert sum(op.kind == sb.LUT for op in blob.ops) == TABLES[name], [sb.OP_NAMES[op.kind] for op in blob.ops]

    dump, exact_dump = tmp_path / "logits.npy", tmp_path / "exact.npy"
    run_cli("eval", blob_path, "--images", tmp_path / "test.npy", "--labels", tmp_path / "labels.npy", "--dump-logits", dump,
            "--dump-exact-logits", exact_dump)
    runtime = np.load(dump)[:, 0]
    out = sb.run(blob, test, keep_all=True)
    reference = out["final"]
    assert np.array_equal(runtime, reference), f"{int((runtime != reference).any(axis=1).sum())} images differ"
    # Answers come from the exact logits (docs/FORMAT.md): bit-exact to the reference's too.
    exact = np.load(exact_dump)[:, 0]
    assert np.array_equal(exact, sb.exact_logits(blob, out["tensors"])[:, 0])

    f = float_logits(model, test)
    winners = len(set(f.argmax(1).tolist()))
    assert winners >= 5, f"the float model's top-1 takes only {winners} classes: the comparison would prove little"
    agreement = float((exact.argmax(1) == f.argmax(1)).mean())
    report(f"new ops, {name}: {' '.join(op.name for op in blob.ops)}; int8 vs float top-1 {100 * agreement:.1f}% on {len(test)} images")
    assert agreement >= 0.95, f"int8 vs float top-1 agreement {agreement:.3f}"
