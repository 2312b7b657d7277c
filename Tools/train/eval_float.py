#!/usr/bin/env python3
"""Float accuracy of a Sieve ONNX model on Fashion-MNIST with onnxruntime.

    python3 Tools/train/eval_float.py models/vgg-s.onnx [--images IDX --labels IDX] [--limit N] [--json]

Normalisation comes from the model's metadata (`sieve.input_mean`, `sieve.input_std`,
`sieve.pixel_scale`), the logits from `sieve.final_output`: x = (p * pixel_scale - mean[c]) / std[c].
Defaults to the full 10k test set in /usr/share/datasets/fashion-mnist (fmnist.py).
"""
import argparse
import json
import os
import sys
import time
from fractions import Fraction

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fmnist  # noqa: E402


def parse_number(text):
    """'1/255', '0.00392', '[0.00392]' -> float."""
    text = text.strip()
    if text.startswith("["):
        values = json.loads(text)
        if len(values) != 1:
            raise ValueError(f"expected one number, got {text}")
        return float(values[0])
    return float(Fraction(text)) if "/" in text else float(text)


def metadata(model_path):
    import onnx
    m = onnx.load(model_path, load_external_data=False)
    return {p.key: p.value for p in m.metadata_props}


def final_output(model_path, meta):
    """The logits output's name: sieve.final_output, or the model's one output when it has no heads
    (as `sieve quantize` reads it: docs/MODEL.md)."""
    if meta.get("sieve.final_output"):
        return meta["sieve.final_output"]
    import onnx
    outputs = [o.name for o in onnx.load(model_path, load_external_data=False).graph.output]
    if len(outputs) != 1:
        raise ValueError(f"{model_path}: {len(outputs)} outputs and no sieve.final_output to say which is the logits")
    return outputs[0]


def normalisation(meta):
    """(mean [C], std [C], pixel_scale) as float64 from the model's metadata (pixel_scale 1/255 when
    absent, as `sieve quantize` takes it: docs/MODEL.md)."""
    for key in ("sieve.input_mean", "sieve.input_std"):
        if key not in meta:
            raise ValueError(f"model metadata lacks {key}")
    mean = np.atleast_1d(np.asarray(json.loads(meta["sieve.input_mean"]), dtype=np.float64))
    std = np.atleast_1d(np.asarray(json.loads(meta["sieve.input_std"]), dtype=np.float64))
    if mean.shape != std.shape:
        raise ValueError("sieve.input_mean and sieve.input_std differ in length")
    return mean, std, parse_number(meta.get("sieve.pixel_scale", "1/255"))


def preprocess(images, meta):
    """uint8 [N,H,W] or [N,H,W,C] -> float32 NCHW."""
    mean, std, pixel_scale = normalisation(meta)
    x = np.asarray(images)
    if x.ndim == 3:
        x = x[..., None]
    if x.shape[-1] != len(mean):
        raise ValueError(f"images have {x.shape[-1]} channels, the model's normalisation {len(mean)}")
    x = (x.astype(np.float64) * pixel_scale - mean) / std
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2), dtype=np.float32)


class FloatModel:
    """An onnxruntime session on the model, run in batches when the graph allows it."""

    def __init__(self, model_path, threads=2, batch=500):
        import onnx
        import onnxruntime as ort
        self.meta = metadata(model_path)
        self.output = final_output(model_path, self.meta)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.log_severity_level = 3
        providers = ["CPUExecutionProvider"]
        self.single = ort.InferenceSession(model_path, opts, providers=providers)
        self.input = self.single.get_inputs()[0].name
        self.batch = batch
        self.batched = None
        # The export fixes the batch at 1; try the same graph with a symbolic batch and keep it
        # only if it gives the same logits as one image at a time.
        m = onnx.load(model_path)
        for v in list(m.graph.input) + list(m.graph.output):
            dims = v.type.tensor_type.shape.dim
            if len(dims):
                dims[0].dim_param = "N"
        del m.graph.value_info[:]
        try:
            self.batched = ort.InferenceSession(m.SerializeToString(), opts, providers=providers)
        except Exception:
            self.batched = None

    def logits_one_by_one(self, x, outputs):
        runs = [self.single.run(outputs, {self.input: x[i:i + 1]}) for i in range(len(x))]
        return [np.concatenate([r[k] for r in runs]) for k in range(len(outputs))]

    def outputs(self, x, names):
        """The named outputs for every image, each [N, ...]."""
        if self.batched is not None:
            try:
                probe = x[:8]
                got = self.batched.run(names, {self.input: probe})
                want = self.logits_one_by_one(probe, names)
                if all(g.shape == w.shape and np.allclose(g, w, atol=1e-4) for g, w in zip(got, want)):
                    runs = [self.batched.run(names, {self.input: x[i:i + self.batch]}) for i in range(0, len(x), self.batch)]
                    return [np.concatenate([r[k] for r in runs]) for k in range(len(names))]
            except Exception:
                pass
            self.batched = None
        return self.logits_one_by_one(x, names)

    def logits(self, x):
        return self.outputs(x, [self.output])[0]


def float_logits(model_path, images):
    model = FloatModel(model_path)
    return model.logits(preprocess(images, model.meta))


def accuracy(model_path, images, labels):
    """Percent of images whose float logits' argmax equals the label."""
    pred = float_logits(model_path, images).argmax(axis=1)
    return 100.0 * float((pred == np.asarray(labels)).sum()) / len(labels)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model")
    p.add_argument("--images", default=os.path.join(fmnist.DATA_DIR, "t10k-images-idx3-ubyte.gz"))
    p.add_argument("--labels", default=os.path.join(fmnist.DATA_DIR, "t10k-labels-idx1-ubyte.gz"))
    p.add_argument("--limit", type=int)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    images, labels = fmnist.read_idx(args.images), fmnist.read_idx(args.labels)
    if len(images) != len(labels):
        p.error(f"{len(images)} images but {len(labels)} labels")
    if args.limit is not None:
        images, labels = images[:args.limit], labels[:args.limit]
    t0 = time.time()
    pred = float_logits(args.model, images).argmax(axis=1)
    correct = int((pred == labels).sum())
    result = {"images": int(len(images)), "correct": correct, "accuracy": 100.0 * correct / len(images),
              "seconds": round(time.time() - t0, 3)}
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{result['images']} images, float accuracy {result['accuracy']:.2f}% ({correct}/{result['images']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
