"""The committed camera model (models/camera-mobilenet.onnx: MobileNetV2-style, three exit heads,
96x96 RGB, exported by torch's default exporter) end to end: quantised on camera pictures, exits
tuned, then run from 640x480 I420 frames through sieve-run. Each frame's answer, exit and MACs
must equal `sieve eval`'s on the pixels sieve-run's preprocessing gives for that frame
(Tools/frames.py: the frame holds the picture enlarged 4x in BT.601 YUV, so the area shrink gives
back one RGB value per picture pixel, computed by docs/FRAMES.md's formulas)."""
import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import camera
from conftest import REPO, SIEVE_BIN, require_file, run_cli

sys.path.insert(0, os.path.join(REPO, "Tools"))
from frames import HEIGHT, WIDTH, picture_frame, picture_layout, seen_picture  # noqa: E402

SIEVE_RUN_BIN = os.environ.get("SIEVE_RUN_BIN", os.path.join(os.path.dirname(SIEVE_BIN), "sieve-run"))
MODEL = os.path.join(REPO, "models", "camera-mobilenet.onnx")
SIZE = 96


@pytest.fixture(scope="module")
def tuned_blob(tmp_path_factory):
    """The model quantised on 32 training pictures and tuned on 300 validation ones, with a loose
    budget (--max-drop 2, no safety margin) so that the heads fire on some frames."""
    require_file(MODEL, "camera model")
    work = tmp_path_factory.mktemp("camera-model")
    calib, _ = camera.load("train", 32, SIZE, seed=13)
    val, val_labels = camera.load("val", 300, SIZE, seed=camera.VAL_SEED)
    np.save(work / "calib.npy", calib)
    np.save(work / "val.npy", val)
    np.save(work / "val-labels.npy", val_labels)
    run_cli("quantize", MODEL, "--calib", work / "calib.npy", "-o", work / "camera.sieve")
    run_cli("tune", work / "camera.sieve", "--images", work / "val.npy", "--labels", work / "val-labels.npy",
            "--indices", "all", "--max-drop", "2", "--safety", "0", "-o", work / "camera-tuned.sieve")
    return work / "camera-tuned.sieve"


def test_i420_frames_through_sieve_run_match_eval_on_the_same_pixels(tuned_blob, tmp_path):
    pictures, labels = camera.load("test", 100, SIZE, seed=camera.TEST_SEED)
    seen = seen_picture(pictures)
    # The round trip through YUV moves pixels by a level or two: the frames are not the pictures.
    assert np.abs(seen.astype(int) - pictures).max() > 0
    np.save(tmp_path / "seen.npy", seen)
    np.save(tmp_path / "labels.npy", labels)
    run_cli("eval", tuned_blob, "--images", tmp_path / "seen.npy", "--labels", tmp_path / "labels.npy",
            "--dump-exits", tmp_path / "exits.csv")
    with open(tmp_path / "exits.csv") as f:
        rows = [r for r in csv.reader(f) if r and r[0].isdigit()]
    assert len(rows) == len(pictures)

    scale, x0, y0 = picture_layout(SIZE)
    side = SIZE * scale
    frames = b"".join(picture_frame(p) for p in pictures)
    assert len(frames) == len(pictures) * WIDTH * HEIGHT * 3 // 2
    if not os.access(SIEVE_RUN_BIN, os.X_OK):
        pytest.fail(f"sieve-run not found at {SIEVE_RUN_BIN} (swift build -c release --product sieve-run)")
    proc = subprocess.run([SIEVE_RUN_BIN, str(tuned_blob), "--format", "i420", "--size", f"{WIDTH}x{HEIGHT}",
                           "--crop", f"{x0},{y0},{side},{side}"], input=frames, capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()
    lines = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    assert [line["frame"] for line in lines] == list(range(len(pictures)))

    for line, (index, label, answer, head, _survivors, macs) in zip(lines, rows):
        expected_exit = "final" if int(head) < 0 else int(head)
        assert (line["class"], line["exit"], line["macs"]) == (int(answer), expected_exit, int(macs)), \
            f"frame {index}: sieve-run {line}, sieve eval answer {answer} exit {head} MACs {macs}"
    # The heads were tuned to fire: the frames exercise the exit path, not only the full network.
    assert any(line["exit"] != "final" for line in lines), lines
    # A trained model on the right colours: far above chance (10 %) on these pictures.
    answers = np.array([line["class"] for line in lines])
    assert (answers == labels).mean() > 0.5, (answers, labels)
