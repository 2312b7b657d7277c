"""The board build: Firmware/build.sh cross-compiles sieve-run for aarch64 Linux (Embedded Swift +
aarch64-linux-gnu-gcc); under qemu-aarch64 as Cortex-A53, A72, A76 and `max` its JSON lines equal
the host build's on 1000 frames (every field but the time), and each CPU picks the kernel path
its features allow. Also: the binary sizes, the systemd unit and the install script."""
import json
import os
import re
import shutil
import subprocess

import numpy as np
import pytest

import fmnist
from conftest import REPO, SIEVE_BIN, TEST1000_IMAGES, TEST1000_LABELS, report, run_cli

SIEVE_RUN_BIN = os.environ.get("SIEVE_RUN_BIN", os.path.join(os.path.dirname(SIEVE_BIN), "sieve-run"))
SIZE = 224  # each 28x28 image enlarged 8x, as an I420 frame
CPUS = {"cortex-a53": "neon", "cortex-a72": "neon", "cortex-a76": "neondot", "max": "i8mm"}


@pytest.fixture(scope="module")
def firmware(tmp_path_factory):
    out = tmp_path_factory.mktemp("firmware")
    proc = subprocess.run(["bash", os.path.join(REPO, "Firmware", "build.sh"), str(out)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-4000:]
    report("Firmware/build.sh: " + " | ".join(line.strip() for line in proc.stdout.splitlines() if "bytes stripped" in line))
    return out


@pytest.fixture(scope="module")
def frames():
    images = fmnist.read_idx(TEST1000_IMAGES)
    y = np.kron(images, np.ones((8, 8), np.uint8))  # (1000, 224, 224)
    chroma = np.full((len(images), SIZE * SIZE // 2), 128, np.uint8)
    return np.concatenate([y.reshape(len(images), -1), chroma], axis=1).tobytes()


@pytest.fixture(scope="module")
def tuned_blob(quantized_blob, tmp_path_factory):
    tuned = tmp_path_factory.mktemp("tuned") / "vgg-s-tuned.sieve"
    run_cli("tune", quantized_blob, "--images", TEST1000_IMAGES, "--labels", TEST1000_LABELS, "--indices", "all",
            "--max-drop", "1.0", "-o", tuned)
    return str(tuned)


def lines_without_time(stdout):
    rows = [json.loads(line) for line in stdout.splitlines()]
    for row in rows:
        del row["us"]
    return rows


def run(command, blob, frames, env=None):
    proc = subprocess.run(command + [blob, "--format", "i420", "--size", f"{SIZE}x{SIZE}"], input=frames,
                          capture_output=True, timeout=1200, env=env)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    return lines_without_time(proc.stdout.decode()), proc.stderr.decode()


def test_sizes(firmware):
    dynamic, static = os.path.getsize(firmware / "sieve-run"), os.path.getsize(firmware / "sieve-run-static")
    assert dynamic <= 250_000, f"glibc-dynamic sieve-run is {dynamic} bytes"
    assert static > dynamic
    info = subprocess.run(["file", "-b", str(firmware / "sieve-run")], capture_output=True, text=True).stdout
    assert "ARM aarch64" in info and "dynamically linked" in info and "stripped" in info, info


@pytest.mark.parametrize("cpu", list(CPUS))
def test_qemu_matches_host(firmware, tuned_blob, frames, cpu):
    host, _ = run([SIEVE_RUN_BIN], tuned_blob, frames)
    assert len(host) == 1000 and any(row["exit"] != "final" for row in host)
    qemu = ["qemu-aarch64", "-L", "/usr/aarch64-linux-gnu", "-cpu", cpu, str(firmware / "sieve-run")]
    board, summary = run(qemu, tuned_blob, frames)
    picked = re.search(r"kernels: (\w+)", summary).group(1)
    report(f"qemu {cpu}: kernels {picked}, 1000 frames, JSON lines {'equal' if board == host else 'DIFFERENT'} to the host's")
    assert picked == CPUS[cpu]
    assert board == host
    if cpu == "max":  # the dot-product path, forced, on the same CPU
        forced, summary = run(qemu, tuned_blob, frames, env={**os.environ, "SIEVE_ISA": "neondot"})
        assert "kernels: neondot" in summary and forced == host


def test_static_binary_runs_without_a_sysroot(firmware, tuned_blob, frames):
    host, _ = run([SIEVE_RUN_BIN], tuned_blob, frames[: 200 * SIZE * SIZE * 3 // 2])
    board, summary = run(["qemu-aarch64", "-cpu", "cortex-a72", str(firmware / "sieve-run-static")], tuned_blob,
                         frames[: 200 * SIZE * SIZE * 3 // 2])
    assert "kernels: neon" in summary and board == host
