"""Camera pipes: real raw-video streams made by ffmpeg from Fashion-MNIST test images placed on
640x480 frames, in all six formats, through `sieve run` and the `sieve-run` binary; the latest-frame
mode against a slow consumer; partial frames, signals, a closed stdout, and the error cases."""
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import fmnist
from conftest import REPO, SIEVE_BIN, TEST1000_IMAGES, TEST1000_LABELS, report, run_cli

sys.path.insert(0, os.path.join(REPO, "Tools"))
from frames import CROP, HEIGHT as H, WIDTH as W, gray_frame  # noqa: E402

SIEVE_RUN_BIN = os.environ.get("SIEVE_RUN_BIN", os.path.join(os.path.dirname(SIEVE_BIN), "sieve-run"))
FFMPEG_FORMAT = {"gray8": "gray", "rgb24": "rgb24", "bgr24": "bgr24", "i420": "yuv420p", "nv12": "nv12", "yuyv": "yuyv422"}
BINARIES = {"sieve run": [SIEVE_BIN, "run"], "sieve-run": [SIEVE_RUN_BIN]}


def feed(pipe, frames):
    try:
        for frame in frames:
            pipe.write(frame)
    except BrokenPipeError:
        pass
    finally:
        try:
            pipe.close()
        except BrokenPipeError:
            pass


def summary_counts(stderr):
    m = re.search(r"frames read (\d+), classified (\d+), dropped (\d+), skipped (\d+)", stderr)
    assert m, stderr
    return dict(zip(["read", "classified", "dropped", "skipped"], map(int, m.groups())))


def frame_lines(stdout):
    return [json.loads(line) for line in stdout.splitlines()]


@pytest.fixture(scope="module")
def images():
    return fmnist.read_idx(TEST1000_IMAGES), fmnist.read_idx(TEST1000_LABELS)


@pytest.fixture(scope="module")
def eval_accuracy(quantized_blob):
    proc, _ = run_cli("eval", quantized_blob, "--images", TEST1000_IMAGES, "--labels", TEST1000_LABELS, "--json")
    return json.loads(proc.stdout.strip().splitlines()[-1])["accuracy"]


