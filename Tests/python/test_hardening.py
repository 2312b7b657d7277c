"""Hardening, round two (ISSUE-14): sieve-run against a hostile or careless operator. A full or
closed stdout, a blob rewritten or truncated while it runs, crops whose sums overflow 32 bits, a
closed stdin, a stop signal while waiting for a FIFO's writer, and the messages of the size limits.
Each runs on the host's `sieve run` and `sieve-run`; the board binaries (aarch64 and armv7 under
qemu) get the number cases in test_firmware.py."""
import json
import os
import re
import signal
import subprocess
import time

import numpy as np
import pytest

import fmnist
from conftest import SIEVE_BIN, TEST1000_IMAGES

SIEVE_RUN_BIN = os.environ.get("SIEVE_RUN_BIN", os.path.join(os.path.dirname(SIEVE_BIN), "sieve-run"))
BINARIES = {"sieve run": [SIEVE_BIN, "run"], "sieve-run": [SIEVE_RUN_BIN]}
GRAY28 = ["--format", "gray8", "--size", "28x28"]


@pytest.fixture(scope="module")
def frames():
    """The first 20 test images as 28x28 GRAY8 frames."""
    return [image.tobytes() for image in fmnist.read_idx(TEST1000_IMAGES)[:20]]


def summary_read(stderr):
    m = re.search(r"frames read (\d+), classified (\d+)", stderr)
    assert m, stderr
    return int(m.group(1)), int(m.group(2))


def one_line_error(proc, message):
    err = proc.stderr.decode() if isinstance(proc.stderr, bytes) else proc.stderr
    assert proc.returncode == 1, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], err


# ---- 4. Output errors -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("binary", list(BINARIES))
def test_full_stdout_is_an_error_with_the_summary(quantized_blob, frames, binary):
    with open("/dev/full", "wb") as full:
        proc = subprocess.run(BINARIES[binary] + [quantized_blob, *GRAY28], input=b"".join(frames[:5]), stdout=full,
                              stderr=subprocess.PIPE, timeout=60)
    err = proc.stderr.decode()
    assert proc.returncode == 1, err
    assert "error: cannot write the answers to stdout: No space left on device" in err
    assert summary_read(err)[0] >= 1  # the summary, on stderr


@pytest.mark.parametrize("binary", list(BINARIES))
def test_closed_stdout_is_an_error(quantized_blob, frames, binary):
    command = " ".join(f"'{word}'" for word in BINARIES[binary] + [quantized_blob, *GRAY28]) + " >&-"
    proc = subprocess.run(["bash", "-c", command], input=b"".join(frames[:3]), capture_output=True, timeout=60)
    one_line_error(proc, "stdout is closed")


# ---- 5, 6. The blob rewritten or truncated while sieve-run runs ---------------------------------------------

