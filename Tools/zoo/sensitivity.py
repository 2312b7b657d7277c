#!/usr/bin/env python3
"""Where a trained zoo model loses to int8: a fake-quantisation study in torch.

For a model trained by zoo.py (its --out directory holds MODEL/MODEL-trained.pt, calib.npy and
eval.npy), simulates 8-bit activations on the tensors Sieve quantises in MobileNet-style blocks
(torchvision's Conv2dNormActivation, SqueezeExcitation and InvertedResidual, the classifier, and
Conv2d-BatchNorm2d-ReLU runs in plain Sequentials as MnasNet writes them),
with ranges from the calibration pictures, and compares the logits with the float model's on the
held-out pictures. It answers what no change to Sieve can show by itself:

- every tensor per-tensor (what Sieve and ONNX Runtime do), every tensor per-channel (a bound no
  int8 runtime with per-tensor tables reaches), and weights alone (per-channel, BatchNorm folded);
- each tensor alone, the costliest first: is the loss in a few tensors or spread over all;
- per-channel ranges for one group of tensors at a time (projections and residual adds, whose
  channels could be rescaled exactly; hard-swish inputs and outputs; squeeze-excitation outputs;
  ReLU outputs feeding a depthwise conv, where equalising channel ranges would cost nothing);
- with --gain N, each tensor alone per channel and the rest per tensor, the N that gain most: is
  there one tensor whose channel ranges hold the network back.

    python3 Tools/zoo/sensitivity.py OUT/zoo-run mobilenet_v3_small

Ranges are min/max (Sieve's default `--method mse` narrows them; its agreement is a little above
the per-tensor row here). docs/ZOO.md, "Fourth pass", has the results for MobileNetV3-small.
"""
import argparse
import copy
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torchvision_models  # noqa: E402
from torchvision.ops.misc import Conv2dNormActivation, SqueezeExcitation  # noqa: E402

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def pictures(path, count=None):
    array = np.load(path)[:count]
    return (torch.from_numpy(array).permute(0, 3, 1, 2).float() / 255 - MEAN) / STD


def siblings(model):
    """name -> (the plain Sequential holding it, its index there), for modules in plain Sequentials
    (MnasNet writes its blocks as Conv2d, BatchNorm2d, ReLU in one Sequential)."""
    where = {}
    for name, module in model.named_modules():
        if type(module) is torch.nn.Sequential:
            for i, (child, _) in enumerate(module.named_children()):
                where[f"{name}.{child}" if name else child] = (module, i)
    return where


def next_sibling(where, name, step=1):
    if name not in where:
        return None
    sequence, i = where[name]
    children = list(sequence.children())
    return children[i + step] if 0 <= i + step < len(children) else None


def quantised_points(model):
    """(name, module) pairs whose outputs Sieve stores as int8 tensors (a global pool written as a
    function in forward(), as MobileNetV2's, is not a module and stays float)."""
    points = []
    in_blocks = {f"{name}.1" for name, module in model.named_modules() if isinstance(module, Conv2dNormActivation)}
    where = siblings(model)
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.BatchNorm2d) and isinstance(next_sibling(where, name), torch.nn.ReLU):
            points.append((f"{name}.relu", next_sibling(where, name)))  # Conv2d, BatchNorm2d, ReLU in a plain Sequential
        elif isinstance(module, torch.nn.BatchNorm2d) and name not in in_blocks:
            points.append((f"{name}.conv", module))  # a projection written as Conv2d + BatchNorm2d (MobileNetV2)
        elif isinstance(module, Conv2dNormActivation):
            activation = module[2] if len(module) > 2 else None
            # A ReLU fuses into its conv; any other activation is a table after an int8 conv output.
            if not isinstance(activation, (torch.nn.ReLU, torch.nn.ReLU6)):
                points.append((f"{name}.conv", module[1] if len(module) > 1 else module[0]))
            if activation is not None:
                points.append((f"{name}.act", activation))
        elif isinstance(module, SqueezeExcitation):
            points += [(f"{name}.pool", module.avgpool), (f"{name}.fc1", module.activation),
                       (f"{name}.fc2", module.fc2), (f"{name}.gate", module.scale_activation), (f"{name}.mul", module)]
        elif getattr(module, "use_res_connect", False) or getattr(module, "apply_residual", False):
            points.append((f"{name}.add", module))
        elif name.startswith("classifier") and isinstance(module, (torch.nn.Linear, torch.nn.Hardswish, torch.nn.ReLU)):
            points.append((name, module))
        elif name == "avgpool":
            points.append((name, module))
    return points


class FakeQuant:
    """Forward hooks that record per-channel ranges, then quantise outputs as told by `mode`."""

    def __init__(self, points):
        self.ranges, self.mode = {}, {}
        self.calibrating = True
        for name, module in points:
            module.register_forward_hook(self.hook(name))

    def hook(self, name):
        def quantise(module, inputs, out):
            channels = [0] + list(range(2, out.dim()))
            if self.calibrating:
                lo, hi = out.amin(dim=channels), out.amax(dim=channels)
                if name in self.ranges:
                    lo, hi = torch.minimum(lo, self.ranges[name][0]), torch.maximum(hi, self.ranges[name][1])
                self.ranges[name] = (lo, hi)
                return out
            how = self.mode.get(name, "float")
            if how == "float":
                return out
            lo, hi = self.ranges[name]
            if how == "tensor":
                lo, hi = lo.min(), hi.max()
            lo, hi = torch.clamp(lo, max=0), torch.clamp(hi, min=0)
            scale = (hi - lo).clamp(min=1e-8) / 255
            if how == "channel":
                shape = [1, -1] + [1] * (out.dim() - 2)
                scale, lo = scale.view(shape), lo.view(shape)
            zero = torch.round(-lo / scale)
            return (torch.clamp(torch.round(out / scale) + zero, 0, 255) - zero) * scale
        return quantise


