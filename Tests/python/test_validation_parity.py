"""The runtime's load-time validation equals the spec: every reserved field, flag word, padding and
trailer rule of docs/FORMAT.md, broken one at a time (checksums repaired so the rule itself is what
fails), gets the same verdict from the runtime (`sieve inspect`) and the independent numpy reader."""
import struct
import subprocess

import pytest
import sieve_blob as sb
from conftest import SIEVE_BIN
from test_reference_reader import _section, random_graph

MODEL, TENSORS, OPS, HEADS = 1, 2, 3, 4


def _fix_header(raw):
    struct.pack_into("<I", raw, 32, sb.crc32c(bytes(raw[0:32])))


def _fix_table(raw):
    count = struct.unpack_from("<I", raw, 24)[0]
    struct.pack_into("<I", raw, 28, sb.crc32c(bytes(raw[64:64 + 32 * count])))
    _fix_header(raw)


def _fix_section(raw, kind):
    count = struct.unpack_from("<I", raw, 24)[0]
    for i in range(count):
        entry = 64 + 32 * i
        k, _, off, size = struct.unpack_from("<IIQQ", raw, entry)
        if k == kind:
            struct.pack_into("<I", raw, entry + 24, sb.crc32c(bytes(raw[off:off + size])))
    _fix_table(raw)


def _set_in_section(kind, at, value=1):
    def mutate(raw):
        off, _ = _section(raw, kind)
        raw[off + at] = value
        _fix_section(raw, kind)
    return mutate


def _first_op_of_kind(raw, kinds):
    off, _ = _section(raw, OPS)
    count = struct.unpack_from("<I", raw, _section(raw, MODEL)[0] + 4)[0]
    for i in range(count):
        if struct.unpack_from("<I", raw, off + 128 * i)[0] in kinds:
            return i
    raise LookupError(kinds)


def _op_field(kinds, at):
    def mutate(raw):
        i = _first_op_of_kind(raw, kinds)
        _set_in_section(OPS, 128 * i + at)(raw)
    return mutate


def _header_reserved(raw):
    raw[50] = 1
    _fix_header(raw)


def _entry_word(at):
    def mutate(raw):
        raw[64 + 32 * 2 + at] = 1   # the third section table entry
        _fix_table(raw)
    return mutate


def _padding(raw):
    off, size = _section(raw, MODEL)   # 96 bytes: 32 bytes of padding follow
    raw[off + size + 5] = 1


def _trailer_byte(raw):
    raw[-3] = 1


def _trailer_short(raw):
    last_end = max(off + size for off, size in (_section(raw, kind) for kind in sb.SECTION_NAMES))
    del raw[last_end + 63:]
    struct.pack_into("<Q", raw, 16, len(raw))
    _fix_header(raw)


NOT_ADD = [k for k in sb.OP_NAMES if k != sb.ADD]
CASES = {
    "untouched": lambda raw: None,
    "header reserved byte": _header_reserved,
    "section entry flags": _entry_word(4),
    "section entry reserved": _entry_word(28),
    "padding after a section": _padding,
    "byte in the 64-byte trailer": _trailer_byte,
    "trailer of 63 bytes": _trailer_short,
    "MODEL reserved word": _set_in_section(MODEL, 28),
    "MODEL reserved bytes": _set_in_section(MODEL, 90),
    "tensor flags": _set_in_section(TENSORS, 32 * 3 + 24),
    "tensor reserved": _set_in_section(TENSORS, 32 * 3 + 28),
    "op reserved word": _op_field(NOT_ADD, 60),
    "op params of a non-ADD": _op_field(NOT_ADD, 96),
    "ADD params[1]": _op_field([sb.ADD], 100),
    "op bytes after params": _op_field(NOT_ADD, 127),
    "ADD left_shift stays legal": _op_field([sb.ADD], 96, ),
    "head reserved": _set_in_section(HEADS, 28),
    "pool groups": _op_field([sb.MAX_POOL, sb.AVERAGE_POOL, sb.GLOBAL_AVERAGE_POOL], 48),
    "ADD groups": _op_field([sb.ADD], 48),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_runtime_and_reference_agree(blob_builder, tmp_path, case):
    raw = bytearray(random_graph(blob_builder, 3))
    CASES[case](raw)
    assert_same_verdict(raw, case, tmp_path)


def assert_same_verdict(raw, case, tmp_path):
    """The runtime (`sieve inspect`) and the numpy reference accept or refuse the blob alike; a
    refusal is one `error:` line. Cases named "untouched" or "... stays legal" must load."""
    try:
        sb.load(bytes(raw))
        reference = None
    except sb.BlobError as error:
        reference = str(error)
    path = tmp_path / "case.sieve"
    path.write_bytes(bytes(raw))
    proc = subprocess.run([SIEVE_BIN, "inspect", str(path)], capture_output=True, text=True, timeout=60)
    runtime = None if proc.returncode == 0 else proc.stderr.strip()
    assert (runtime is None) == (reference is None), f"runtime: {runtime!r}; reference: {reference!r}"
    if case == "untouched" or case.endswith("stays legal"):
        assert runtime is None
    else:
        assert runtime is not None and len(runtime.splitlines()) == 1 and runtime.startswith("error:"), runtime
