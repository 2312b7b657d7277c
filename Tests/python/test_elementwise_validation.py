"""CONCAT, MUL, LUT and GATHER in hand-built blobs (docs/FORMAT.md alone): the runtime (`sieve eval`)
and the numpy reference give the same int8 logits, and every new field broken one at a time (checksums
repaired) gets the same verdict from the runtime (`sieve inspect`) and the reference."""
import struct
import subprocess

import numpy as np
import pytest

import sieve_blob as sb
from conftest import SIEVE_BIN, quantize_multiplier, run_cli
from test_reference_reader import _section
from test_validation_parity import OPS, TENSORS, _fix_section, assert_same_verdict

CLASSES = 4


LUT_GROUP_MAP = [2, 0, 1, 1, 2, 0]   # the grouped LUT's table for each of its 6 channels


def elementwise_graph(builder_cls, seed=5, lut_groups=0):
    """5x4x3 input -> conv -> LUT -> (GAP, MUL broadcast) -> CONCAT of three -> MUL same shape -> GAP -> FC.
    With lut_groups = 3, the LUT has a table per channel group (channel c reads LUT_GROUP_MAP[c])."""
    rng = np.random.default_rng(seed)
    b = builder_cls(CLASSES)

    def tensor(h, w, c, like=None):
        if like is not None:
            return b.tensor(h, w, c, b.tensors[like][3], b.tensors[like][4])
        return b.tensor(h, w, c, float(rng.uniform(0.01, 0.1)), int(rng.integers(-30, 30)))

    def mul_op(x0, x1, y, act=(-128, 127)):
        m, s = quantize_multiplier(b.tensors[x0][3] * b.tensors[x1][3] / b.tensors[y][3])
        return b.op(sb.MUL, x0, y, input1=x1, multipliers=[m], shifts=[s], act=act)

    t0 = tensor(5, 4, 3)
    t1 = tensor(5, 4, 6)
    b.weighted(rng, sb.CONV, t0, t1, (6, 3, 3, 3), kernel=(3, 3), stride=(1, 1), pad=(1, 1, 1, 1), groups=1)  # op 0
    t2 = tensor(5, 4, 6)
    if lut_groups:
        b.op(sb.LUT, t1, t2, act=(-128, 127), groups=lut_groups,
             weights=np.concatenate([rng.integers(-128, 128, 256 * lut_groups), LUT_GROUP_MAP]))            # op 1
    else:
        b.op(sb.LUT, t1, t2, act=(-128, 127), weights=rng.integers(-128, 128, 256))                      # op 1
    t3 = tensor(1, 1, 6, like=t2)
    b.op(sb.GLOBAL_AVERAGE_POOL, t2, t3)                                                                     # op 2
    t4 = tensor(5, 4, 6)
    mul_op(t2, t3, t4, act=(-120, 110))                                                                      # op 3
    t5 = tensor(5, 4, 18)
    tables = rng.integers(-128, 128, (3, 256))
    tables[1] = np.arange(-128, 128)        # an identity table: the runtime's plain copy
    b.op(sb.CONCAT, t4, t5, input1=t1, act=(-128, 127), weights=tables, params=(t2, -1))                # op 4: input3 absent (0xFFFFFFFF)
    t6 = tensor(5, 4, 18)
    mul_op(t5, t5, t6)                                                                                       # op 5
    t7 = tensor(1, 1, 18, like=t6)
    b.op(sb.GLOBAL_AVERAGE_POOL, t6, t7)                                                                     # op 6
    t8 = tensor(1, 1, CLASSES)
    b.weighted(rng, sb.FULLY_CONNECTED, t7, t8, (CLASSES, 18))                                             # op 7
    return b.build(t0, t8, mean=(0.3, 0.6, 0.5), std=(0.35, 0.2, 0.3))


def _op_word(op, at, value):
    def mutate(raw):
        off, _ = _section(raw, OPS)
        struct.pack_into("<I" if value >= 0 else "<i", raw, off + 128 * op + at, value)
        _fix_section(raw, OPS)
    return mutate


