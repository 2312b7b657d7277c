"""The range of a tensor that only a table reads (HardSwish, SiLU) is chosen for the table's error.

A tiny model built with onnx.helper: a 1x1 conv whose outputs lie mostly far below zero, where
hard-swish is exactly 0 and SiLU nearly so, with the part that matters in a few units around
zero; the table; a fully connected layer to 10 logits. Ranged for the conv output itself (the
mean-squared error of x), the int8 grid has to span the far negative tail and its step is coarse
where the table varies; ranged for the error of f(x), the tail is clipped at no cost (hard-swish) or
almost none (SiLU) and the step is several times finer. Bias correction must then aim at the
clipped mean, or it would shift every value to bring the discarded tail back. The logits' SQNR
against ONNX Runtime's float model measures both: below 20 dB without them, above 30 with them."""
import json

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import sieve_blob as sb  # noqa: E402
from conftest import report, run_cli  # noqa: E402

SIZE, CHANNELS, CLASSES = 8, 16, 10
MEAN, STD = [0.5, 0.5, 0.5], [0.25, 0.25, 0.25]


def model(table):
    """Conv 1x1 (3 -> 16) -> table -> Flatten -> Gemm (1024 -> 10), float weights from a fixed seed."""
    rng = np.random.default_rng(5)
    # The inputs are in about [-2, 2]. A quarter of the channels (small weights, bias near 0) give
    # outputs in about [-3, 3], where the table varies; the rest (weights of +-3, bias around -40)
    # give outputs in about [-60, -20], where it is flat.
    w = rng.normal(0, 3, (CHANNELS, 3, 1, 1)).astype(np.float32)
    b = rng.uniform(-45, -35, CHANNELS).astype(np.float32)
    w[::4] /= 6
    b[::4] = rng.uniform(-0.5, 0.5, CHANNELS // 4)
    fc = rng.normal(0, 1, (CLASSES, CHANNELS * SIZE * SIZE)).astype(np.float32) / 8
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["pre"], kernel_shape=[1, 1])]
    if table == "hardswish":
        nodes.append(helper.make_node("HardSwish", ["pre"], ["act"]))
    else:   # SiLU as exporters write it
        nodes += [helper.make_node("Sigmoid", ["pre"], ["sig"]), helper.make_node("Mul", ["pre", "sig"], ["act"])]
    nodes += [helper.make_node("Flatten", ["act"], ["flat"], axis=1),
              helper.make_node("Gemm", ["flat", "fc", "fcb"], ["logits"], transB=1)]
    graph = helper.make_graph(
        nodes, "table-ranges",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, SIZE, SIZE])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, CLASSES])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b"), numpy_helper.from_array(fc, "fc"),
         numpy_helper.from_array(np.zeros(CLASSES, np.float32), "fcb")])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    for key, value in (("sieve.input_mean", MEAN), ("sieve.input_std", STD)):
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, json.dumps(value)
    onnx.checker.check_model(proto)
    return proto


def images(n, seed):
    return np.random.default_rng(seed).integers(0, 256, (n, SIZE, SIZE, 3), dtype=np.uint8)


def float_logits(path, pixels):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = ((pixels.astype(np.float32) / 255 - np.array(MEAN, np.float32)) / np.array(STD, np.float32)).transpose(0, 3, 1, 2)
    return np.concatenate([session.run(None, {"x": np.ascontiguousarray(x[i:i + 1])})[0] for i in range(len(x))])


@pytest.mark.parametrize("table", ["hardswish", "silu"])
def test_tensor_read_by_a_table_is_ranged_for_the_table(table, tmp_path):
    path = tmp_path / f"{table}.onnx"
    onnx.save(model(table), str(path))
    calib, test = images(64, 1), images(100, 2)
    np.save(tmp_path / "calib.npy", calib)
    np.save(tmp_path / "test.npy", test)
    np.save(tmp_path / "labels.npy", np.zeros(len(test), np.uint8))
    blob_path = tmp_path / f"{table}.sieve"
    run_cli("quantize", path, "--calib", tmp_path / "calib.npy", "-o", blob_path)
    blob = sb.load(str(blob_path))
    assert sb.LUT in {op.kind for op in blob.ops} and sb.MUL not in {op.kind for op in blob.ops}
    exact = tmp_path / "exact.npy"
    run_cli("eval", blob_path, "--images", tmp_path / "test.npy", "--labels", tmp_path / "labels.npy", "--dump-exact-logits", exact)
    quantised = np.load(exact)[:, 0]
    reference = float_logits(path, test)
    sqnr = 10 * np.log10(np.sum(reference ** 2) / np.sum((reference - quantised) ** 2))
    agreement = float((reference.argmax(1) == quantised.argmax(1)).mean())
    report(f"table ranges, {table}: logit SQNR {sqnr:.1f} dB, int8/float top-1 {100 * agreement:.0f} % on {len(test)} images")
    assert sqnr >= 30, f"logit SQNR {sqnr:.1f} dB"
