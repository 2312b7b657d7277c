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
    armv7 = subprocess.run(["file", "-b", str(firmware / "sieve-run-armv7")], capture_output=True, text=True).stdout
    assert "32-bit" in armv7 and "ARM" in armv7 and "armhf" in armv7, armv7
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


def logits_of(rows):
    return np.array([row["logits"] for row in rows], np.float32)


@pytest.mark.parametrize("cpu", ["cortex-a72", "max"])
def test_qemu_logits_equal_the_host_bit_for_bit(firmware, tuned_blob, frames, cpu):
    """--logits: the classifier's exact logits on the board are the host's, to the last bit."""
    part = frames[: 200 * SIZE * SIZE * 3 // 2]
    host, _ = run([SIEVE_RUN_BIN, "--no-exits", "--logits"], tuned_blob, part)
    qemu = ["qemu-aarch64", "-L", "/usr/aarch64-linux-gnu", "-cpu", cpu, str(firmware / "sieve-run"), "--no-exits", "--logits"]
    board, summary = run(qemu, tuned_blob, part)
    assert re.search(r"kernels: (\w+)", summary).group(1) == CPUS[cpu]
    assert len(board) == 200 and logits_of(board).shape == (200, 10)
    assert np.array_equal(logits_of(board), logits_of(host)) and board == host


@pytest.mark.parametrize("graph", ["elementwise", "gather"])
@pytest.mark.parametrize("cpu", list(CPUS))
def test_qemu_runs_hand_built_blobs_on_every_arm_path(firmware, blob_builder, tmp_path, graph, cpu):
    """CONCAT, MUL, LUT and GATHER (test_elementwise_validation.py's hand-built blobs) on each ARM
    path: the board's exact logits equal the host's scalar kernels' (`sieve eval --isa scalar`)."""
    from test_elementwise_validation import elementwise_graph, gather_graph
    blob = tmp_path / "hand-built.sieve"
    blob.write_bytes((elementwise_graph if graph == "elementwise" else gather_graph)(blob_builder))
    images = np.random.default_rng(9).integers(0, 256, (200, 5, 4, 3), dtype=np.uint8)
    np.save(tmp_path / "images.npy", images)
    np.save(tmp_path / "labels.npy", np.zeros(len(images), np.uint8))
    run_cli("eval", blob, "--images", tmp_path / "images.npy", "--labels", tmp_path / "labels.npy", "--isa", "scalar",
            "--dump-exact-logits", tmp_path / "exact.npy")
    scalar = np.load(tmp_path / "exact.npy")[:, 0]
    assert len(np.unique(scalar)) > 20  # the logits vary, so a wrong op would show
    qemu = ["qemu-aarch64", "-L", "/usr/aarch64-linux-gnu", "-cpu", cpu, str(firmware / "sieve-run")]
    proc = subprocess.run(qemu + [str(blob), "--format", "rgb24", "--size", "4x5", "--no-exits", "--logits"],
                          input=images.tobytes(), capture_output=True, timeout=600)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    assert f"kernels: {CPUS[cpu]}" in proc.stderr.decode()
    assert np.array_equal(logits_of(lines_without_time(proc.stdout.decode())), scalar)


def test_armv7_matches_host(firmware, tuned_blob, frames):
    """32-bit Raspberry Pi OS (armv7 hard-float): scalar kernels, the same answers."""
    part = frames[: 200 * SIZE * SIZE * 3 // 2]
    host, _ = run([SIEVE_RUN_BIN], tuned_blob, part)
    board, summary = run(["qemu-arm", "-L", "/usr/arm-linux-gnueabihf", "-cpu", "cortex-a7", str(firmware / "sieve-run-armv7")],
                         tuned_blob, part)
    report(f"qemu-arm cortex-a7 (armv7 hard-float): 200 frames, JSON lines {'equal' if board == host else 'DIFFERENT'} to the host's")
    assert "kernels: scalar" in summary and board == host


def test_threads_on_the_board_give_the_same_lines(firmware, tuned_blob, frames):
    part = frames[: 100 * SIZE * SIZE * 3 // 2]
    host, _ = run([SIEVE_RUN_BIN], tuned_blob, part)
    board, summary = run(["qemu-aarch64", "-L", "/usr/aarch64-linux-gnu", "-cpu", "cortex-a76", str(firmware / "sieve-run"),
                          "--threads", "2"], tuned_blob, part)
    assert "threads: 2" in summary and board == host


def test_static_binary_runs_without_a_sysroot(firmware, tuned_blob, frames):
    host, _ = run([SIEVE_RUN_BIN], tuned_blob, frames[: 200 * SIZE * SIZE * 3 // 2])
    board, summary = run(["qemu-aarch64", "-cpu", "cortex-a72", str(firmware / "sieve-run-static")], tuned_blob,
                         frames[: 200 * SIZE * SIZE * 3 // 2])
    assert "kernels: neon" in summary and board == host


def test_unit_file_verifies(tmp_path):
    """systemd-analyze verify on the unit (ExecStart pointed at the repository's script, since the
    host has no /usr/local/bin/sieve-camera)."""
    unit = open(os.path.join(REPO, "Firmware", "sieve.service")).read()
    assert "User=sieve" in unit and "Restart=on-failure" in unit and "StandardOutput=journal" in unit
    local = tmp_path / "sieve.service"
    local.write_text(unit.replace("/usr/local/bin/sieve-camera", os.path.join(REPO, "Firmware", "sieve-camera.sh")))
    proc = subprocess.run(["systemd-analyze", "verify", str(local)], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stderr.strip() == "", proc.stderr


def test_unit_file_security_score(tmp_path):
    """ISSUE-14 item 14: systemd-analyze security rates the unit at most 3.0 ("OK"; it was 8.5
    EXPOSED), with the sandbox the pipeline allows, and the README states the score."""
    unit = open(os.path.join(REPO, "Firmware", "sieve.service")).read()
    for setting in ["PrivateNetwork=yes", "CapabilityBoundingSet=\n", "RestrictAddressFamilies=AF_UNIX", "DevicePolicy=closed",
                    "DeviceAllow=char-video4linux rw", "SystemCallFilter=@system-service", "MemoryDenyWriteExecute=yes"]:
        assert setting in unit, setting
    local = tmp_path / "sieve.service"
    local.write_text(unit.replace("/usr/local/bin/sieve-camera", os.path.join(REPO, "Firmware", "sieve-camera.sh")))
    proc = subprocess.run(["systemd-analyze", "security", "--offline=yes", str(local)], capture_output=True, text=True)
    match = re.search(r"Overall exposure level for sieve.service: (\d+\.\d) (\w+)", proc.stdout)
    assert match, proc.stdout[-2000:] + proc.stderr
    score = float(match.group(1))
    report(f"systemd-analyze security sieve.service: {score} {match.group(2)}")
    assert score <= 3.0, proc.stdout
    readme = open(os.path.join(REPO, "README.md")).read()
    assert f"{score} {match.group(2)}" in readme


def test_camera_script_runs_the_pipeline(quantized_blob):
    """Firmware/sieve-camera.sh with a stand-in camera (Tools/frames.py) and the host sieve-run: one
    line per frame, status 0; a camera that fails makes the service fail (so systemd restarts it)."""
    for script in ["sieve-camera.sh", "install.sh", "build.sh"]:
        assert subprocess.run(["bash", "-n", os.path.join(REPO, "Firmware", script)]).returncode == 0
    env = {**os.environ, "SIEVE_MODEL": quantized_blob, "SIEVE_RUN": SIEVE_RUN_BIN, "SIEVE_FORMAT": "gray8",
           "SIEVE_CAMERA": f"python3 {os.path.join(REPO, 'Tools', 'frames.py')} --count 20",
           "SIEVE_ARGS": "--crop 96,16,448,448"}
    proc = subprocess.run([os.path.join(REPO, "Firmware", "sieve-camera.sh")], env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.splitlines()) == 20 and "frames read 20, classified 20" in proc.stderr
    failing = subprocess.run([os.path.join(REPO, "Firmware", "sieve-camera.sh")], env={**env, "SIEVE_CAMERA": "false"},
                             capture_output=True, text=True, timeout=60)
    assert failing.returncode != 0


def test_install_script_with_stub_ssh(firmware, quantized_blob, tmp_path):
    """install.sh against stand-ins for ssh and scp: it checks the board's architecture, copies the
    five files and runs an installation script (valid sh) that installs, adds the user and enables
    the unit; a 32-bit board is refused."""
    log = tmp_path / "log"
    stub = tmp_path / "ssh"
    stub.write_text(f"""#!/bin/sh
echo "ssh $*" >> {log}
case "$*" in
  *"uname -m") echo "${{BOARD_ARCH:-aarch64}}" ;;
  *"sudo sh -s"*) cat > {tmp_path}/remote.sh ;;
esac
""")
    scp = tmp_path / "scp"
    scp.write_text(f"#!/bin/sh\necho \"scp $*\" >> {log}\n")
    os.chmod(stub, 0o755)
    os.chmod(scp, 0o755)
    env = {**os.environ, "SSH": str(stub), "SCP": str(scp), "SIEVE_FIRMWARE": str(firmware)}
    proc = subprocess.run(["bash", os.path.join(REPO, "Firmware", "install.sh"), "--no-build", "pi@board", quantized_blob],
                          env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    calls = log.read_text()
    assert "ssh pi@board uname -m" in calls and "scp -q" in calls and "pi@board:/tmp/sieve-install/" in calls
    for name in ["sieve-run", "sieve-camera.sh", "sieve.service", "sieve.default", os.path.basename(quantized_blob)]:
        assert name in calls
    remote = (tmp_path / "remote.sh").read_text()
    assert subprocess.run(["sh", "-n", str(tmp_path / "remote.sh")]).returncode == 0
    for step in ["replace 755 sieve-run /usr/local/bin/sieve-run", "useradd --system", "usermod -a -G video sieve",
                 "/etc/systemd/system/sieve.service", "systemctl enable --now sieve"]:
        assert step in remote
    refused = subprocess.run(["bash", os.path.join(REPO, "Firmware", "install.sh"), "--no-build", "pi@board", quantized_blob],
                             env={**env, "BOARD_ARCH": "armv7l"}, capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0 and "armv7l" in refused.stderr


def test_install_script_never_pastes_a_name_into_the_remote_shell(firmware, quantized_blob, tmp_path):
    """ISSUE-14 item 3: a model named like a shell command reaches the board only as scp's local
    argument (copied to the fixed name model.sieve); the ssh commands and the script run as root are
    fixed text, and the installation replaces each file by rename."""
    evil_dir = tmp_path / "models"
    evil_dir.mkdir()
    evil = evil_dir / 'm"; id; echo "x$(whoami).sieve'
    evil.write_bytes(open(quantized_blob, "rb").read())
    log = tmp_path / "log"
    stub = tmp_path / "ssh"
    stub.write_text(f"""#!/bin/sh
for a in "$@"; do printf 'ssh-arg<%s>\\n' "$a" >> {log}; done
case "$*" in
  *"uname -m") echo aarch64 ;;
  *"sudo sh -s"*) cat > {tmp_path}/remote.sh ;;
esac
""")
    scp = tmp_path / "scp"
    scp.write_text(f"#!/bin/sh\nfor a in \"$@\"; do printf 'scp-arg<%s>\\n' \"$a\" >> {log}; done\n")
    os.chmod(stub, 0o755)
    os.chmod(scp, 0o755)
    env = {**os.environ, "SSH": str(stub), "SCP": str(scp), "SIEVE_FIRMWARE": str(firmware)}
    proc = subprocess.run(["bash", os.path.join(REPO, "Firmware", "install.sh"), "--no-build", "pi@board", str(evil)],
                          env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    calls = log.read_text().splitlines()
    remote = (tmp_path / "remote.sh").read_text()
    assert f"scp-arg<{evil}>" in calls and "scp-arg<pi@board:/tmp/sieve-install/model.sieve>" in calls
    for line in [call for call in calls if call.startswith("ssh-arg")] + remote.splitlines():
        assert "whoami" not in line and "; id;" not in line, line
    assert "replace 644 model.sieve /usr/local/share/sieve/model.sieve" in remote and 'mv -f "$3.new" "$3"' in remote
    assert subprocess.run(["sh", "-n", str(tmp_path / "remote.sh")]).returncode == 0
    refused = subprocess.run(["bash", os.path.join(REPO, "Firmware", "install.sh"), "--no-build", "-oProxyCommand=id",
                              str(evil)], env=env, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "starts with '-'" in refused.stderr


def test_camera_script_splits_settings_without_globbing(quantized_blob, tmp_path):
    """ISSUE-14 item 15: SIEVE_ARGS and SIEVE_CAMERA are split like shell words (quotes kept
    together) and never glob-expanded: '*' in a directory holding files named --threads and 7
    stays '*'; a quoted camera argument with a space works."""
    work = tmp_path / "dir with space"
    work.mkdir()
    (work / "--threads").write_text("")
    (work / "7").write_text("")
    camera = work / "camera"
    camera.write_text(f"#!/bin/sh\nexec python3 '{os.path.join(REPO, 'Tools', 'frames.py')}' \"$@\"\n")
    os.chmod(camera, 0o755)
    env = {**os.environ, "SIEVE_MODEL": quantized_blob, "SIEVE_RUN": SIEVE_RUN_BIN, "SIEVE_FORMAT": "gray8",
           "SIEVE_CAMERA": f"'{camera}' --count 5", "SIEVE_ARGS": "--crop 96,16,448,448 --threads \"2\""}
    script = os.path.join(REPO, "Firmware", "sieve-camera.sh")
    proc = subprocess.run([script], env=env, capture_output=True, text=True, timeout=60, cwd=work)
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.splitlines()) == 5 and "threads: 2" in proc.stderr
    globbed = subprocess.run([script], env={**env, "SIEVE_ARGS": "*"}, capture_output=True, text=True, timeout=60, cwd=work)
    assert globbed.returncode != 0 and "unexpected argument '*'" in globbed.stderr and "threads: 7" not in globbed.stderr
    unmatched = subprocess.run([script], env={**env, "SIEVE_ARGS": '--crop "96'}, capture_output=True, text=True,
                               timeout=60, cwd=work)
    assert unmatched.returncode == 2 and "cannot split" in unmatched.stderr


# ISSUE-14 items 7, 8: numbers whose sums or products leave 32 bits, on both board binaries.
BOARD_NUMBER_CASES = [
    (["--max-arena", "2048M"], None), (["--max-arena", "4096M"], None), (["--max-arena", "2147483647M"], None),
    (["--size", "65536x32768"], "is 2 GB or more"), (["--size", "100000x100000"], "is 2 GB or more"),
    (["--size", "28x28", "--crop", "2147483647,0,1,1"], "does not fit"), (["--size", "28x28", "--crop", "0,2147483647,1,1"], "does not fit"),
    (["--size", "28x28", "--crop", "1,1,2147483647,1"], "does not fit"), (["--size", "28x28", "--crop", "1,1,1,2147483647"], "does not fit"),
]
BOARDS = {"armv7": ["qemu-arm", "-L", "/usr/arm-linux-gnueabihf", "-cpu", "cortex-a7"],
          "aarch64": ["qemu-aarch64", "-L", "/usr/aarch64-linux-gnu", "-cpu", "cortex-a72"]}


@pytest.mark.parametrize("board", list(BOARDS))
def test_board_binaries_on_numbers_beyond_32_bits(firmware, quantized_blob, board):
    binary = str(firmware / ("sieve-run-armv7" if board == "armv7" else "sieve-run"))
    for extra, message in BOARD_NUMBER_CASES:
        args = [quantized_blob, "--format", "gray8"] + (extra if "--size" in extra else ["--size", "28x28"] + extra)
        proc = subprocess.run(BOARDS[board] + [binary] + args, input=b"", capture_output=True, timeout=60)
        err = proc.stderr.decode()
        if message is None:
            assert proc.returncode == 0 and "frames read 0" in err, (board, extra, proc.returncode, err)
        else:
            assert proc.returncode == 1 and err.startswith("error:") and message in err and len(err.strip().splitlines()) == 1, \
                (board, extra, proc.returncode, err)
