#!/usr/bin/env python3
"""The logits-only ONNX graph as a Keras model (NHWC), then as float and full-integer int8 TFLite
models for LiteRT. Run by peers.py as a subprocess, so TensorFlow never shares the timing process:

    python3 Tools/bench/tflite_convert.py LOGITS.onnx --calib CALIB.npy --check CHECK.npy
        --expect EXPECT.npy --float-out F.tflite --int8-out Q.tflite [--info INFO.json]

CALIB.npy and CHECK.npy are normalised float32 NCHW images (the calibration images and the images
whose ONNX Runtime float logits are EXPECT.npy). The conversion:

  Conv (group 1)            Conv2D, weights OIHW -> HWIO; explicit ONNX pads become 'same' when they
                            equal TensorFlow's, else ZeroPadding2D then 'valid'
  Conv (group = channels)   DepthwiseConv2D (depth multiplier = out / in channels)
  BatchNormalization        folded into the Conv before it (scale and shift per output channel)
  Relu, Clip(0, 6), Clip    ReLU, ReLU(max_value=6); the converter fuses them into the op before
  Add                       Add
  MaxPool, AveragePool      MaxPooling2D / AveragePooling2D (pads as for Conv)
  GlobalAveragePool         GlobalAveragePooling2D(keepdims=True)
  ReduceMean over H, W      GlobalAveragePooling2D (keepdims as the node says): the dynamo exporter's
                            global pool
  Flatten, Reshape to 2-D   Flatten; it yields HWC order where ONNX flattens CHW, so the Gemm that
                            reads it gets its input columns permuted from CHW to HWC order
  Gemm                      Dense (alpha, beta and transB folded into the kernel and bias)
  Constant, Identity        values / pass-through

The Keras model's float logits must equal ONNX Runtime's within 1e-4 of their largest magnitude on
every check image, or the conversion fails. The int8 model is TFLite's full-integer recipe:
Optimize.DEFAULT, a representative dataset of every calibration image (batch 1, in order),
TFLITE_BUILTINS_INT8 only, int8 input and output (per-channel symmetric int8 weights for the convs,
per-tensor for the dense layers, asymmetric int8 activations).
"""
import argparse
import json
import os
import sys
import time

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


class ConvertError(Exception):
    pass


