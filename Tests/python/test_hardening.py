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