def quantise_weights(model):
    """Per-output-channel symmetric int8 weights, BatchNorm folded first as Sieve folds it."""
    model = copy.deepcopy(model)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, Conv2dNormActivation) and isinstance(module[1], torch.nn.BatchNorm2d):
                conv, norm = module[0], module[1]
                gain = (norm.weight / torch.sqrt(norm.running_var + norm.eps)).view(-1, 1, 1, 1)
                folded = conv.weight * gain
                step = folded.abs().amax(dim=(1, 2, 3), keepdim=True).clamp(min=1e-12) / 127
                conv.weight.copy_(torch.round(folded / step) * step / gain)
            elif isinstance(module, torch.nn.Linear) or (isinstance(module, torch.nn.Conv2d) and module.bias is not None):
                weight = module.weight
                step = weight.abs().amax(dim=tuple(range(1, weight.dim())), keepdim=True).clamp(min=1e-12) / 127
                module.weight.copy_(torch.round(weight / step) * step)
    return model


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", help="a zoo.py --out directory with the model trained")
    parser.add_argument("model", help="e.g. mobilenet_v3_small")
    parser.add_argument("--calib-images", type=int, default=200)
    parser.add_argument("--top", type=int, default=12, help="tensors listed alone (default 12; 0: skip that slow part)")
    parser.add_argument("--gain", type=int, default=0,
                        help="list the N tensors that gain most from per-channel ranges alone (default 0: skip, it is slow)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = torchvision_models.build(args.model)
    model.load_state_dict(torch.load(os.path.join(args.run, args.model, f"{args.model}-trained.pt")))
    model.eval()
    calib = pictures(os.path.join(args.run, "calib.npy"), args.calib_images)
    held_out = pictures(os.path.join(args.run, "eval.npy"))

    def logits(net):
        return torch.cat([net(held_out[i:i + 100]) for i in range(0, len(held_out), 100)])

    with torch.no_grad():
        reference = logits(model)

        def compare(out):
            agreement = (out.argmax(1) == reference.argmax(1)).float().mean().item()
            sqnr = 10 * torch.log10((reference ** 2).sum() / ((reference - out) ** 2).sum()).item()
            return f"agreement {100 * agreement:5.1f} %, logit SQNR {sqnr:5.2f} dB"

        print(f"{len(held_out)} held-out pictures, ranges from {len(calib)} calibration pictures")
        print(f"  weights alone, int8 per channel:      {compare(logits(quantise_weights(model)))}")
        points = quantised_points(model)
        fake = FakeQuant(points)
        for i in range(0, len(calib), 50):
            model(calib[i:i + 50])
        fake.calibrating = False
        names = [name for name, _ in points]
        where = siblings(model)

        def run(mode):
            fake.mode = mode
            return logits(model)

        every = {name: "tensor" for name in names}
        print(f"  {len(names)} activations per tensor:       {compare(run(every))}")
        print(f"  {len(names)} activations per channel:      {compare(run({n: 'channel' for n in names}))}")
        groups = {
            "projections and residual adds": [n for n, m in points if n.endswith(".add") or
                                              (n.endswith(".conv") and isinstance(m, torch.nn.BatchNorm2d)
                                               and not any(n[:-5] + ".act" == o for o in names))],
            "hard-swish inputs": [n[:-4] + ".conv" for n, m in points
                                  if isinstance(m, torch.nn.Hardswish) and n[:-4] + ".conv" in names],
            "hard-swish outputs": [n for n, m in points if isinstance(m, torch.nn.Hardswish)],
            "squeeze-excitation outputs": [n for n in names if n.endswith(".mul")],
            # ReLU outputs feeding a depthwise conv: the one place equalising channel ranges is free
            # (the conv before scales each output channel, the depthwise conv takes it back, both
            # with per-channel weights); ideal per-channel ranges here bound what it could gain.
            "depthwise inputs after a ReLU": [n for n in names if n.endswith(".relu") and isinstance(
                next_sibling(where, n[:-len(".relu")], 2), torch.nn.Conv2d) and next_sibling(where, n[:-len(".relu")], 2).groups > 1],
        }
        for group, members in groups.items():
            if members:
                print(f"  per tensor, {len(members)} {group} per channel: {compare(run({**every, **{n: 'channel' for n in members}}))}")
        if args.gain:
            gains = []
            for name in names:
                out = run({**every, name: "channel"})
                gains.append((10 * torch.log10((reference ** 2).sum() / ((reference - out) ** 2).sum()).item(),
                              (out.argmax(1) == reference.argmax(1)).float().mean().item(), name))
            gains.sort(reverse=True)
            print(f"each tensor alone per channel, the rest per tensor, the {args.gain} that gain most:")
            for sqnr, agreement, name in gains[:args.gain]:
                lo, hi = fake.ranges[name]
                print(f"  {name:36s} agreement {100 * agreement:5.1f} %, logit SQNR {sqnr:6.2f} dB   "
                      f"range [{lo.min().item():.2f}, {hi.max().item():.2f}], median channel top {hi.median().item():.2f}")
        if not args.top:
            return
        alone = []
        for name in names:
            out = run({name: "tensor"})
            alone.append((10 * torch.log10((reference ** 2).sum() / ((reference - out) ** 2).sum()).item(), name))
        alone.sort()
        print(f"each tensor alone per tensor, the {args.top} costliest (logit SQNR dB):")
        for sqnr, name in alone[:args.top]:
            lo, hi = fake.ranges[name]
            print(f"  {name:36s} {sqnr:6.2f}   range [{lo.min().item():.2f}, {hi.max().item():.2f}]")


if __name__ == "__main__":
    main()