@pytest.mark.parametrize("damage", ["overwritten", "truncated"])
def test_blob_changed_while_running(quantized_blob, frames, tmp_path, damage):
    """The blob is read into private memory at load: bytes written over it in place (control
    bytes, newlines, quotes) or cutting it short change no answer, no label, and raise no SIGBUS."""
    blob = tmp_path / "model.sieve"
    blob.write_bytes(open(quantized_blob, "rb").read())
    sieve = subprocess.Popen([SIEVE_RUN_BIN, str(blob), *GRAY28], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
    before = []
    for frame in frames[:5]:
        sieve.stdin.write(frame)
        sieve.stdin.flush()
        before.append(sieve.stdout.readline())
    size = blob.stat().st_size
    with open(blob, "r+b") as f:
        if damage == "overwritten":
            f.write(bytes([10, 0, 34, 92, 1, 13]) * (size // 6))
        else:
            f.truncate(100)
    out, err = sieve.communicate(b"".join(frames[:5]), timeout=60)
    assert sieve.returncode == 0, err.decode()
    after = out.decode().splitlines()
    assert len(after) == 5, out
    rows = [json.loads(line) for line in before] + [json.loads(line) for line in after]
    for a, b in zip(rows[:5], rows[5:]):
        assert (a["class"], a["label"]) == (b["class"], b["label"])
    assert all(re.fullmatch(r"[A-Za-z/ -]+", row["label"]) for row in rows), rows


# ---- 7. Crop arithmetic -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("binary", list(BINARIES))
@pytest.mark.parametrize("crop", ["2147483647,0,1,1", "0,2147483647,1,1", "1,1,2147483647,1", "1,1,1,2147483647"])
def test_crop_sums_beyond_32_bits(quantized_blob, binary, crop):
    proc = subprocess.run(BINARIES[binary] + [quantized_blob, *GRAY28, "--crop", crop], input=b"", capture_output=True,
                          timeout=30)
    one_line_error(proc, "does not fit in the 28x28 frame")


# ---- 11. Closed stdin ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("binary", list(BINARIES))
@pytest.mark.parametrize("latest", [False, True], ids=["every-frame", "latest"])
def test_closed_stdin_is_an_empty_stream(quantized_blob, binary, latest):
    command = " ".join(f"'{word}'" for word in BINARIES[binary] + [quantized_blob, *GRAY28]) + (" --latest" if latest else "")
    proc = subprocess.run(["bash", "-c", command + " <&-"], capture_output=True, timeout=20)
    err = proc.stderr.decode()
    assert proc.returncode == 0, err
    assert proc.stdout == b"" and summary_read(err) == (0, 0)


# ---- 12. A stop signal while waiting for a FIFO's writer --------------------------------------------------------

@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.parametrize("latest", [False, True], ids=["every-frame", "latest"])
def test_signal_while_waiting_for_a_fifo_writer(quantized_blob, tmp_path, sig, latest):
    fifo = tmp_path / "frames"
    os.mkfifo(fifo)
    sieve = subprocess.Popen([SIEVE_RUN_BIN, quantized_blob, *GRAY28, "--input", str(fifo)] + (["--latest"] if latest else []),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(0.5)  # blocked in open(), no writer yet
    sieve.send_signal(sig)
    out, err = sieve.communicate(timeout=10)
    assert sieve.returncode == 0, err.decode()
    assert out == b"" and summary_read(err.decode()) == (0, 0) and "error" not in err.decode()


# ---- 13. Messages ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("binary", list(BINARIES))
def test_messages_name_the_real_reason(quantized_blob, binary):
    cases = [
        ([quantized_blob, "--format", "gray8", "--size", "100000x100000"], "is 2 GB or more"),
        ([quantized_blob, "--format", "gray8", "--size", "65536x32768"], "is 2 GB or more"),  # exactly 2^31 bytes
        (["/dev/zero", *GRAY28], "cannot open /dev/zero: not a regular file"),
        (["/", *GRAY28], "Is a directory"),
    ]
    for args, message in cases:
        proc = subprocess.run(BINARIES[binary] + args, input=b"", capture_output=True, timeout=30)
        one_line_error(proc, message)


# ---- The host tools: outputs that cannot clobber, hostile ONNX files, gzip bombs (items 1, 2, 9, 10, 13) -------

import struct  # noqa: E402

from conftest import CALIB, MODEL, TEST1000_LABELS  # noqa: E402

HOSTILE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "hostile-onnx")


def sieve(*args, timeout=600, **kwargs):
    return subprocess.run([SIEVE_BIN, *map(str, args)], capture_output=True, text=True, timeout=timeout, **kwargs)


def leftovers(directory, keep):
    return sorted(set(os.listdir(directory)) - set(keep))


def test_quantize_refuses_outputs_that_are_not_regular_files_or_inputs(tmp_path):
    """Item 1: -o naming a device (through a symlink), a FIFO, a directory, the model or the
    calibration file is refused at once, and none of them changes."""
    model, calib = tmp_path / "m.onnx", tmp_path / "calib.gz"
    model.write_bytes(open(MODEL, "rb").read())
    calib.write_bytes(open(CALIB, "rb").read())
    device = tmp_path / "device"
    os.symlink("/dev/null", device)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    (tmp_path / "dir").mkdir()
    before = {p: open(p, "rb").read() for p in (model, calib)}
    for out, message in [(device, "is not a regular file"), (fifo, "is not a regular file"), (tmp_path / "dir", "is not a regular file"),
                         (model, "it is the input"), (calib, "it is the input")]:
        proc = sieve("quantize", model, "--calib", calib, "-o", out, timeout=60)
        one_line_error(proc, message)
    assert os.readlink(device) == "/dev/null" and os.path.isdir(tmp_path / "dir")
    assert os.stat(fifo).st_mode & 0o170000 == 0o010000
    assert {p: open(p, "rb").read() for p in (model, calib)} == before
    assert leftovers(tmp_path, ["m.onnx", "calib.gz", "device", "fifo", "dir"]) == []


def test_quantize_unwritable_float_logits_path_leaves_nothing(tmp_path):
    """--dump-float-logits naming a directory that does not exist fails at once, naming it, and
    leaves neither the blob nor its temporary file behind."""
    out = tmp_path / "m.sieve"
    proc = sieve("quantize", MODEL, "--calib", CALIB, "-o", out, "--dump-float-logits", tmp_path / "no" / "l.npy", timeout=60)
    one_line_error(proc, f"cannot write {tmp_path / 'no' / 'l.npy'}: no directory")
    assert leftovers(tmp_path, []) == []


def test_quantize_temporary_file_follows_no_symlink(tmp_path):
    """Item 2: a symlink planted at the old predictable temporary name (OUT.tmpPID; exec keeps the
    shell's PID) is neither written through nor removed; the blob arrives by rename."""
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    out = tmp_path / "out.sieve"
    command = f"ln -s '{victim}' '{out}.tmp'$$; exec '{SIEVE_BIN}' quantize '{MODEL}' --calib '{CALIB}' --calib-count 50 -o '{out}'"
    proc = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert victim.read_bytes() == b"precious"
    assert open(out, "rb").read(8) == b"SIEVEBLB" and oct(os.stat(out).st_mode & 0o777) == oct(0o666 & ~current_umask())
    # A failing run (a hostile model) truncates nothing either.
    command = f"ln -sf '{victim}' '{out}.tmp'$$; exec '{SIEVE_BIN}' quantize '{HOSTILE}/reshape-2p62.onnx' --calib '{CALIB}' -o '{out}'"
    proc = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and victim.read_bytes() == b"precious"


def current_umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_quantize_killed_leaves_no_temporary_file(tmp_path, sig):
    """Item 2: SIGINT or SIGTERM during calibration removes the temporary file; an existing blob stays."""
    out = tmp_path / "out.sieve"
    out.write_bytes(b"old blob")
    proc = subprocess.Popen([SIEVE_BIN, "quantize", MODEL, "--calib", CALIB, "-o", str(out)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while len(os.listdir(tmp_path)) < 2 and time.time() < deadline:
        time.sleep(0.05)
    assert len(os.listdir(tmp_path)) == 2, "no temporary file appeared"
    time.sleep(0.5)
    proc.send_signal(sig)
    proc.communicate(timeout=60)
    assert proc.returncode == -sig
    assert os.listdir(tmp_path) == ["out.sieve"] and out.read_bytes() == b"old blob"


HOSTILE_FILES = sorted(f for f in os.listdir(HOSTILE) if f.endswith(".onnx"))


@pytest.mark.parametrize("name", HOSTILE_FILES)
def test_hostile_onnx_is_one_line_error(tmp_path, name):
    """Item 9 and the corpus of Tests/hostile-onnx: each file gets one line, exit 1, no crash, no
    temporary file left behind."""
    out = tmp_path / "out.sieve"
    # --norm none: the corpus has no normalisation metadata, and its hostility lies elsewhere.
    proc = sieve("quantize", os.path.join(HOSTILE, name), "--calib", CALIB, "--norm", "none", "-o", out, timeout=300)
    one_line_error(proc, "")
    assert "internal error" not in proc.stderr
    if name == "tensors-5004.onnx":
        assert "5004 tensors" in proc.stderr and "at most 4096" in proc.stderr
    assert os.listdir(tmp_path) == []


def gzip_bomb(header_and_data, zeros):
    """A gzip file: `header_and_data` (a stored block), then `zeros` zero bytes (1 + 258 k) as one
    fixed-Huffman block of (length 258, distance 1) copies, made without compressing anything."""
    out = bytearray(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03")
    acc = n = 0

    def put(value, bits):
        nonlocal acc, n
        acc |= value << n
        n += bits
        while n >= 8:
            out.append(acc & 255)
            acc >>= 8
            n -= 8

    def huffman(code, bits):
        put(int(format(code, f"0{bits}b")[::-1], 2), bits)

    assert len(header_and_data) < 65536
    put(0, 3)  # stored block
    put(0, (8 - n) % 8)
    out.extend(struct.pack("<HH", len(header_and_data), 0xFFFF ^ len(header_and_data)) + header_and_data)
    put(1 << 1, 3)  # BFINAL 0, BTYPE 01 (fixed Huffman)
    huffman(0b00110000, 8)  # literal 0
    copies = (zeros - 1) // 258

    def copy():
        huffman(0b11000101, 8)  # length 258
        huffman(0, 5)  # distance 1
    for _ in range(8):
        copy()
    start = len(out)
    for _ in range(8):
        copy()
    period = bytes(out[start:])
    assert len(period) == 13  # 8 copies are 104 bits: the bytes repeat
    blocks = (copies - 16) // 8
    out.extend(period * blocks)
    for _ in range(copies - 16 - 8 * blocks):
        copy()
    huffman(0, 7)  # end of block
    put(1, 3)  # BFINAL 1, stored, empty
    put(0, (8 - n) % 8)
    out.extend(struct.pack("<HH", 0, 0xFFFF))
    total = len(header_and_data) + 1 + 258 * copies
    # The CRC is left 0: a reader that stops where the header says never reaches the trailer.
    out.extend(struct.pack("<II", 0, total & 0xFFFFFFFF))
    return bytes(out)


def test_gzip_bomb_decompresses_only_what_the_header_declares(quantized_blob, tmp_path):
    """Item 10: an IDX header for 20 images followed by 3 GB of zeros (a 13 MB file) is read as its 20
    images; a header declaring more than 1 GiB is refused before anything large is allocated."""
    images = fmnist.read_idx(TEST1000_IMAGES)[:20]
    header = struct.pack(">BBBBIII", 0, 0, 8, 3, 20, 28, 28) + images.tobytes()
    bomb = tmp_path / "bomb.gz"
    bomb.write_bytes(gzip_bomb(header, 3 * 10**9))
    assert os.path.getsize(bomb) < 20 * 10**6
    proc = subprocess.run(["bash", "-c", f"ulimit -v 2000000; exec '{SIEVE_BIN}' eval '{quantized_blob}' --images '{bomb}' "
                                         f"--labels '{TEST1000_LABELS}' --json"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1])["images"] == 20
    declared = tmp_path / "declared.gz"
    declared.write_bytes(gzip_bomb(struct.pack(">BBBBIII", 0, 0, 8, 3, 60000, 280, 280), 10**6))
    proc = sieve("eval", quantized_blob, "--images", declared, "--labels", TEST1000_LABELS, timeout=60)
    one_line_error(proc, "more than 1 GiB")
    assert "images " in proc.stderr and "calibration" not in proc.stderr


def test_tool_messages(quantized_blob, tmp_path):
    """Item 13: the tools' messages name the real problem, in one line."""
    labels = tmp_path / "labels.idx"
    labels.write_bytes(struct.pack(">BBBBI", 0, 0, 8, 1, 5) + bytes([1, 2, 10, 3, 4]))
    cases = [
        (["eval", quantized_blob, "--images", "/dev/zero", "--labels", TEST1000_LABELS], "/dev/zero: not a regular file"),
        (["eval", quantized_blob, "--images", TEST1000_LABELS, "--labels", TEST1000_LABELS], "images "),
        (["eval", quantized_blob, "--images", TEST1000_IMAGES, "--labels", labels, "--limit", "5"],
         "label 10 of image 2 is not a class of the model (0...9)"),
        (["eval", quantized_blob, "--images", TEST1000_IMAGES, "--labels", TEST1000_LABELS, "--limit", "5",
          "--dump-logits", tmp_path / "missing" / "x.npy"], "no directory"),
        (["eval", quantized_blob, "--images", TEST1000_IMAGES, "--labels", TEST1000_LABELS, "--limit", "5",
          "--dump-exits", "/proc/version"], "cannot write /proc/version"),
        (["eval", quantized_blob, "--images", TEST1000_IMAGES, "--labels", TEST1000_LABELS, "--limit", "5",
          "--dump-exits", TEST1000_LABELS], "it is the input"),
        (["tune", quantized_blob, "--images", TEST1000_IMAGES, "--labels", TEST1000_LABELS, "--indices", "all",
          "-o", quantized_blob], "it is the input"),
    ]
    for args, message in cases:
        proc = sieve(*args, timeout=120)
        one_line_error(proc, message)
        if message == "images ":
            assert "calibration" not in proc.stderr
    # The outputs that work arrive whole, and nothing else is left in their directory.
    proc = sieve("eval", quantized_blob, "--images", TEST1000_IMAGES, "--labels", TEST1000_LABELS, "--limit", "5",
                 "--dump-logits", tmp_path / "l.npy", "--dump-exits", tmp_path / "e.csv", timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert leftovers(tmp_path, ["labels.idx", "l.npy", "e.csv"]) == []
    assert np.load(tmp_path / "l.npy").shape[0] == 5 and len(open(tmp_path / "e.csv").read().splitlines()) == 6
