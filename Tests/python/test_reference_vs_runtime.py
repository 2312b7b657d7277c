"""The Swift runtime (the `sieve` CLI) against the independent numpy reference and the float model."""
import json
import time

import numpy as np
import pytest

import eval_float
import fmnist
import sieve_blob as sb
from conftest import (MODEL, TEST1000_IMAGES, TEST1000_LABELS, TEST10K_IMAGES, TEST10K_LABELS, report,
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
    dump = tmp_path / "logits.npy"
    proc, cli_seconds = run_cli("eval", quantized_blob, "--images", TEST1000_IMAGES, "--labels", TEST1000_LABELS,
                                "--json", "--dump-logits", dump)
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
    out = sb.run(blob, images)
    ref_seconds = time.time() - t1
    reference = np.concatenate([out["final"][:, None, :], out["heads"]], axis=1)

    diff = np.abs(runtime.astype(np.int16) - reference.astype(np.int16))
    max_diff = int(diff.max())
    differing = int((diff > 0).sum())
    agree = 100.0 * float((runtime[:, 0].argmax(1) == reference[:, 0].argmax(1)).mean())
    head_agree = [100.0 * float((runtime[:, 1 + i].argmax(1) == reference[:, 1 + i].argmax(1)).mean())
                  for i in range(heads)]
    ref_acc = 100.0 * float((out["final"].argmax(1) == labels).mean())
    runtime_acc = 100.0 * float((runtime[:, 0].argmax(1) == labels).mean())
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
    assert agree >= 99.9, f"final argmax agreement {agree:.2f}% < 99.9%"


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