@pytest.mark.parametrize("binary", list(BINARIES))
@pytest.mark.parametrize("fmt", list(FFMPEG_FORMAT))
def test_ffmpeg_stream_matches_eval(quantized_blob, images, eval_accuracy, fmt, binary):
    pictures, labels = images
    ffmpeg = subprocess.Popen(["ffmpeg", "-v", "error", "-f", "rawvideo", "-pix_fmt", "gray", "-s", f"{W}x{H}", "-i", "-",
                               "-f", "rawvideo", "-pix_fmt", FFMPEG_FORMAT[fmt], "-"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    sieve = subprocess.Popen(BINARIES[binary] + [quantized_blob, "--format", fmt, "--size", f"{W}x{H}", "--crop", CROP],
                             stdin=ffmpeg.stdout, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ffmpeg.stdout.close()
    writer = threading.Thread(target=feed, args=(ffmpeg.stdin, (gray_frame(p) for p in pictures)))
    t0 = time.time()
    writer.start()
    out, err = sieve.communicate(timeout=600)
    writer.join()
    assert ffmpeg.wait() == 0
    assert sieve.returncode == 0, err
    lines = frame_lines(out)
    assert [l["frame"] for l in lines] == list(range(len(pictures))), "every frame gets exactly one line"
    assert summary_counts(err) == {"read": 1000, "classified": 1000, "dropped": 0, "skipped": 0}
    assert "no partial frame" in err
    first = lines[0]
    assert set(first) == {"frame", "class", "label", "exit", "survivors", "macs", "us"}
    assert first["label"] == fmnist.LABELS[first["class"]] and first["exit"] == "final" and first["macs"] > 0
    accuracy = 100.0 * np.mean([l["class"] == y for l, y in zip(lines, labels)])
    report(f"{binary} {fmt}: 1000 ffmpeg frames, accuracy {accuracy:.2f} % (sieve eval {eval_accuracy:.2f} %), "
           f"{time.time() - t0:.1f} s")
    assert abs(accuracy - eval_accuracy) <= 1.0


def test_latest_drops_frames_with_bounded_memory(quantized_blob, images):
    """A consumer slower than the producer: frames are dropped, never queued; every frame read is
    either classified or counted as dropped; the process stays small while 460 MB stream through."""
    pictures, _ = images
    count = 1500
    sieve = subprocess.Popen([SIEVE_RUN_BIN, quantized_blob, "--format", "gray8", "--size", f"{W}x{H}", "--crop", CROP,
                              "--latest"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    peak_kb = [0]

    def slow_reader(lines):
        for line in sieve.stdout:
            lines.append(json.loads(line))
            try:
                with open(f"/proc/{sieve.pid}/status") as f:
                    hwm = [l for l in f if l.startswith("VmHWM:")]
                peak_kb[0] = max(peak_kb[0], int(hwm[0].split()[1]) if hwm else 0)
            except OSError:
                pass
            time.sleep(0.005)

    lines = []
    reader = threading.Thread(target=slow_reader, args=(lines,))
    reader.start()
    frames = [gray_frame(pictures[i % len(pictures)]) for i in range(50)]
    feed(sieve.stdin, (frames[i % 50] for i in range(count)))
    reader.join(timeout=600)
    err = sieve.stderr.read().decode()
    assert sieve.wait(timeout=60) == 0, err
    counts = summary_counts(err)
    report(f"--latest, consumer slower than producer: {counts}, peak RSS {peak_kb[0] / 1024:.1f} MB "
           f"for a {count * W * H / 1e6:.0f} MB stream")
    assert counts["read"] == count
    assert counts["dropped"] > 0
    assert counts["classified"] + counts["dropped"] == count
    assert len(lines) == counts["classified"]
    indices = [l["frame"] for l in lines]
    assert indices == sorted(set(indices)) and indices[-1] <= count - 1
    assert 0 < peak_kb[0] < 64 * 1024, f"peak RSS {peak_kb[0]} kB"


def run_sieve(args, stdin_bytes, timeout=60):
    return subprocess.run([SIEVE_RUN_BIN, *map(str, args)], input=stdin_bytes, capture_output=True, timeout=timeout)


def test_partial_last_frame_is_reported(quantized_blob, images):
    pictures, _ = images
    data = gray_frame(pictures[0]) + gray_frame(pictures[1]) + gray_frame(pictures[2])[: W * H // 2]
    proc = run_sieve([quantized_blob, "--format", "gray8", "--size", f"{W}x{H}", "--crop", CROP], data)
    err = proc.stderr.decode()
    assert proc.returncode == 0, err
    assert len(frame_lines(proc.stdout.decode())) == 2
    assert summary_counts(err) == {"read": 2, "classified": 2, "dropped": 0, "skipped": 0}
    assert f"a partial last frame: {W * H // 2} of {W * H} bytes, {W * H // 2} missing, not classified" in err


def test_every_nth_frame(quantized_blob, images):
    pictures, _ = images
    data = b"".join(gray_frame(p) for p in pictures[:10])
    proc = run_sieve([quantized_blob, "--format", "gray8", "--size", f"{W}x{H}", "--crop", CROP, "--every", 3], data)
    assert [l["frame"] for l in frame_lines(proc.stdout.decode())] == [0, 3, 6, 9]
    assert summary_counts(proc.stderr.decode()) == {"read": 10, "classified": 4, "dropped": 0, "skipped": 6}


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_prints_the_summary_and_exits_0(quantized_blob, images, sig):
    pictures, _ = images
    sieve = subprocess.Popen([SIEVE_RUN_BIN, quantized_blob, "--format", "gray8", "--size", f"{W}x{H}", "--crop", CROP],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    for p in pictures[:3]:
        sieve.stdin.write(gray_frame(p))
    sieve.stdin.flush()
    first = sieve.stdout.readline()
    assert json.loads(first)["frame"] == 0
    time.sleep(0.2)  # now blocked reading the fourth frame from a pipe that stays open
    sieve.send_signal(sig)
    out, err = sieve.communicate(timeout=10)
    sieve.stdin.close()
    assert sieve.returncode == 0, err
    assert summary_counts(err.decode())["classified"] == 3


def test_closed_stdout_ends_quietly(quantized_blob, images):
    pictures, _ = images
    frames = [gray_frame(p) for p in pictures[:20]]
    # pipefail: the status is sieve-run's, not head's.
    command = f"set -o pipefail; '{SIEVE_RUN_BIN}' '{quantized_blob}' --format gray8 --size {W}x{H} --crop {CROP} | head -n 1"
    sieve = subprocess.Popen(["bash", "-c", command], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    feed(sieve.stdin, (frames[i % 20] for i in range(2000)))
    out, err = sieve.stdout.read(), sieve.stderr.read()
    assert sieve.wait(timeout=60) == 0, err.decode()
    assert len(out.decode().splitlines()) == 1
    assert err.decode() == "", err.decode()


def test_fifo_input(quantized_blob, images, tmp_path):
    pictures, _ = images
    fifo = tmp_path / "frames"
    os.mkfifo(fifo)
    sieve = subprocess.Popen([SIEVE_RUN_BIN, quantized_blob, "--format", "gray8", "--size", f"{W}x{H}", "--crop", CROP,
                              "--input", str(fifo)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    with open(fifo, "wb") as f:
        for p in pictures[:5]:
            f.write(gray_frame(p))
    out, err = sieve.communicate(timeout=30)
    assert sieve.returncode == 0, err
    assert [l["frame"] for l in frame_lines(out.decode())] == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("binary", list(BINARIES))
def test_errors_are_one_line_and_nonzero(quantized_blob, tmp_path, binary):
    corrupt = tmp_path / "corrupt.sieve"
    data = bytearray(open(quantized_blob, "rb").read())
    data[len(data) // 2] ^= 0xFF
    corrupt.write_bytes(bytes(data))
    cases = [
        ([quantized_blob, "--format", "h264", "--size", "640x480"], "unknown frame format 'h264'"),
        (["/nonexistent/model.sieve", "--format", "gray8", "--size", "640x480"], "cannot open /nonexistent/model.sieve"),
        ([str(corrupt), "--format", "gray8", "--size", "640x480"], "CRC-32C mismatch"),
        ([quantized_blob, "--format", "gray8", "--size", "640x480", "--crop", "200,0,480,480"], "does not fit in the 640x480 frame"),
        ([quantized_blob, "--format", "gray8", "--size", "20x20"], None),  # fine: the crop defaults to the frame
        ([quantized_blob, "--format", "i420", "--size", "641x480"], "cannot work"),
        ([quantized_blob, "--format", "gray8", "--size", "640x480", "--stride", "600"], "cannot work"),
        ([quantized_blob, "--format", "gray8", "--size", "640x480", "--input", str(tmp_path / "missing")], "cannot read frames from"),
        ([quantized_blob, "--format", "rgb24", "--size", "65535x65535"], "is 2 GB or more"),  # 12 GB: refused before any allocation
        ([quantized_blob, "--format", "gray8", "--size", "640x480", "--max-arena", "4K"], "arena, above the 4096-byte limit"),
        ([quantized_blob, "--format", "gray8", "--size", "640x480", "--max-arena", "lots"], "--max-arena must be a byte count"),
    ]
    for args, message in cases:
        proc = subprocess.run(BINARIES[binary] + list(map(str, args)), input=b"", capture_output=True, timeout=30)
        err = proc.stderr.decode()
        if message is None:
            assert proc.returncode == 0, err
            continue
        assert proc.returncode != 0, (args, err)
        assert err.startswith("error:") and message in err and len(err.strip().splitlines()) == 1, (args, err)


def test_invert_and_stride(quantized_blob, images):
    """--invert on inverted frames and --stride on frames with padded rows give the plain answers."""
    pictures, _ = images
    plain = b"".join(gray_frame(p) for p in pictures[:50])
    arrays = np.frombuffer(plain, np.uint8).reshape(50, H, W)
    inverted = (255 - arrays).tobytes()
    padded = np.concatenate([arrays, np.full((50, H, 64), 77, np.uint8)], axis=2).tobytes()
    args = [quantized_blob, "--format", "gray8", "--size", f"{W}x{H}", "--crop", CROP]
    answers = {}
    for name, data, extra in [("plain", plain, []), ("inverted", inverted, ["--invert"]), ("padded", padded, ["--stride", W + 64])]:
        proc = run_sieve(args + extra, data)
        assert proc.returncode == 0, proc.stderr.decode()
        answers[name] = [l["class"] for l in frame_lines(proc.stdout.decode())]
    assert len(answers["plain"]) == 50
    assert answers["inverted"] == answers["plain"] and answers["padded"] == answers["plain"]


@pytest.mark.parametrize("latest", [False, True], ids=["every-frame", "latest"])
def test_producer_killed_mid_frame_is_accounted(quantized_blob, images, tmp_path, latest):
    """The camera dies (SIGKILL) halfway through frame 6: five frames read and accounted for
    (classified, or dropped in latest mode), the half frame reported with its missing bytes."""
    pictures, _ = images
    data = tmp_path / "frames.raw"
    data.write_bytes(b"".join(gray_frame(p) for p in pictures[:5]) + gray_frame(pictures[5])[: W * H // 2])
    producer = subprocess.Popen(["python3", "-c", f"import sys, time; sys.stdout.buffer.write(open('{data}', 'rb').read()); "
                                 "sys.stdout.flush(); time.sleep(60)"], stdout=subprocess.PIPE)
    sieve = subprocess.Popen([SIEVE_RUN_BIN, quantized_blob, "--format", "gray8", "--size", f"{W}x{H}", "--crop", CROP]
                             + (["--latest"] if latest else []), stdin=producer.stdout, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
    producer.stdout.close()
    time.sleep(1.0)  # everything written; the producer now holds the pipe open, mid-frame
    producer.kill()
    producer.wait()
    out, err = sieve.communicate(timeout=30)
    err = err.decode()
    assert sieve.returncode == 0, err
    counts = summary_counts(err)
    assert counts["read"] == 5 and counts["classified"] + counts["dropped"] == 5
    assert len(frame_lines(out.decode())) == counts["classified"]
    assert f"a partial last frame: {W * H // 2} of {W * H} bytes, {W * H // 2} missing, not classified" in err
