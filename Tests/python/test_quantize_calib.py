"""sieve quantize --calib with a folder of JPEG/PNG images and with .npy files in their layouts:
the folder goes through sieve-run's preprocessing, so images already at the model's size calibrate
exactly as the same pixels in a .npy do."""
import gzip
import os
import subprocess

import numpy as np
from PIL import Image

from conftest import CALIB, MODEL, SIEVE_BIN, run_cli

COUNT = 12


def calib_images(n):
    with gzip.open(CALIB) as f:
        return np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)[:n]


def summary(stdout):
    """The SQNR table and the agreement, without the timing line and the output path."""
    return [line for line in stdout.splitlines() if not line.startswith(("time:", "wrote "))]


def test_png_folder_calibrates_like_the_same_pixels_in_npy(tmp_path):
    images = calib_images(COUNT)
    folder = tmp_path / "images"
    folder.mkdir()
    for i, image in enumerate(images):
        Image.fromarray(image, "L").save(folder / f"{i:03d}.png")
    (folder / "notes.txt").write_text("not an image: skipped")
    np.save(tmp_path / "images.npy", images)
    from_folder, _ = run_cli("quantize", MODEL, "--calib", folder, "-o", tmp_path / "a.sieve")
    from_npy, _ = run_cli("quantize", MODEL, "--calib", tmp_path / "images.npy", "-o", tmp_path / "b.sieve")
    assert f"on {COUNT} calibration images" in from_folder.stdout
    assert summary(from_folder.stdout) == summary(from_npy.stdout)
    # One line per phase on stderr, even when it is not a terminal.
    for phase in (f"calibrating {COUNT} images", "bias correction:", "measuring SQNR"):
        assert phase in from_folder.stderr, from_folder.stderr


def test_jpeg_folder_is_cropped_and_resized(tmp_path):
    images = calib_images(4)
    for i, image in enumerate(images):
        # 84x56 colour JPEGs: the centred 56x56 square holds the garment, resized to 28x28 luma.
        rgb = np.zeros((56, 84, 3), np.uint8)
        rgb[:, 14:70] = np.repeat(np.kron(image, np.ones((2, 2), np.uint8))[:, :, None], 3, axis=2)
        Image.fromarray(rgb, "RGB").save(tmp_path / f"{i}.jpg", quality=90)
    proc, _ = run_cli("quantize", MODEL, "--calib", tmp_path, "--calib-count", 3, "-o", tmp_path / "c.sieve")
    assert "on 3 calibration images" in proc.stdout


def test_one_hwc_image_in_npy_is_one_image(tmp_path):
    np.save(tmp_path / "one.npy", calib_images(1)[0])           # [28, 28]
    proc, _ = run_cli("quantize", MODEL, "--calib", tmp_path / "one.npy", "-o", tmp_path / "d.sieve")
    assert "on 1 calibration images" in proc.stdout


def run_fail(*args):
    proc = subprocess.run([SIEVE_BIN, *map(str, args)], capture_output=True, text=True, timeout=600)
    assert proc.returncode not in (0,) and proc.returncode < 128, proc
    return proc.stderr


def test_bad_calibration_input_names_the_problem(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    Image.fromarray(calib_images(1)[0], "L").save(folder / "a.png")
    (folder / "b.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    err = run_fail("quantize", MODEL, "--calib", folder, "-o", tmp_path / "e.sieve")
    assert "b.jpg" in err and err.startswith("error:"), err
    np.save(tmp_path / "wrong.npy", np.zeros((32, 32, 3), np.uint8))
    err = run_fail("quantize", MODEL, "--calib", tmp_path / "wrong.npy", "-o", tmp_path / "f.sieve")
    assert "(32, 32, 3)" in err and "28x28x1" in err, err
    empty = tmp_path / "empty"
    empty.mkdir()
    err = run_fail("quantize", MODEL, "--calib", empty, "-o", tmp_path / "g.sieve")
    assert "no .jpg" in err, err
    assert not os.path.exists(tmp_path / "e.sieve")


def wide_model(path, height, width):
    """A small grey model with a non-square [1, 1, height, width] input: conv, ReLU, pool, linear."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(5)
    inits = [numpy_helper.from_array(rng.normal(0, 0.5, (8, 1, 3, 3)).astype(np.float32), "w"),
             numpy_helper.from_array(rng.normal(0, 0.1, 8).astype(np.float32), "b"),
             numpy_helper.from_array(rng.normal(0, 0.5, (3, 8)).astype(np.float32), "fw"),
             numpy_helper.from_array(np.zeros(3, np.float32), "fb")]
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1], strides=[2, 2]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("GlobalAveragePool", ["r"], ["p"]),
             helper.make_node("Flatten", ["p"], ["f"]),
             helper.make_node("Gemm", ["f", "fw", "fb"], ["y"], transB=1)]
    graph = helper.make_graph(nodes, "wide", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, height, width])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)


def test_non_square_model_calibrates_on_the_whole_picture(tmp_path):
    """A 32x24 model and 64x48 photos (both 4:3): the default crop is the whole photo, not its centred
    square, so the folder calibrates exactly like the photos' 2x2 area averages in a .npy."""
    wide_model(tmp_path / "wide.onnx", 24, 32)
    rng = np.random.default_rng(9)
    photos = rng.integers(0, 256, (COUNT, 48, 64), dtype=np.uint8)
    photos[:, :, :16] //= 3     # a dark left edge: a square crop would drop it
    folder = tmp_path / "photos"
    folder.mkdir()
    for i, photo in enumerate(photos):
        Image.fromarray(photo, "L").save(folder / f"{i:03d}.png")
    # docs/FRAMES.md, "Resize": each output covers one 2x2 block with equal weights, rounded half up.
    blocks = photos.reshape(COUNT, 24, 2, 32, 2).astype(np.int32).sum(axis=(2, 4))
    np.save(tmp_path / "averaged.npy", ((blocks + 2) // 4).astype(np.uint8))
    from_folder, _ = run_cli("quantize", tmp_path / "wide.onnx", "--norm", "none", "--calib", folder, "-o", tmp_path / "a.sieve")
    from_npy, _ = run_cli("quantize", tmp_path / "wide.onnx", "--norm", "none", "--calib", tmp_path / "averaged.npy",
                          "-o", tmp_path / "b.sieve")
    assert f"on {COUNT} calibration images" in from_folder.stdout
    assert summary(from_folder.stdout) == summary(from_npy.stdout)
