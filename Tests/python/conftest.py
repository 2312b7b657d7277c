"""Shared fixtures for the Python tests of Sieve: paths, the CLI, a quantised VGG-S blob, and a tiny
blob writer (written from docs/FORMAT.md, used only to exercise the reference reader)."""
import math
import os
import struct
import subprocess
import sys
import time

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "Tools", "reference"))
sys.path.insert(0, os.path.join(REPO, "Tools", "train"))

import sieve_blob  # noqa: E402

SIEVE_BIN = os.environ.get("SIEVE_BIN", os.path.join(REPO, ".build", "release", "sieve"))
MODEL = os.environ.get("SIEVE_MODEL", os.path.join(REPO, "models", "vgg-s.onnx"))
CALIB = os.path.join(REPO, "data", "fashion-mnist-calib-1000-images-idx3-ubyte.gz")
TEST1000_IMAGES = os.path.join(REPO, "data", "fashion-mnist-test-1000-images-idx3-ubyte.gz")
TEST1000_LABELS = os.path.join(REPO, "data", "fashion-mnist-test-1000-labels-idx1-ubyte.gz")
FMNIST_DIR = os.environ.get("SIEVE_FMNIST_DIR", "/usr/share/datasets/fashion-mnist")
TEST10K_IMAGES = os.path.join(FMNIST_DIR, "t10k-images-idx3-ubyte.gz")
TEST10K_LABELS = os.path.join(FMNIST_DIR, "t10k-labels-idx1-ubyte.gz")

_REPORT = []


def report(line):
    """Adds a line to the summary printed at the end of the run."""
    _REPORT.append(line)


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: the full 10k-image test set (runs by default; select with -m slow)")


def pytest_terminal_summary(terminalreporter):
    if _REPORT:
        terminalreporter.section("sieve reference report")
        for line in _REPORT:
            terminalreporter.write_line(line)


def run_cli(*args, timeout=1800):
    """Runs the sieve CLI; fails the test (never skips) when it is missing or exits non-zero."""
    if not os.path.isfile(SIEVE_BIN) or not os.access(SIEVE_BIN, os.X_OK):
        pytest.fail(f"sieve CLI not found at {SIEVE_BIN} (set SIEVE_BIN or build it with swift build -c release)")
    cmd = [SIEVE_BIN, *map(str, args)]
    t0 = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc, time.time() - t0


def require_file(path, what):
    if not os.path.isfile(path):
        pytest.fail(f"{what} not found at {path}")


@pytest.fixture(scope="session")
def quantized_blob(tmp_path_factory):
    """models/vgg-s.onnx quantised by the CLI with the 1000 demo calibration images."""
    require_file(MODEL, "trained float model")
    require_file(CALIB, "calibration images")
    out = tmp_path_factory.mktemp("blob") / "vgg-s.sieve"
    _, seconds = run_cli("quantize", MODEL, "--calib", CALIB, "-o", out)
    require_file(str(out), "quantised blob")
    report(f"sieve quantize: {seconds:.1f}s, {os.path.getsize(out)} bytes -> {out}")
    return str(out)


# ----------------------------------------------------------------------------------------------
# A tiny blob writer, from docs/FORMAT.md only.

def _align(n, m=64):
    return (n + m - 1) // m * m


def crc32c(data):
    return sieve_blob.crc32c(data)


def quantize_multiplier(m):
    """FORMAT.md: m = f * 2^e, f in [0.5, 1), M = round(f * 2^31) (2^31 -> 2^30, e + 1), s = 31 - e."""
    f, e = math.frexp(m)
    M = round(f * (1 << 31))
    if M == 1 << 31:
        M, e = 1 << 30, e + 1
    return M, 31 - e


