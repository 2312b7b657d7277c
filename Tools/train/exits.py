"""Exit heads for any PyTorch classifier: the hook that lets joint training (the paper's loss) work
on your own architecture, not only the three built into models.py.

    from exits import WithExits, joint_loss, export_with_exits

    net = WithExits(MyNet(), taps=["layer1", "layer2"], example=torch.zeros(1, 3, 96, 96), classes=10)
    logits, heads = net(x)                       # heads: one [N, K] tensor per tap, in tap order
    loss = joint_loss(logits, heads, y, kind="exclusion", classes=10)
    export_with_exits(net, "mine.onnx", example, kind="exclusion", meta={"sieve.input_mean": ...})

A tap is the name of a submodule (as `named_modules()` lists it); its output feeds a head. The
backbone is untouched: its forward returns the class logits as before, and forward hooks collect the
tap outputs. Heads are `Head` modules (global average pool or a 2x2 grid -> one fully connected
layer), the shapes Sieve runs as exit heads.
"""
import json

import torch
from torch import nn


class Head(nn.Module):
    """Exit head: average pool to a `grid` x `grid` map (1 = the paper's global average pool) ->
    flatten -> fully connected to the classes. A 2x2 grid keeps where in the picture the features
    are, for four times the FC weights; it needs an even tap size (AveragePool kernel = stride)."""

    def __init__(self, channels, classes, grid=1):
        super().__init__()
        self.grid = grid
        self.fc = nn.Linear(channels * grid * grid, classes)

    def forward(self, x):
        if self.grid == 1:
            pooled = x.mean((2, 3))
        else:
            kh, kw = x.shape[2] // self.grid, x.shape[3] // self.grid
            pooled = torch.flatten(nn.functional.avg_pool2d(x, (kh, kw)), 1)
        return self.fc(pooled)


def head_grid(kind, height, width):
    """The grid a `--head-type` gives at a tap of this size: grid2 only where both sides are even
    (an uneven 2x2 grid would need overlapping or ragged windows); else the global pool."""
    return 2 if kind == "grid2" and height % 2 == 0 and width % 2 == 0 else 1


def head_loss_fn(kind, classes):
    """The paper's per-head loss: exclusion heads a sigmoid BCE per class with pos_weight 4(K-1)
    (a missed true class costs as much as 4(K-1) false alarms); confidence heads softmax CE."""
    if kind == "exclusion":
        bce = nn.BCEWithLogitsLoss(pos_weight=torch.full((classes,), 4.0 * (classes - 1)))
        return lambda z, y: bce(z, nn.functional.one_hot(y, classes).float())
    ce = nn.CrossEntropyLoss()
    return lambda z, y: ce(z, y)


def joint_loss(logits, heads, y, kind, classes):
    """CE(final) + sum_i BCE_or_CE(head_i) / (N - i + 1): deeper heads weigh more (N heads)."""
    loss = nn.functional.cross_entropy(logits, y)
    if heads:
        per_head = head_loss_fn(kind, classes)
        n = len(heads)
        loss = loss + sum(per_head(z, y) / (n - i + 1) for i, z in enumerate(heads))
    return loss


class WithExits(nn.Module):
    """A classifier with exit heads on the named submodules' outputs."""

    def __init__(self, backbone, taps, example, classes, head_type="gap"):
        super().__init__()
        self.backbone = backbone
        self.taps = list(taps)
        modules = dict(backbone.named_modules())
        missing = [t for t in self.taps if t not in modules]
        if missing:
            raise ValueError(f"no submodule named {', '.join(missing)}; the names are those of "
                             f"named_modules(), e.g. {', '.join(list(modules)[1:6])}")
        self._captured = {}
        for t in self.taps:
            modules[t].register_forward_hook(lambda m, inp, out, t=t: self._captured.__setitem__(t, out))
        with torch.no_grad():
            was_training = backbone.training
            backbone.eval()
            backbone(example)
            backbone.train(was_training)
        shapes = [self._captured[t].shape for t in self.taps]
        self.heads = nn.ModuleList(Head(s[1], classes, head_grid(head_type, s[2], s[3])) for s in shapes)

    def forward(self, x):
        self._captured.clear()
        logits = self.backbone(x)
        return logits, [head(self._captured[t]) for head, t in zip(self.heads, self.taps)]


def export_with_exits(net, path, example, kind, meta=None, heads=None, dynamo=False):
    """ONNX with the final logits and each head's logits as graph outputs, and the sieve.* metadata
    (docs/MODEL.md) naming them. `heads` limits the export to the first so many (0: backbone alone).
    Legacy exporter at opset 17: one self-contained file, no external data. With `dynamo`, torch's
    default exporter (opset 18+), its external weights moved back into the one file."""
    import os

    import onnx
    net.eval()
    n = len(net.heads) if heads is None else heads
    outputs = ["logits"] + [f"head{i}" for i in range(n)]

    class Flat(nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, x):
            logits, head_logits = self.m(x)
            return (logits, *head_logits[:n])

    if dynamo:
        torch.onnx.export(Flat(net).eval(), (example,), path, input_names=["input"], output_names=outputs)
    else:
        torch.onnx.export(Flat(net), (example,), path, opset_version=17, dynamo=False,
                          input_names=["input"], output_names=outputs, do_constant_folding=True)
    m = onnx.load(path)  # with any external data
    if os.path.exists(path + ".data"):
        os.remove(path + ".data")
    props = dict(meta or {})
    props["sieve.final_output"] = "logits"
    if n:
        props["sieve.heads"] = json.dumps([{"output": f"head{i}", "kind": kind} for i in range(n)])
    for k, v in props.items():
        entry = m.metadata_props.add()
        entry.key, entry.value = k, v
    onnx.save(m, path, save_as_external_data=False)
