"""Torchvision classifiers at 224x224 with 10 classes (seeded, BatchNorm statistics re-estimated on
the images, the last layer scaled so logits vary) and N calibration images 224x224x3 uint8
(Fashion-MNIST drawn in colour on coloured noise): the quantiser's timing case for issue 16, and
the board estimator's and the peer benchmark's camera-resolution networks.
usage: python3 Tools/bench/make-quantize-case.py OUT_DIR [N=200] [--models=mobilenet_v2,resnet18]
  (default mobilenet_v2); writes OUT_DIR/calib224.npy and OUT_DIR/<model>_224.onnx; then
  sieve quantize OUT_DIR/mobilenet_v2_224.onnx --calib OUT_DIR/calib224.npy --calib-count N -o OUT_DIR/m.sieve"""
import os, sys, types, gzip, json
sys.modules['torchvision._meta_registrations'] = types.ModuleType('torchvision._meta_registrations')
import numpy as np, torch, torchvision, onnx
args = [a for a in sys.argv[1:] if not a.startswith('--models')]
models = next((a.split('=', 1)[1] for a in sys.argv[1:] if a.startswith('--models=')), 'mobilenet_v2').split(',')
out = args[0]
os.makedirs(out, exist_ok=True)
torch.manual_seed(0); rng = np.random.default_rng(0)
with gzip.open('/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz') as f:
    raw = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
def colour(n):
    out = np.empty((n, 224, 224, 3), np.uint8)
    for i in range(n):
        g = torch.tensor(raw[i], dtype=torch.float32)[None, None]
        big = torch.nn.functional.interpolate(g, size=(160, 160), mode='bilinear', align_corners=False)[0, 0].numpy() / 255
        bg = rng.uniform(0, 255, 3); fg = rng.uniform(0, 255, 3)
        img = np.ones((224, 224, 3)) * bg
        y, x = rng.integers(0, 64, 2)
        img[y:y+160, x:x+160] = bg * (1 - big[..., None]) + fg * big[..., None]
        img += rng.normal(0, 6, img.shape)
        out[i] = np.clip(img, 0, 255).astype(np.uint8)
    return out
calib = colour(int(args[1]) if len(args) > 1 else 200)
np.save(os.path.join(out, 'calib224.npy'), calib)
mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
x = (torch.tensor(calib[:48], dtype=torch.float32).permute(0, 3, 1, 2) / 255 - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]
for name in models:
    torch.manual_seed(0)
    m = getattr(torchvision.models, name)(num_classes=10)
    for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm2d): mod.reset_running_stats(); mod.momentum = None
    m.train()
    with torch.no_grad():
        for i in range(0, 48, 16): m(x[i:i+16])
    m.eval()
    last = m.fc if name.startswith('resnet') else m.classifier[-1]
    with torch.no_grad(): last.weight.mul_(40)
    with torch.no_grad(): print(name, 'logit std across images', m(x[:16]).std(0).mean().item())
    path = os.path.join(out, f'{name}_224.onnx')
    torch.onnx.export(m, (x[:1],), path, dynamo=False, opset_version=17)
    mo = onnx.load(path)
    for k, v in (('sieve.input_mean', json.dumps(mean)), ('sieve.input_std', json.dumps(std))):
        e = mo.metadata_props.add(); e.key = k; e.value = v
    onnx.save(mo, path)
