#!/usr/bin/env python3
"""Writes the hostile ONNX corpus (ISSUE-14) next to this script: models whose numbers overflow,
whose attributes are extreme, and whose graphs are too large. `sieve quantize` must answer each
with a one-line error and exit 1, leaving no temporary file (Tests/python/test_hardening.py).
The files are committed; rerun this script only to change the corpus."""
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))


def declared(name, data_type, dims):
    """A tensor that only declares its dims (make_tensor refuses a count that does not match)."""
    t = TensorProto()
    t.name, t.data_type = name, data_type
    t.dims.extend(dims)
    return t


def model(nodes, initializers, inputs=None, outputs=("y",), input_shape=(1, 1, 28, 28)):
    graph = helper.make_graph(
        nodes, "hostile",
        inputs or [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(input_shape))],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs],
        initializer=initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def conv_weights(name="w", c=1):
    return numpy_helper.from_array(np.ones((c, 1, 1, 1), np.float32), name)


def save(name, m):
    onnx.save(m, os.path.join(HERE, name + ".onnx"))


# Item 9: an initializer declaring dims [2^28] x 4 and holding no data.
huge = declared("w", TensorProto.FLOAT, [1 << 28] * 4)
save("initializer-dims-2p28x4", model([helper.make_node("Conv", ["x", "w"], ["y"])], [huge]))

# Item 9: a Reshape target [-1, 2^62, 4].
shape = numpy_helper.from_array(np.array([-1, 1 << 62, 4], np.int64), "shape")
save("reshape-2p62", model([helper.make_node("Conv", ["x", "w"], ["c"]), helper.make_node("Reshape", ["c", "shape"], ["y"])],
                           [conv_weights(), shape]))

# Item 9: an int64 shape tensor declaring dims [2^40, 2^40] (no data).
big_shape = declared("shape", TensorProto.INT64, [1 << 40, 1 << 40])
save("shape-dims-2p40x2p40", model([helper.make_node("Conv", ["x", "w"], ["c"]), helper.make_node("Reshape", ["c", "shape"], ["y"])],
                                   [conv_weights(), big_shape]))

# Extreme input dims: channels 2^62, a side of 2^31, a negative dim.
for name, dims in [("input-channels-2p62", [1, 1 << 62, 28, 28]), ("input-side-2p31", [1, 1, 1 << 31, 28]),
                   ("input-dim-negative", [1, 1, -28, 28])]:
    save(name, model([helper.make_node("Conv", ["x", "w"], ["y"])], [conv_weights()], input_shape=dims))

# Extreme attributes: pads, strides, kernel shape, group.
for name, attrs in [("pads-2p31", {"pads": [(1 << 31) - 1] * 4}), ("pads-negative", {"pads": [-(1 << 30)] * 4}),
                    ("strides-2p31", {"strides": [(1 << 31) - 1, 1]}), ("strides-zero", {"strides": [0, 0]}),
                    ("group-2p31", {"group": (1 << 31) - 1}), ("pads-2p62", {"pads": [1 << 62] * 4})]:
    save(name, model([helper.make_node("Conv", ["x", "w"], ["y"], **attrs)], [conv_weights()]))
for name, attrs in [("maxpool-kernel-2p31", {"kernel_shape": [(1 << 31) - 1] * 2}),
                    ("maxpool-strides-2p62", {"kernel_shape": [2, 2], "strides": [1 << 62] * 2})]:
    save(name, model([helper.make_node("Conv", ["x", "w"], ["c"]), helper.make_node("MaxPool", ["c"], ["y"], **attrs)],
                     [conv_weights()]))


def conv_chain(count):
    """`count` chained convolutions on a 28x28 image (as the calibration images), 1x1 ones and a
    last 28x28 one giving 10 class logits: a valid classifier but for its size."""
    nodes = [helper.make_node("Conv", ["x" if i == 0 else f"t{i}", "w" if i + 1 < count else "w10"],
                              [f"t{i + 1}" if i + 1 < count else "y"]) for i in range(count)]
    last = numpy_helper.from_array(np.full((10, 1, 28, 28), 0.01, np.float32), "w10")
    return model(nodes, [conv_weights(), last])


# More than 4096 tensors: 5003 chained 1x1 convolutions (5004 tensors with the input); and a
# 100,000-node graph.
save("tensors-5004", conv_chain(5003))
save("nodes-100000", conv_chain(100_000))


# Channel shuffles and splits: a 5-D Reshape whose group dims multiply past 2^63, Split sizes that
# sum past 2^63, a Slice from INT64_MIN.
def int64s(name, values):
    return numpy_helper.from_array(np.array(values, np.int64), name)


two = numpy_helper.from_array(np.ones((2, 1, 1, 1), np.float32), "w")
save("shuffle-groups-2p40x2p40", model(
    [helper.make_node("Conv", ["x", "w"], ["c"]), helper.make_node("Reshape", ["c", "g"], ["y"])],
    [two, int64s("g", [1, 1 << 40, 1 << 40, 28, 28])]))
save("split-sizes-2p62", model(
    [helper.make_node("Conv", ["x", "w"], ["c"]), helper.make_node("Split", ["c", "s"], ["y", "z"], axis=1)],
    [two, int64s("s", [1 << 62, 1 << 62])], outputs=("y", "z")))
save("slice-int64-min", model(
    [helper.make_node("Conv", ["x", "w"], ["c"]), helper.make_node("Slice", ["c", "lo", "hi", "ax"], ["y"])],
    [two, int64s("lo", [-(1 << 63)]), int64s("hi", [-(1 << 63)]), int64s("ax", [1])]))

# Found by Tools/fuzz-onnx.py, and their kin in the constant folder (shape arithmetic the exporters
# write): a Reshape of constants without its shape input, integer arithmetic with an empty operand
# (the Shape of a scalar), -2^63 / -1, a Slice of a constant stepping by 2^63 - 1, int32 shape values
# fewer than their dims declare, and a Gather of constants without its indices.
def folded(name, nodes, initializers):
    """Constant arithmetic feeding a Reshape of the conv output, as a traced shape computation does."""
    save(name, model([helper.make_node("Conv", ["x", "w"], ["c"]), *nodes, helper.make_node("Reshape", ["c", "shape"], ["y"])],
                     [conv_weights(), *initializers]))


folded("fold-reshape-one-input", [helper.make_node("Reshape", ["k"], ["shape"])], [int64s("k", [1, -1])])
folded("fold-mul-empty-operand", [helper.make_node("Shape", ["s"], ["e"]), helper.make_node("Mul", ["e", "k"], ["shape"])],
       [int64s("s", 3), int64s("k", [1])])
folded("fold-div-int64-min-by-minus-one", [helper.make_node("Div", ["a", "b"], ["shape"])],
       [int64s("a", [-(1 << 63), 1]), int64s("b", [-1, 1])])
folded("fold-slice-step-2p63", [helper.make_node("Slice", ["k", "lo", "hi", "ax", "st"], ["shape"])],
       [int64s("k", [1, -1]), int64s("lo", [1]), int64s("hi", [2]), int64s("ax", [0]), int64s("st", [(1 << 63) - 1])])
short = declared("shape", TensorProto.INT32, [4])
short.int32_data.extend([1, -1])
save("int32-shape-values-short", model([helper.make_node("Conv", ["x", "w"], ["c"]), helper.make_node("Reshape", ["c", "shape"], ["y"])],
                                       [conv_weights(), short]))
folded("fold-gather-one-input", [helper.make_node("Gather", ["k"], ["shape"])], [int64s("k", [1, -1])])