def same_pads(size, kernel, stride):
    """TensorFlow 'same' padding (before, after) for one spatial dimension."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def attrs(node):
    from onnx import helper
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


class Builder:
    """Walks the ONNX graph in order and calls Keras layers on NHWC tensors."""

    def __init__(self, model):
        import onnx
        from onnx import numpy_helper
        self.onnx = onnx
        self.model = model
        self.init = {t.name: numpy_helper.to_array(t).astype(np.float32) if numpy_helper.to_array(t).dtype.kind == "f"
                     else numpy_helper.to_array(t) for t in model.graph.initializer}
        self.consts = dict(self.init)
        self.tensors = {}      # ONNX name -> Keras tensor
        self.shapes = {}       # ONNX name -> NCHW / NC shape
        self.flat_perm = {}    # ONNX name of a flattened tensor -> ONNX index of each Keras position
        self.layers_used = []
        self.bn_folds = 0
        consumers = {}
        for n in model.graph.node:
            for i in n.input:
                consumers.setdefault(i, []).append(n)
        self.consumers = consumers

    def const(self, name):
        if name not in self.consts:
            raise ConvertError(f"'{name}' is not a constant")
        return self.consts[name]

    def producer_op(self, name):
        """The op type of the node that computes `name` ('Clip0' for a Clip from 0), or None."""
        for n in self.model.graph.node:
            if name in n.output:
                if n.op_type == "Clip":
                    lo = float(self.const(n.input[1])) if len(n.input) > 1 and n.input[1] else attrs(n).get("min", -np.inf)
                    return "Clip0" if lo >= 0 else "Clip"
                return n.op_type
        return None

    def pads_layer(self, keras, x, shape, kernel, stride, pads, zeros):
        """'same' or 'valid' for Keras. zeros: padded taps count as zeros (Conv, AveragePool with
        count_include_pad), so ZeroPadding2D can stand for pads that are not TensorFlow's 'same';
        else (MaxPool, AveragePool without) only 'same' can."""
        ph, pw = shape[2], shape[3]
        top, left, bottom, right = pads
        if (top, left, bottom, right) == (0, 0, 0, 0):
            return x, "valid"
        same = (top, bottom) == same_pads(ph, kernel[0], stride[0]) and (left, right) == same_pads(pw, kernel[1], stride[1])
        if zeros == "conv" and same:
            return x, "same"
        if zeros == "excluded":
            if not same:
                raise ConvertError(f"pool pads {pads} are not TensorFlow's 'same' padding")
            return x, "same"
        return keras.layers.ZeroPadding2D(((top, bottom), (left, right)))(x), "valid"

    def build(self):
        import keras
        g = self.model.graph
        if len(g.input) != 1:
            raise ConvertError(f"{len(g.input)} graph inputs; one expected")
        inp = g.input[0]
        dims = [d.dim_value for d in inp.type.tensor_type.shape.dim]
        if len(dims) != 4 or dims[0] not in (0, 1) or min(dims[1:]) < 1:
            raise ConvertError(f"input shape {dims}: NCHW with fixed C, H, W expected")
        n, c, h, w = 1, dims[1], dims[2], dims[3]
        x = keras.Input(shape=(h, w, c), batch_size=1, name="input")
        self.tensors[inp.name] = x
        self.shapes[inp.name] = (n, c, h, w)
        pending_bn = {}
        for node in g.node:
            op = node.op_type
            a = attrs(node)
            out = node.output[0]
            if op == "Constant":
                from onnx import numpy_helper
                if "value" not in a:
                    raise ConvertError("Constant without a tensor value")
                self.consts[out] = numpy_helper.to_array(a["value"])
                continue
            if op in ("Identity", "Dropout"):
                self.alias(out, node.input[0])
                continue
            src = node.input[0]
            if src not in self.tensors:
                raise ConvertError(f"{op} '{node.name}' reads '{src}', which is not computed")
            t, shape = self.tensors[src], self.shapes[src]
            if op == "Conv":
                y, yshape = self.conv(keras, node, a, t, shape, pending_bn)
            elif op == "BatchNormalization":
                if out not in pending_bn.values():
                    raise ConvertError(f"BatchNormalization '{node.name}' does not follow a Conv it alone reads")
                self.alias(out, src)   # already folded into the Conv's weights
                continue
            elif op == "Relu":
                y, yshape = keras.layers.ReLU()(t), shape
            elif op == "Clip":
                lo = float(self.const(node.input[1])) if len(node.input) > 1 and node.input[1] else a.get("min", -np.inf)
                hi = float(self.const(node.input[2])) if len(node.input) > 2 and node.input[2] else a.get("max", np.inf)
                if lo == 0.0 and np.isfinite(hi):
                    y = keras.layers.ReLU(max_value=hi)(t)
                elif lo == 0.0:
                    y = keras.layers.ReLU()(t)
                else:
                    y = keras.layers.Lambda(lambda v, lo=lo, hi=hi: keras.ops.clip(v, lo, hi))(t)
                yshape = shape
            elif op == "Add":
                other = node.input[1]
                if other not in self.tensors or self.shapes[other] != shape:
                    raise ConvertError(f"Add '{node.name}': only two computed tensors of one shape are supported")
                y, yshape = keras.layers.Add()([t, self.tensors[other]]), shape
            elif op in ("MaxPool", "AveragePool"):
                if a.get("ceil_mode", 0) or any(d != 1 for d in a.get("dilations", [1, 1])):
                    raise ConvertError(f"{op} '{node.name}': ceil_mode and dilations are not supported")
                k = list(a["kernel_shape"])
                s = list(a.get("strides", [1, 1]))
                pads = list(a.get("pads", [0, 0, 0, 0]))
                zeros = "included" if op == "AveragePool" and a.get("count_include_pad", 0) else "excluded"
                # A max pool of a ReLU's output (>= 0) may pad with zeros: they never win the max.
                if op == "MaxPool" and self.producer_op(src) in ("Relu", "Clip0"):
                    zeros = "included"
                t, padding = self.pads_layer(keras, t, shape, k, s, pads, zeros)
                layer = keras.layers.MaxPooling2D if op == "MaxPool" else keras.layers.AveragePooling2D
                y = layer(pool_size=k, strides=s, padding=padding)(t)
                yshape = (1, shape[1], *y.shape[1:3])
            elif op == "GlobalAveragePool":
                y, yshape = keras.layers.GlobalAveragePooling2D(keepdims=True)(t), (1, shape[1], 1, 1)
            elif op == "ReduceMean":
                axes = [int(v) for v in (self.const(node.input[1]) if len(node.input) > 1 and node.input[1] else a.get("axes", []))]
                if len(shape) != 4 or sorted(v % 4 for v in axes) != [2, 3] or a.get("noop_with_empty_axes", 0):
                    raise ConvertError(f"ReduceMean '{node.name}': only a mean over H and W of an NCHW tensor is supported")
                keep = bool(a.get("keepdims", 1))
                y = keras.layers.GlobalAveragePooling2D(keepdims=keep)(t)
                yshape = (1, shape[1], 1, 1) if keep else (1, shape[1])
            elif op in ("Flatten", "Reshape"):
                if op == "Flatten" and a.get("axis", 1) != 1:
                    raise ConvertError(f"Flatten axis {a.get('axis')}: only axis 1 is supported")
                target = [int(v) for v in self.const(node.input[1])] if op == "Reshape" else [1, -1]
                if len(target) != 2 or target[0] not in (0, 1) or target[1] not in (-1, int(np.prod(shape[1:]))):
                    raise ConvertError(f"Reshape '{node.name}' to {target}: only a flatten to [1, -1] is supported")
                if len(shape) == 4:
                    _, cc, hh, ww = shape
                    # Keras position (h, w, c) holds ONNX index c*H*W + h*W + w.
                    perm = np.arange(cc * hh * ww).reshape(cc, hh, ww).transpose(1, 2, 0).reshape(-1)
                    y, yshape = keras.layers.Flatten()(t), (1, cc * hh * ww)
                    self.flat_perm[out] = perm
                else:
                    y, yshape = t, shape
                    if src in self.flat_perm:
                        self.flat_perm[out] = self.flat_perm[src]
            elif op == "Gemm":
                y, yshape = self.gemm(keras, node, a, t, shape)
            else:
                raise ConvertError(f"ONNX op {op} ('{node.name}') is not supported by this converter")
            self.layers_used.append(op)
            self.tensors[out], self.shapes[out] = y, tuple(int(v) for v in yshape)
        outs = [o.name for o in g.output]
        if len(outs) != 1:
            raise ConvertError(f"{len(outs)} graph outputs; the logits-only graph has one")
        return keras.Model(x, self.tensors[outs[0]], name="logits_only")

    def alias(self, out, src):
        self.tensors[out] = self.tensors[src]
        self.shapes[out] = self.shapes[src]
        if src in self.flat_perm:
            self.flat_perm[out] = self.flat_perm[src]

    def conv(self, keras, node, a, t, shape, pending_bn):
        w = self.const(node.input[1]).astype(np.float32)
        b = self.const(node.input[2]).astype(np.float32) if len(node.input) > 2 and node.input[2] else np.zeros(w.shape[0], np.float32)
        group = a.get("group", 1)
        if any(d != 1 for d in a.get("dilations", [1, 1])):
            raise ConvertError(f"Conv '{node.name}': dilations are not supported")
        if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
            raise ConvertError(f"Conv '{node.name}': auto_pad is not supported")
        # A BatchNormalization read by nothing else follows: fold it into w and b.
        users = self.consumers.get(node.output[0], [])
        if len(users) == 1 and users[0].op_type == "BatchNormalization":
            bn = users[0]
            scale, shift, mean, var = (self.const(i).astype(np.float64) for i in bn.input[1:5])
            eps = attrs(bn).get("epsilon", 1e-5)
            f = scale / np.sqrt(var + eps)
            w = (w * f[:, None, None, None]).astype(np.float32)
            b = ((b - mean) * f + shift).astype(np.float32)
            pending_bn[node.name] = bn.output[0]
            self.bn_folds += 1
        cout, cin_g, kh, kw = w.shape
        cin = shape[1]
        k = list(a.get("kernel_shape", [kh, kw]))
        s = list(a.get("strides", [1, 1]))
        pads = list(a.get("pads", [0, 0, 0, 0]))
        t, padding = self.pads_layer(keras, t, shape, k, s, pads, "conv")
        if group == 1:
            layer = keras.layers.Conv2D(cout, (kh, kw), strides=s, padding=padding)
            y = layer(t)
            layer.set_weights([w.transpose(2, 3, 1, 0), b])
        elif group == cin and cin_g == 1 and cout % cin == 0:
            mult = cout // cin
            layer = keras.layers.DepthwiseConv2D((kh, kw), strides=s, padding=padding, depth_multiplier=mult)
            y = layer(t)
            # ONNX output channel c*mult + m reads input channel c: Keras kernel [kh, kw, cin, mult].
            layer.set_weights([w.reshape(cin, mult, kh, kw).transpose(2, 3, 0, 1), b])
        else:
            raise ConvertError(f"Conv '{node.name}': grouped convolution (group {group}) is not supported")
        return y, (1, cout, int(y.shape[1]), int(y.shape[2]))

    def gemm(self, keras, node, a, t, shape):
        if len(shape) != 2:
            raise ConvertError(f"Gemm '{node.name}' reads a {len(shape)}-d tensor")
        w = self.const(node.input[1]).astype(np.float64)
        if a.get("transA", 0):
            raise ConvertError(f"Gemm '{node.name}': transA is not supported")
        if a.get("transB", 0):
            w = w.T                                   # now [in, out]
        w = w * a.get("alpha", 1.0)
        units = w.shape[1]
        b = np.zeros(units)
        if len(node.input) > 2 and node.input[2]:
            b = np.broadcast_to(self.const(node.input[2]).astype(np.float64).reshape(-1), (units,)) * a.get("beta", 1.0)
        perm = self.flat_perm.get(node.input[0])
        if perm is not None:
            w = w[perm, :]                            # rows in the order Keras's Flatten yields
        layer = keras.layers.Dense(units)
        y = layer(t)
        layer.set_weights([w.astype(np.float32), b.astype(np.float32)])
        return y, (1, units)


def nhwc(x):
    return np.ascontiguousarray(np.asarray(x, dtype=np.float32).transpose(0, 2, 3, 1))


def convert(onnx_path, calib, check, expect, float_out, int8_out):
    import onnx
    import tensorflow as tf
    t0 = time.time()
    model = onnx.load(onnx_path)
    builder = Builder(model)
    keras_model = builder.build()
    got = np.concatenate([keras_model(nhwc(check[i:i + 64]), training=False).numpy() for i in range(0, len(check), 64)])
    got = got.reshape(len(check), -1)
    diff = float(np.abs(got - expect).max())
    tol = 1e-4 * max(1.0, float(np.abs(expect).max()))
    if diff > tol:
        raise ConvertError(f"Keras float logits differ from ONNX Runtime's by up to {diff:g} (tolerance {tol:g})")
    t1 = time.time()

    conv = tf.lite.TFLiteConverter.from_keras_model(keras_model)
    float_model = conv.convert()
    t2 = time.time()

    calib_nhwc = nhwc(calib)

    def representative():
        for i in range(len(calib_nhwc)):
            yield [calib_nhwc[i:i + 1]]

    conv = tf.lite.TFLiteConverter.from_keras_model(keras_model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    int8_model = conv.convert()
    t3 = time.time()
    for path, data in ((float_out, float_model), (int8_out, int8_model)):
        tmp = f"{path}.tmp{os.getpid()}"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    return {"tensorflow": tf.__version__, "keras": __import__("keras").__version__,
            "onnx_ops": builder.layers_used, "bn_folded": builder.bn_folds,
            "keras_check_images": len(check), "keras_max_abs_diff": diff, "keras_tolerance": tol,
            "calibration_images": len(calib), "float_bytes": len(float_model), "int8_bytes": len(int8_model),
            "seconds": {"keras": round(t1 - t0, 2), "float": round(t2 - t1, 2), "int8": round(t3 - t2, 2)},
            "int8_io": "int8 input and output"}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("onnx", help="the logits-only float ONNX graph")
    p.add_argument("--calib", required=True, help=".npy float32 NCHW calibration images, normalised")
    p.add_argument("--check", required=True, help=".npy float32 NCHW images to check the Keras model on")
    p.add_argument("--expect", required=True, help=".npy ONNX Runtime float logits of the check images")
    p.add_argument("--float-out", required=True)
    p.add_argument("--int8-out", required=True)
    p.add_argument("--info", help="write what was done as JSON here")
    args = p.parse_args(argv)
    # TensorFlow and Keras print to stdout while converting; keep stdout for the JSON alone.
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        info = convert(args.onnx, np.load(args.calib), np.load(args.check), np.load(args.expect),
                       args.float_out, args.int8_out)
    except ConvertError as e:
        print(f"tflite_convert: {e}", file=sys.stderr)
        return 2
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
    text = json.dumps(info, indent=1)
    if args.info:
        with open(args.info, "w") as f:
            f.write(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
