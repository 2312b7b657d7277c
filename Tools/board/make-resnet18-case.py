"""ResNet-18 (torchvision, 10 classes, seeded, BatchNorm statistics re-estimated on the images) for
the board estimate (docs/ESTIMATE.md), on the calibration images Tools/bench/make-quantize-case.py
wrote. usage: python3 Tools/board/make-resnet18-case.py DIR   (DIR holds calib224.npy); then
  sieve quantize DIR/resnet18_224.onnx --calib DIR/calib224.npy --calib-count 32 -o DIR/resnet18.sieve"""
import os, sys, types, json
sys.modules['torchvision._meta_registrations'] = types.ModuleType('torchvision._meta_registrations')
import numpy as np, torch, torchvision, onnx
out = sys.argv[1]
calib = np.load(os.path.join(out, 'calib224.npy'))
torch.manual_seed(0)
m = torchvision.models.resnet18(num_classes=10)
mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
x = (torch.tensor(calib[:48], dtype=torch.float32).permute(0, 3, 1, 2) / 255 - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]
for mod in m.modules():
    if isinstance(mod, torch.nn.BatchNorm2d): mod.reset_running_stats(); mod.momentum = None
m.train()
with torch.no_grad():
    for i in range(0, 48, 16): m(x[i:i+16])
m.eval()
with torch.no_grad(): m.fc.weight.mul_(40)  # as the MobileNetV2 case: logits that vary
path = os.path.join(out, 'resnet18_224.onnx')
torch.onnx.export(m, (x[:1],), path, dynamo=False, opset_version=17)
mo = onnx.load(path)
for k, v in (('sieve.input_mean', json.dumps(mean)), ('sieve.input_std', json.dumps(std))):
    e = mo.metadata_props.add(); e.key = k; e.value = v
onnx.save(mo, path)