LUT_OP, MUL_OP, CONCAT_OP, MUL_SAME_OP = 1, 3, 4, 5
CASES = {
    "untouched": lambda raw: None,
    "MUL clamp stays legal": _op_word(MUL_OP, 52, -100),
    "CONCAT input2 out of range": _op_word(CONCAT_OP, 96, 999),
    "CONCAT input2 written later": _op_word(CONCAT_OP, 96, 6),
    "CONCAT input2 dropped (channels no longer add up)": _op_word(CONCAT_OP, 96, 0xFFFFFFFF),
    "CONCAT input3 set": _op_word(CONCAT_OP, 100, 1),
    "CONCAT params[2]": _op_word(CONCAT_OP, 104, 1),
    "CONCAT tables short": _op_word(CONCAT_OP, 68, 512),
    "CONCAT clamp": _op_word(CONCAT_OP, 52, -127),
    "CONCAT stride": _op_word(CONCAT_OP, 24, 1),
    "MUL input1 of another shape": _op_word(MUL_OP, 8, 0),
    "MUL input1 missing": _op_word(MUL_OP, 8, 0xFFFFFFFF),
    "MUL multipliers size": _op_word(MUL_OP, 84, 8),
    "MUL weights set": _op_word(MUL_OP, 68, 4),
    "MUL groups": _op_word(MUL_SAME_OP, 48, 1),
    "MUL params[0]": _op_word(MUL_OP, 96, 1),
    "LUT table short": _op_word(LUT_OP, 68, 255),
    "LUT input1 set": _op_word(LUT_OP, 8, 0),
    "LUT clamp": _op_word(LUT_OP, 56, 100),
    "LUT kernel": _op_word(LUT_OP, 16, 1),
}


def _lut_map_entry(c, value):
    """The grouped LUT's table for channel c set to value (the DATA section's CRC repaired)."""
    def mutate(raw):
        ops, _ = _section(raw, OPS)
        ref = struct.unpack_from("<I", raw, ops + 128 * LUT_OP + 64)[0]
        data, _ = _section(raw, sb.SEC_DATA)
        raw[data + ref + 256 * 3 + c] = value
        _fix_section(raw, sb.SEC_DATA)
    return mutate


GROUPED_LUT_CASES = {
    "untouched": lambda raw: None,
    "LUT channel names table 2 of 3 stays legal": _lut_map_entry(5, 2),
    "LUT channel names a table past the count": _lut_map_entry(3, 3),
    "LUT groups 1": _op_word(LUT_OP, 48, 1),
    "LUT groups 17": _op_word(LUT_OP, 48, 17),
    "LUT groups 2 with three tables' bytes": _op_word(LUT_OP, 48, 2),
    "LUT groups 0 with three tables' bytes": _op_word(LUT_OP, 48, 0),
    "LUT grouped map short": _op_word(LUT_OP, 68, 256 * 3 + 5),
}


# ShuffleNet's channel shuffle of 8 channels in 2 groups, and a Split's second half with one channel
# repeated (FORMAT.md allows repeats).
SHUFFLE = [0, 4, 1, 5, 2, 6, 3, 7]
SPLIT = [4, 5, 6, 7, 7]


def gather_graph(builder_cls, seed=7):
    """5x4x3 input -> conv to 8 channels -> GATHER shuffle -> GATHER split part (5 channels) -> FC over
    every pixel and channel, so a channel in the wrong place changes the logits."""
    rng = np.random.default_rng(seed)
    b = builder_cls(CLASSES)
    t0 = b.tensor(5, 4, 3, 0.05, -10)
    t1 = b.tensor(5, 4, 8, 0.04, 7)
    b.weighted(rng, sb.CONV, t0, t1, (8, 3, 3, 3), kernel=(3, 3), stride=(1, 1), pad=(1, 1, 1, 1), groups=1)  # op 0
    # GATHER keeps the input's quantisation; the builder writes weights as int8, so the int32
    # indices go in as their little-endian bytes.
    t2 = b.tensor(5, 4, 8, 0.04, 7)
    b.op(sb.GATHER, t1, t2, act=(-128, 127), weights=np.asarray(SHUFFLE, "<i4").view(np.int8))          # op 1
    t3 = b.tensor(5, 4, 5, 0.04, 7)
    b.op(sb.GATHER, t2, t3, act=(-128, 127), weights=np.asarray(SPLIT, "<i4").view(np.int8))            # op 2
    t4 = b.tensor(1, 1, CLASSES, 0.08, 3)
    b.weighted(rng, sb.FULLY_CONNECTED, t3, t4, (CLASSES, 5 * 4 * 5))                                      # op 3
    return b.build(t0, t4, mean=(0.3, 0.6, 0.5), std=(0.35, 0.2, 0.3))