class BlobBuilder:
    """Builds a format-v1 blob in memory: add tensors, ops and heads, then build()."""

    def __init__(self, class_count):
        self.class_count = class_count
        self.tensors = []       # (h, w, c, scale, zp)
        self.ops = []           # bytes of the 128-byte record (DataRefs patched in build)
        self.heads = []
        self.data = bytearray()

    def tensor(self, h, w, c, scale, zp):
        self.tensors.append((h, w, c, float(np.float32(scale)), int(zp)))
        return len(self.tensors) - 1

    def _data(self, array):
        if array is None:
            return (0, 0)
        raw = np.ascontiguousarray(array).tobytes()
        off = len(self.data)
        self.data += raw
        self.data += bytes(_align(len(self.data)) - len(self.data))
        return (off, len(raw))

    def op(self, kind, input0, output, input1=0xFFFFFFFF, kernel=(0, 0), stride=(0, 0), pad=(0, 0, 0, 0),
           groups=0, act=(0, 0), weights=None, bias=None, multipliers=None, shifts=None, params=()):
        refs = [self._data(None if weights is None else np.asarray(weights, dtype=np.int8)),
                self._data(None if bias is None else np.asarray(bias, dtype="<i4")),
                self._data(None if multipliers is None else np.asarray(multipliers, dtype="<i4")),
                self._data(None if shifts is None else np.asarray(shifts, dtype="<i4"))]
        p = list(params) + [0] * (8 - len(params))
        rec = struct.pack("<16I", kind, input0, input1, output, *kernel, *stride, *pad, groups, 0, 0, 0)
        rec = rec[:52] + struct.pack("<2iI", act[0], act[1], 0)
        rec += struct.pack("<8I", *(v for r in refs for v in r)) + struct.pack("<8i", *p)
        assert len(rec) == 128
        self.ops.append(rec)
        return len(self.ops) - 1

    def weighted(self, rng, kind, x, y, wshape, relu=False, **kw):
        """A CONV, DEPTHWISE_CONV or FULLY_CONNECTED op with random int8 weights, random bias, and
        multipliers (FORMAT.md's frexp derivation) that put a typical accumulator near 60 LSB."""
        cout = self.tensors[y][2]
        k = int(np.prod(wshape[:2] if kind == 2 else wshape[1:]))     # fan-in
        w = rng.integers(-128, 128, size=wshape, dtype=np.int64)
        typ = np.sqrt(k) * 75 * 75
        pairs = [quantize_multiplier(60.0 / typ * rng.uniform(0.5, 3.0)) for _ in range(cout)]
        bias = rng.integers(-int(typ), int(typ) + 1, size=cout)
        zp_y = self.tensors[y][4]
        act = (zp_y, 127) if relu else (int(rng.integers(-128, -100)), int(rng.integers(100, 128)))
        return self.op(kind, x, y, weights=w, bias=bias, multipliers=[m for m, _ in pairs],
                       shifts=[s for _, s in pairs], act=act, **kw)

    def add_op(self, x0, x1, y, act=(-128, 127), left_shift=20):
        """ADD with the quantiser's multipliers from FORMAT.md."""
        s0, s1, s_out = self.tensors[x0][3], self.tensors[x1][3], self.tensors[y][3]
        mx = max(s0, s1)
        pairs = [quantize_multiplier(s0 / (2 * mx)), quantize_multiplier(s1 / (2 * mx)),
                 quantize_multiplier(2 * mx / ((1 << left_shift) * s_out))]
        return self.op(7, x0, y, input1=x1, multipliers=[m for m, _ in pairs], shifts=[s for _, s in pairs],
                       act=act, params=(left_shift,))

    def head(self, kind, tap, logits, first_op, op_count, threshold=0.0):
        self.heads.append(struct.pack("<5If2I", kind, tap, logits, first_op, op_count, threshold, 0, 0))

    def build(self, input_tensor, output_tensor, labels=None, mean=(0.5,), std=(0.25,), pixel_scale=1 / 255,
              provenance="tool: conftest BlobBuilder\n"):
        in_c = self.tensors[input_tensor][2]
        mean4 = list(mean) + [0.0] * (4 - len(mean))
        std4 = list(std) + [0.0] * (4 - len(std))
        model = struct.pack("<8I", len(self.tensors), len(self.ops), len(self.heads), self.class_count,
                            input_tensor, output_tensor, in_c, 0)
        model += struct.pack("<4f", *mean4) + struct.pack("<4f", *std4) + struct.pack("<f", pixel_scale)
        model += bytes(28)
        tensors = b"".join(struct.pack("<4Ifi2I", 1, h, w, c, s, z, 0, 0) for h, w, c, s, z in self.tensors)
        labels = labels or [f"class {i}" for i in range(self.class_count)]
        encoded = [s.encode() for s in labels]
        lab = struct.pack("<I", len(encoded))
        off = 4 + 8 * len(encoded)
        for e in encoded:
            lab += struct.pack("<2I", off, len(e))
            off += len(e)
        lab += b"".join(encoded)
        payloads = [(1, model), (2, tensors), (3, b"".join(self.ops)), (4, b"".join(self.heads)), (5, lab),
                    (6, bytes(self.data)), (7, provenance.encode())]
        pos = _align(64 + 32 * len(payloads))
        table = b""
        body = bytearray()
        for kind, payload in payloads:
            table += struct.pack("<IIQQII", kind, 0, pos, len(payload), crc32c(payload), 0)
            body += payload + bytes(_align(len(payload)) - len(payload))
            pos += _align(len(payload))
        file_size = pos + 64
        header = b"SIEVEBLB" + struct.pack("<IIQII", 1, 64, file_size, len(payloads), crc32c(table))
        header += struct.pack("<I", crc32c(header)) + bytes(28)
        first = _align(64 + 32 * len(payloads))
        out = header + table + bytes(first - 64 - len(table)) + body + bytes(64)
        assert len(out) == file_size
        return bytes(out)


@pytest.fixture
def blob_builder():
    return BlobBuilder
