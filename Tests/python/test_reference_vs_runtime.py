"""The Swift runtime (the `sieve` CLI) against the independent numpy reference and the float model."""
import json
import time

import numpy as np
import pytest

import eval_float
import fmnist
import sieve_blob as sb
from conftest import (CALIB, MODEL, TEST1000_IMAGES, TEST1000_LABELS, TEST10K_IMAGES, TEST10K_LABELS, report,
                      require_file, run_cli)


def cli_json(proc):
    """The JSON object the CLI printed (the last stdout line that parses as one)."""
    for line in reversed(proc.stdout.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                continue
    pytest.fail(f"no JSON object in the CLI's output:\n{proc.stdout}\n{proc.stderr}")


def describe_differences(runtime, reference, blob):
    """Human-readable summary of where two (N, 1 + heads, K) int8 logit arrays differ."""
    diff = np.abs(runtime.astype(np.int16) - reference.astype(np.int16))
    lines = []
    names = ["final"] + [f"head {i}" for i in range(blob.head_count)]
    for j, name in enumerate(names):
        d = diff[:, j, :]
        if d.any():
            first = int(np.argwhere(d.any(axis=1))[0, 0])
            lines.append(f"{name}: max {int(d.max())} LSB, {int((d > 0).sum())} logits in "
                         f"{int(d.any(axis=1).sum())} images differ; first image {first}: "
                         f"runtime {runtime[first, j].tolist()} reference {reference[first, j].tolist()}")
    return "\n".join(lines) or "identical"


def test_reference_matches_runtime(quantized_blob, tmp_path):
    t0 = time.time()
    require_file(TEST1000_IMAGES, "demo test images")
    require_file(TEST1000_LABELS, "demo test labels")
    dump, exact_dump = tmp_path / "logits.npy", tmp_path / "exact.npy"
    proc, cli_seconds = run_cli("eval", quantized_blob, "--images", TEST1000_IMAGES, "--labels", TEST1000_LABELS,
                                "--json", "--dump-logits", dump, "--dump-exact-logits", exact_dump)
    cli = cli_json(proc)
    runtime = np.load(dump)

    blob = sb.load(quantized_blob)
    images = fmnist.read_idx(TEST1000_IMAGES)
    labels = fmnist.read_idx(TEST1000_LABELS)
    n, k, heads = len(images), blob.class_count, blob.head_count
    assert runtime.dtype == np.int8, f"--dump-logits wrote {runtime.dtype}, expected int8"
    assert runtime.shape == (n, 1 + heads, k), f"--dump-logits shape {runtime.shape}, expected {(n, 1 + heads, k)}"
    assert cli["images"] == n

    t1 = time.time()
    out = sb.run(blob, images, keep_all=True)
    ref_seconds = time.time() - t1
    reference = np.concatenate([out["final"][:, None, :], out["heads"]], axis=1)

    diff = np.abs(runtime.astype(np.int16) - reference.astype(np.int16))
    max_diff = int(diff.max())
    differing = int((diff > 0).sum())
    agree = 100.0 * float((runtime[:, 0].argmax(1) == reference[:, 0].argmax(1)).mean())
    head_agree = [100.0 * float((runtime[:, 1 + i].argmax(1) == reference[:, 1 + i].argmax(1)).mean())
                  for i in range(heads)]
    ref_acc = 100.0 * float((out["final"].argmax(1) == labels).mean())
    # Answers come from the exact logits (docs/FORMAT.md, "Exact logits"): bit-exact to the reference's.
    exact = np.load(exact_dump)
    reference_exact = sb.exact_logits(blob, out["tensors"])
    exact_differ = int((exact != reference_exact).sum())
    runtime_acc = 100.0 * float((exact[:, 0].argmax(1) == labels).mean())
    report(f"reference vs runtime, {n} images, {1 + heads} outputs x {k} logits: max |diff| {max_diff} LSB, "
           f"{differing} of {diff.size} logits differ; final argmax agreement {agree:.2f}%, "
           f"heads {', '.join(f'{a:.1f}' for a in head_agree)}%")
    report(f"  accuracy on {n}: CLI --json {cli['accuracy']:.2f}%, runtime logits {runtime_acc:.2f}%, "
           f"reference {ref_acc:.2f}%; CLI eval {cli_seconds:.1f}s (mean_us {cli.get('mean_us')}), "
           f"reference {ref_seconds:.1f}s, test {time.time() - t0:.1f}s")
    if differing:
        report("  " + describe_differences(runtime, reference, blob).replace("\n", "\n  "))
    assert abs(cli["accuracy"] - runtime_acc) < 1e-6, "the CLI's accuracy disagrees with its own dumped logits"
    assert max_diff <= 1, describe_differences(runtime, reference, blob)
    assert exact_differ == 0, f"{exact_differ} exact logits differ from the reference's"

    assert agree >= 99.9, f"final argmax agreement {agree:.2f}% < 99.9%"


def every_op_kind_graph(builder_cls, seed=7, classes=10, input_read_last=False):
    """A 28x28x1 network (random weights) that uses every op kind FORMAT.md defines, with the paths the
    VGG blob does not take: grouped and depthwise (multiplier 2 and 1) convolutions, strides, asymmetric
    padding, ADD, AVERAGE_POOL with padding, MAX_POOL with padding, and two heads.

    The graph input's last reader is the first op, so a memory plan may reuse its bytes for later
    tensors. With input_read_last, the final logits are ADD(classifier, FC(input)), which keeps the
    input live to the end: that variant checks the kernels even if a runtime clobbers a dead input."""
    rng = np.random.default_rng(seed)
    b = builder_cls(classes)

    def tensor(h, w, c, like=None):
        if like is not None:
            return b.tensor(h, w, c, b.tensors[like][3], b.tensors[like][4])
        return b.tensor(h, w, c, float(rng.uniform(0.01, 0.1)), int(rng.integers(-30, 30)))

    x = b.tensor(28, 28, 1, 0.0157, -3)
    c1 = tensor(14, 14, 8)
    b.weighted(rng, sb.CONV, x, c1, (8, 3, 3, 1), relu=True, kernel=(3, 3), stride=(2, 2), pad=(1, 1, 0, 0), groups=1)
    g0, l0 = tensor(1, 1, 8, like=c1), tensor(1, 1, classes)
    first = len(b.ops)
    b.op(sb.GLOBAL_AVERAGE_POOL, c1, g0)
    b.weighted(rng, sb.FULLY_CONNECTED, g0, l0, (classes, 8))
    b.head(sb.HEAD_EXCLUSION, c1, l0, first, 2, 0.5)
    d1 = tensor(14, 14, 16)
    b.weighted(rng, sb.DEPTHWISE_CONV, c1, d1, (3, 3, 16), kernel=(3, 3), stride=(1, 1), pad=(1, 1, 1, 1), groups=8)
    p1 = tensor(14, 14, 16)
    b.weighted(rng, sb.CONV, d1, p1, (16, 1, 1, 4), kernel=(1, 1), stride=(1, 1), groups=4)
    a1 = tensor(14, 14, 16)
    b.add_op(d1, p1, a1, act=(-120, 125))
    ap = tensor(7, 7, 16, like=a1)
    b.op(sb.AVERAGE_POOL, a1, ap, kernel=(3, 3), stride=(2, 2), pad=(1, 1, 1, 1))
    mp = tensor(3, 3, 16, like=ap)
    b.op(sb.MAX_POOL, ap, mp, kernel=(3, 3), stride=(2, 2), pad=(1, 1, 0, 0))
    d2 = tensor(3, 3, 16)
    b.weighted(rng, sb.DEPTHWISE_CONV, mp, d2, (2, 2, 16), relu=True, kernel=(2, 2), stride=(1, 1), pad=(0, 0, 1, 1),
               groups=16)
    g1, l1 = tensor(1, 1, 16, like=d2), tensor(1, 1, classes)
    first = len(b.ops)
    b.op(sb.GLOBAL_AVERAGE_POOL, d2, g1)
    b.weighted(rng, sb.FULLY_CONNECTED, g1, l1, (classes, 16))
    b.head(sb.HEAD_CONFIDENCE, d2, l1, first, 2, 0.9)
    f1 = tensor(1, 1, 32)
    b.weighted(rng, sb.FULLY_CONNECTED, d2, f1, (32, 144), relu=True)
    out = tensor(1, 1, classes)
    b.weighted(rng, sb.FULLY_CONNECTED, f1, out, (classes, 32))
    if input_read_last:
        side = tensor(1, 1, classes)
        b.weighted(rng, sb.FULLY_CONNECTED, x, side, (classes, 28 * 28))
        total = tensor(1, 1, classes)
        b.add_op(out, side, total, act=(-128, 127))
        out = total
    return b.build(x, out, labels=fmnist.LABELS, mean=(fmnist.MEAN,), std=(fmnist.STD,), pixel_scale=1 / 255)


@pytest.mark.parametrize("input_read_last", [False, True], ids=["input-dies-early", "input-read-last"])
def test_runtime_matches_reference_on_every_op_kind(blob_builder, tmp_path, input_read_last):
    """A blob written here from FORMAT.md (not by the quantiser) through `sieve eval`: every logit exact."""
    t0 = time.time()
    path = tmp_path / "every-op.sieve"
    path.write_bytes(every_op_kind_graph(blob_builder, input_read_last=input_read_last))
    blob = sb.load(str(path))
    assert sorted({op.kind for op in blob.ops}) == list(range(1, 8))
    n = 300
    dump = tmp_path / "logits.npy"
    run_cli("eval", path, "--images", TEST1000_IMAGES, "--labels", TEST1000_LABELS, "--limit", n, "--json",
            "--dump-logits", dump)
    runtime = np.load(dump)
    assert runtime.dtype == np.int8 and runtime.shape == (n, 1 + blob.head_count, blob.class_count), runtime.shape
    out = sb.run(blob, fmnist.read_idx(TEST1000_IMAGES)[:n])
    reference = np.concatenate([out["final"][:, None, :], out["heads"]], axis=1)
    for j in range(reference.shape[1]):
        assert len(np.unique(reference[:, j])) > 10, "degenerate test network"
    diff = np.abs(runtime.astype(np.int16) - reference.astype(np.int16))
    report(f"every-op-kind blob, {'input read last' if input_read_last else 'input dies at op 0'} "
           f"({blob.op_count} ops, kinds 1-7), {n} images: max |diff| {int(diff.max())} LSB, "
           f"{int((diff > 0).sum())} of {diff.size} logits differ; test {time.time() - t0:.1f}s")
    assert not diff.any(), describe_differences(runtime, reference, blob)


def test_input_is_not_clobbered_between_runs(blob_builder, tmp_path):
    """Two ops: GLOBAL_AVERAGE_POOL of the graph input, then an identity FULLY_CONNECTED (weights 1, bias
    (0, 5), M = 2^30, s = 30) giving (g, g + 5). The input's last reader is op 0, so a memory plan may
    put later tensors over the input's bytes; that is only safe if the input is written again before
    every inference. FORMAT.md: the input tensor is the table lookup of this image's pixels."""
    b = blob_builder(2)
    x = b.tensor(28, 28, 1, 0.0157, -3)
    g = b.tensor(1, 1, 1, 0.0157, -3)
    b.op(sb.GLOBAL_AVERAGE_POOL, x, g)
    out = b.tensor(1, 1, 2, 1.0, 0)
    b.op(sb.FULLY_CONNECTED, g, out, weights=np.ones((2, 1), np.int8), bias=[0, 5], multipliers=[1 << 30] * 2,
         shifts=[30, 30], act=(-128, 127))
    path = tmp_path / "gap-of-input.sieve"
    path.write_bytes(b.build(x, out, mean=(fmnist.MEAN,), std=(fmnist.STD,), pixel_scale=1 / 255))
    blob = sb.load(str(path))
    n = 200
    dump = tmp_path / "logits.npy"
    # Labels of the model's two classes (eval refuses labels at or above the class count).
    labels = tmp_path / "labels.idx"
    labels.write_bytes(bytes([0, 0, 8, 1]) + n.to_bytes(4, "big") + bytes(n))
    run_cli("eval", path, "--images", TEST1000_IMAGES, "--labels", labels, "--limit", n,
            "--dump-logits", dump)
    runtime = np.load(dump)[:, 0, :].astype(np.int64)
    images = fmnist.read_idx(TEST1000_IMAGES)[:n]
    reference = sb.run(blob, images)["final"].astype(np.int64)
    wrong = int((runtime != reference).any(axis=1).sum())
    # Diagnosis: the same network run a second time on an input whose first two bytes hold the first
    # run's output (the output tensor placed over the dead input, the input not re-quantised).
    q = sb.quantize_images(blob, images).reshape(n, -1).astype(np.int64)
    clobbered = q.copy()
    clobbered[:, 0:2] = reference
    second = sb._mean_trunc(clobbered.sum(axis=1), np.int64(784))
    second_run = np.stack([second, second + 5], axis=1)
    explained = bool(wrong and (runtime == second_run).all())
    report(f"GAP of the graph input -> FC, {n} images: {wrong} images differ from FORMAT.md"
           + ("; every runtime output equals a second run over an input whose bytes 0..1 hold the first "
              "run's output (input not re-quantised, output tensor placed over the dead input)" if explained else ""))
    assert wrong == 0, (f"{wrong} of {n} images differ from FORMAT.md"
                        + ("; the runtime's outputs are exactly those of a second inference over an input whose "
                           "first two bytes were overwritten by the first inference's output tensor: the input "
                           "tensor is not rewritten before each run while the memory plan reuses its bytes"
                           if explained else ""))


@pytest.mark.slow
def test_int8_accuracy_close_to_float(quantized_blob):
    t0 = time.time()
    require_file(TEST10K_IMAGES, "Fashion-MNIST test images")
    require_file(TEST10K_LABELS, "Fashion-MNIST test labels")
    images = fmnist.read_idx(TEST10K_IMAGES)
    labels = fmnist.read_idx(TEST10K_LABELS)
    assert len(images) == len(labels) == 10000

    float_acc = eval_float.accuracy(MODEL, images, labels)
    float_seconds = time.time() - t0
    proc, cli_seconds = run_cli("eval", quantized_blob, "--images", TEST10K_IMAGES, "--labels", TEST10K_LABELS, "--json")
    cli = cli_json(proc)
    assert cli["images"] == 10000
    int8_acc = float(cli["accuracy"])
    report(f"10k test set: float {float_acc:.2f}% ({float_seconds:.1f}s), int8 runtime {int8_acc:.2f}% "
           f"({cli_seconds:.1f}s, mean_us {cli.get('mean_us')}), difference {int8_acc - float_acc:+.2f} points; "
           f"test {time.time() - t0:.1f}s")
    assert abs(float_acc - int8_acc) <= 0.3, f"float {float_acc:.2f}% vs int8 {int8_acc:.2f}%"


@pytest.mark.parametrize("arch", ["resnet-s", "mobilenet-s"])
def test_other_networks_end_to_end(arch, tmp_path):
    """ResNet-S (residual ADD, stride-2 convs) and MobileNet-S (depthwise separable, ReLU6): the
    committed float models quantise, match the numpy reference to the bit on every logit, stay near
    float accuracy, and run with exits tuned on the fly."""
    import os
    model = os.path.join(os.path.dirname(MODEL), f"{arch}.onnx")
    require_file(model, f"trained {arch} model")
    blob, dump = tmp_path / f"{arch}.sieve", tmp_path / "logits.npy"
    run_cli("quantize", model, "--calib", CALIB, "-o", blob)
    n = 200
    cli = cli_json(run_cli("eval", blob, "--images", TEST1000_IMAGES, "--labels", TEST1000_LABELS, "--limit", n,
                           "--json", "--dump-logits", dump)[0])
    runtime = np.load(dump)
    parsed = sb.load(str(blob))
    out = sb.run(parsed, fmnist.read_idx(TEST1000_IMAGES)[:n])
    reference = np.concatenate([out["final"][:, None, :], out["heads"]], axis=1)
    assert np.array_equal(runtime, reference), describe_differences(runtime, reference, parsed)
    labels = fmnist.read_idx(TEST1000_LABELS)
    float_acc = eval_float.accuracy(model, fmnist.read_idx(TEST1000_IMAGES), labels)
    full = cli_json(run_cli("eval", blob, "--images", TEST1000_IMAGES, "--labels", TEST1000_LABELS, "--json")[0])
    report(f"{arch}: int8 {full['accuracy']:.2f} % vs float {float_acc:.2f} % on 1000 test images; "
           f"{parsed.head_count} heads, 0 LSB against the reference on {n}")
    assert abs(full["accuracy"] - float_acc) <= 1.0
    tuned = tmp_path / "tuned.sieve"
    run_cli("tune", blob, "--images", TEST1000_IMAGES, "--labels", TEST1000_LABELS, "--indices", "all",
            "--max-drop", "1.0", "-o", tuned)
    exits = cli_json(run_cli("eval", tuned, "--images", TEST1000_IMAGES, "--labels", TEST1000_LABELS, "--json")[0])
    assert exits["mean_macs"] < exits["full_macs"] and sum(exits["exits"][:-1]) > 0


def test_pooled_logits_are_exact_means(blob_builder, tmp_path):
    """SqueezeNet's ending, from FORMAT.md: a conv to the classes (ReLU), then a GLOBAL_AVERAGE_POOL
    writing the logits. The exact logits are the pool input's channel means before int8 rounding
    (FORMAT.md, "Exact logits"): bit for bit the reference's, and finer than the int8 output."""
    rng = np.random.default_rng(17)
    classes = 10
    b = blob_builder(classes)
    x = b.tensor(28, 28, 1, 0.0157, -3)
    c1 = b.tensor(14, 14, 8, 0.05, -20)
    b.weighted(rng, sb.CONV, x, c1, (8, 3, 3, 1), relu=True, kernel=(3, 3), stride=(2, 2), pad=(1, 1, 0, 0), groups=1)
    c2 = b.tensor(7, 7, classes, 0.08, -128)
    b.weighted(rng, sb.CONV, c1, c2, (classes, 3, 3, 8), relu=True, kernel=(3, 3), stride=(2, 2), pad=(1, 1, 0, 0),
               groups=1)
    out = b.tensor(1, 1, classes, 0.08, -128)
    b.op(sb.GLOBAL_AVERAGE_POOL, c2, out)
    path = tmp_path / "pooled-logits.sieve"
    path.write_bytes(b.build(x, out, labels=fmnist.LABELS, mean=(fmnist.MEAN,), std=(fmnist.STD,), pixel_scale=1 / 255))
    blob = sb.load(str(path))
    n = 200
    dump, exact_dump = tmp_path / "logits.npy", tmp_path / "exact.npy"
    run_cli("eval", path, "--images", TEST1000_IMAGES, "--labels", TEST1000_LABELS, "--limit", n,
            "--dump-logits", dump, "--dump-exact-logits", exact_dump)
    result = sb.run(blob, fmnist.read_idx(TEST1000_IMAGES)[:n], keep_all=True)
    assert (np.load(dump)[:, 0] == result["final"]).all(), "int8 logits differ from the reference's"
    exact, reference = np.load(exact_dump), sb.exact_logits(blob, result["tensors"])
    assert len(np.unique(result["final"])) > 10, "degenerate test network"
    differ = int((exact != reference).sum())
    dequantised = (result["final"].astype(np.float64) + 128) * np.float64(np.float32(0.08))
    finer = int((exact[:, 0] != dequantised.astype(np.float32)).sum())
    report(f"conv -> GLOBAL_AVERAGE_POOL logits, {n} images: {differ} exact logits differ from the reference's; "
           f"{finer} of {exact[:, 0].size} differ from the dequantised int8 logits")
    assert differ == 0, f"{differ} exact logits differ from the reference's"
    assert finer > exact[:, 0].size // 2, "the exact means should not be the int8 logits dequantised"