def _gather_index(op, c, value):
    """Index c of a GATHER op's int32 weights set to value (the DATA section's CRC repaired)."""
    def mutate(raw):
        ops, _ = _section(raw, OPS)
        ref = struct.unpack_from("<I", raw, ops + 128 * op + 64)[0]
        data, _ = _section(raw, sb.SEC_DATA)
        struct.pack_into("<i", raw, data + ref + 4 * c, value)
        _fix_section(raw, sb.SEC_DATA)
    return mutate


def _tensor(t, fmt, at, *values):
    def mutate(raw):
        off, _ = _section(raw, TENSORS)
        struct.pack_into(fmt, raw, off + 32 * t + at, *values)
        _fix_section(raw, TENSORS)
    return mutate


SHUFFLE_OP, SPLIT_OP = 1, 2
GATHER_CASES = {
    "untouched": lambda raw: None,
    "GATHER index Cin-1 repeated stays legal": _gather_index(SHUFFLE_OP, 0, 7),
    "GATHER index out of range": _gather_index(SPLIT_OP, 4, 8),
    "GATHER index negative": _gather_index(SHUFFLE_OP, 2, -1),
    "GATHER weights short": _op_word(SHUFFLE_OP, 68, 4 * len(SHUFFLE) - 4),
    "GATHER output scale differs": _tensor(2, "<f", 16, 0.05),
    "GATHER output zero point differs": _tensor(2, "<i", 20, 8),
    "GATHER output H and W swapped": _tensor(3, "<2I", 4, 4, 5),   # same size: only GATHER's rule sees it
    "GATHER clamp": _op_word(SHUFFLE_OP, 52, -127),
    "GATHER input1 set": _op_word(SHUFFLE_OP, 8, 0),
    "GATHER kernel": _op_word(SHUFFLE_OP, 16, 1),
    "GATHER multipliers set": _op_word(SPLIT_OP, 84, 4),
}
# What the reference must name for each refused case: the rule the case breaks, not a side effect.
GATHER_REFERENCE_ERRORS = {
    "GATHER index out of range": "op 2 (GATHER): an index is outside 0...7",
    "GATHER index negative": "op 1 (GATHER): an index is outside 0...7",
    "GATHER weights short": "op 1 (GATHER): weights is 28 bytes, needs 32",
    "GATHER output scale differs": "op 1 (GATHER): output quantisation differs",
    "GATHER output zero point differs": "op 1 (GATHER): output quantisation differs",
    "GATHER output H and W swapped": "op 2 (GATHER): input (5, 4, 8) and output (4, 5, 5) differ in H or W",
    "GATHER clamp": "op 1 (GATHER): act range [-127, 127]",
    "GATHER input1 set": "op 1 (GATHER): input1 0x0 not 0xFFFFFFFF",
    "GATHER kernel": "op 1 (GATHER): unused kernel/stride/padding",
    "GATHER multipliers set": "op 2 (GATHER): unused DataRef multipliers",
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_runtime_and_reference_agree_on_new_fields(blob_builder, tmp_path, case):
    raw = bytearray(elementwise_graph(blob_builder))
    CASES[case](raw)
    assert_same_verdict(raw, case, tmp_path)


@pytest.mark.parametrize("case", GROUPED_LUT_CASES, ids=list(GROUPED_LUT_CASES))
def test_runtime_and_reference_agree_on_grouped_lut_fields(blob_builder, tmp_path, case):
    raw = bytearray(elementwise_graph(blob_builder, lut_groups=3))
    GROUPED_LUT_CASES[case](raw)
    assert_same_verdict(raw, case, tmp_path)


@pytest.mark.parametrize("case", GATHER_CASES, ids=list(GATHER_CASES))
def test_runtime_and_reference_agree_on_gather_fields(blob_builder, tmp_path, case):
    raw = bytearray(gather_graph(blob_builder))
    GATHER_CASES[case](raw)
    assert_same_verdict(raw, case, tmp_path)


@pytest.mark.parametrize("case", GATHER_CASES, ids=list(GATHER_CASES))
def test_reference_refuses_gather_cases_for_their_rule(blob_builder, case):
    # The runtime-side test only compares verdicts; this pins each case to the rule it breaks.
    raw = bytearray(gather_graph(blob_builder))
    GATHER_CASES[case](raw)
    if case not in GATHER_REFERENCE_ERRORS:
        sb.load(bytes(raw))
        return
    with pytest.raises(sb.BlobError) as error:
        sb.load(bytes(raw))
    assert str(error.value).startswith(GATHER_REFERENCE_ERRORS[case]), str(error.value)


def _runtime_and_reference(blob, tmp_path, isa):
    """int8 final logits from `sieve eval` (skips when the path is not available) and the reference's run.
    The NEON paths run these blobs under qemu-aarch64 in test_firmware.py."""
    blob_path = tmp_path / "hand-built.sieve"
    blob_path.write_bytes(blob)
    images = np.random.default_rng(9).integers(0, 256, (200, 5, 4, 3), dtype=np.uint8)
    np.save(tmp_path / "images.npy", images)
    np.save(tmp_path / "labels.npy", np.zeros(len(images), np.uint8))
    proc = subprocess.run([SIEVE_BIN, "eval", str(blob_path), "--images", str(tmp_path / "images.npy"), "--labels",
                           str(tmp_path / "labels.npy"), "--isa", isa, "--dump-logits", str(tmp_path / "d.npy")],
                          capture_output=True, text=True, timeout=120)
    if proc.returncode != 0 and "not available" in proc.stderr + proc.stdout:
        pytest.skip(f"{isa} is not available on this CPU")
    assert proc.returncode == 0, proc.stderr
    return np.load(tmp_path / "d.npy")[:, 0], sb.run(sb.load(str(blob_path)), images, keep_all=True)


@pytest.mark.parametrize("isa", ["scalar", "avx2", "avx512vnni"])
def test_runtime_equals_reference_on_hand_built_blob(blob_builder, tmp_path, isa):
    runtime, reference = _runtime_and_reference(elementwise_graph(blob_builder), tmp_path, isa)
    assert np.array_equal(runtime, reference["final"])
    # The run is not trivially constant: the new ops' outputs vary.
    for t in (2, 4, 5, 6):
        assert len(np.unique(reference["tensors"][t])) > 20, f"tensor {t} hardly varies"


@pytest.mark.parametrize("isa", ["scalar", "avx2", "avx512vnni"])
def test_runtime_equals_reference_on_grouped_lut_blob(blob_builder, tmp_path, isa):
    runtime, reference = _runtime_and_reference(elementwise_graph(blob_builder, lut_groups=3), tmp_path, isa)
    assert np.array_equal(runtime, reference["final"])
    lut_in, lut_out = reference["tensors"][1], reference["tensors"][2]
    op = sb.load(elementwise_graph(blob_builder, lut_groups=3)).ops[LUT_OP]
    for c, table in enumerate(LUT_GROUP_MAP):   # each channel through its own group's table
        assert np.array_equal(lut_out[..., c], op.weights[table][lut_in[..., c].astype(np.int16) + 128])
    assert len(np.unique(reference["final"])) > 20


@pytest.mark.parametrize("isa", ["scalar", "avx2", "avx512vnni"])
def test_runtime_equals_reference_on_gather_blob(blob_builder, tmp_path, isa):
    runtime, reference = _runtime_and_reference(gather_graph(blob_builder), tmp_path, isa)
    assert np.array_equal(runtime, reference["final"])
    # The logits vary, so a channel in the wrong place would show.
    assert len(np.unique(reference["final"])) > 20
