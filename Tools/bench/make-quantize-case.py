"""MobileNetV2-224 (torchvision, 10 classes, seeded, BatchNorm statistics re-estimated on the
images, classifier scaled so logits vary) and N calibration images 224x224x3 uint8 (Fashion-MNIST
drawn in colour on coloured noise): the quantiser's timing case for issue 16.
usage: python3 Tools/bench/make-quantize-case.py OUT_DIR [N=200]; then
  sieve quantize OUT_DIR/mobilenet_v2_224.onnx --calib OUT_DIR/calib224.npy --calib-count N -o OUT_DIR/m.sieve"""
import os, sys, types, gzip, json
sys.modules['torchvision._meta_registrations'] = types.ModuleType('torchvision._meta_registrations')
import numpy as np, torch, torchvision, onnx
out = sys.argv[1]
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
calib = colour(int(sys.argv[2]) if len(sys.argv) > 2 else 200)
np.save(os.path.join(out, 'calib224.npy'), calib)
m = torchvision.models.mobilenet_v2(num_classes=10)
mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
x = (torch.tensor(calib[:48], dtype=torch.float32).permute(0, 3, 1, 2) / 255 - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]
for mod in m.modules():
    if isinstance(mod, torch.nn.BatchNorm2d): mod.reset_running_stats(); mod.momentum = None
m.train()
with torch.no_grad():
    for i in range(0, 48, 16): m(x[i:i+16])
m.eval()
with torch.no_grad(): m.classifier[1].weight.mul_(40)
with torch.no_grad(): print('logit std across images', m(x[:16]).std(0).mean().item())
path = os.path.join(out, 'mobilenet_v2_224.onnx')
torch.onnx.export(m, (x[:1],), path, dynamo=False, opset_version=17)
mo = onnx.load(path)
for k, v in (('sieve.input_mean', json.dumps(mean)), ('sieve.input_std', json.dumps(std))):
    e = mo.metadata_props.add(); e.key = k; e.value = v
onnx.save(mo, path)
