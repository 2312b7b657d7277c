"""Unit tests of the reference reader/executor (Tools/reference/sieve_blob.py) on blobs written by the
tiny writer in conftest.py, checked against a scalar transcription of docs/FORMAT.md's arithmetic."""
import struct
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import pytest

import sieve_blob as sb

# ----------------------------------------------------------------------------------------------
# A scalar, loop-by-loop transcription of FORMAT.md (Python integers: no overflow, >> is floor).


def rq(acc, M, s):
    return (acc * M + (1 << (s - 1))) >> s


def cdiv(a, b):
    """C's truncating integer division."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def avg(total, n):
    return cdiv(total + n // 2, n) if total >= 0 else cdiv(total - n // 2, n)


def clamp(v, lo, hi):
    return max(lo, min(hi, v))


def scalar_input(p, pixel_scale, mean, std, scale, zp):
    x = (p * pixel_scale - mean) / std
    v = Decimal(x / scale).quantize(Decimal(1), rounding=ROUND_HALF_UP)   # half away from zero
    return clamp(int(v) + zp, -128, 127)


def scalar_op(op, xs, tensors):
    x = xs[op.input0]
    xt, yt = tensors[op.input0], tensors[op.output]
    H, W, C = xt.shape
    OH, OW, OC = yt.shape
    out = np.zeros((OH, OW, OC), dtype=np.int64)

    def X(iy, ix, c):
        return int(x[iy, ix, c]) if 0 <= iy < H and 0 <= ix < W else xt.zero_point

    def finish(acc, oc):
        return clamp(rq(acc, int(op.multipliers[oc]), int(op.shifts[oc])) + yt.zero_point, op.act_min, op.act_max)

    if op.kind in (sb.CONV, sb.DEPTHWISE_CONV):
        for oy in range(OH):
            for ox in range(OW):
                for oc in range(OC):
                    acc = int(op.bias[oc])
                    for ky in range(op.kernel_h):
                        for kx in range(op.kernel_w):
                            iy = oy * op.stride_h - op.pad_top + ky
                            ix = ox * op.stride_w - op.pad_left + kx
                            if op.kind == sb.CONV:
                                cg = C // op.groups
                                g = oc // (OC // op.groups)
                                for ci in range(cg):
                                    acc += int(op.weights[oc, ky, kx, ci]) * X(iy, ix, g * cg + ci)
                            else:
                                acc += int(op.weights[ky, kx, oc]) * X(iy, ix, oc // (OC // C))
                    out[oy, ox, oc] = finish(acc, oc)
    elif op.kind == sb.FULLY_CONNECTED:
        flat = [int(v) for v in x.reshape(-1)]
        for o in range(OC):
            acc = int(op.bias[o]) + sum(int(w) * v for w, v in zip(op.weights[o], flat))
            out[0, 0, o] = finish(acc, o)
    elif op.kind in (sb.MAX_POOL, sb.AVERAGE_POOL):
        for oy in range(OH):
            for ox in range(OW):
                for c in range(C):
                    vals = []
                    for ky in range(op.kernel_h):
                        for kx in range(op.kernel_w):
                            iy = oy * op.stride_h - op.pad_top + ky
                            ix = ox * op.stride_w - op.pad_left + kx
                            if 0 <= iy < H and 0 <= ix < W:
                                vals.append(int(x[iy, ix, c]))
                    out[oy, ox, c] = max(vals) if op.kind == sb.MAX_POOL else avg(sum(vals), len(vals))
    elif op.kind == sb.GLOBAL_AVERAGE_POOL:
        for c in range(C):
            out[0, 0, c] = avg(int(x[:, :, c].astype(np.int64).sum()), H * W)
    elif op.kind == sb.ADD:
        x1, t1 = xs[op.input1], tensors[op.input1]
        L = op.params[0]
        M = [int(v) for v in op.multipliers]
        s = [int(v) for v in op.shifts]
        for idx in np.ndindex(OH, OW, OC):
            a = rq((int(x[idx]) - xt.zero_point) << L, M[0], s[0])
            b = rq((int(x1[idx]) - t1.zero_point) << L, M[1], s[1])
            out[idx] = clamp(rq(a + b, M[2], s[2]) + yt.zero_point, op.act_min, op.act_max)
    assert out.min() >= -128 and out.max() <= 127
    return out.astype(np.int8)


def scalar_run(blob, image):
    """One image [H,W,C] uint8 through every op; returns {tensor: int8 [h,w,c]}."""
    t = blob.input
    q = np.zeros((t.h, t.w, t.c), dtype=np.int8)
    for idx in np.ndindex(t.h, t.w, t.c):
        c = idx[2]
        q[idx] = scalar_input(int(image[idx]), blob.pixel_scale, blob.mean[c], blob.std[c], t.scale, t.zero_point)
    xs = {blob.input_tensor: q}
    for op in blob.ops:
        xs[op.output] = scalar_op(op, xs, blob.tensors)
    return xs


# ----------------------------------------------------------------------------------------------
# A random graph that uses every op kind, written with the conftest BlobBuilder.


def random_graph(builder_cls, seed, classes=5):
    """7x6x2 input; every op kind, grouped and depthwise (multiplier 2 and 1) convolutions, asymmetric
    padding and strides, two heads."""
    rng = np.random.default_rng(seed)
    b = builder_cls(classes)

    def tensor(h, w, c, like=None):
        if like is not None:
            return b.tensor(h, w, c, b.tensors[like][3], b.tensors[like][4])
        return b.tensor(h, w, c, float(rng.uniform(0.01, 0.1)), int(rng.integers(-30, 30)))

    t0 = tensor(7, 6, 2)
    t1 = tensor(4, 6, 4)
    # op0: grouped conv, 2 groups, stride 2x1, asymmetric padding
    b.weighted(rng, sb.CONV, t0, t1, (4, 3, 3, 1), relu=True, kernel=(3, 3), stride=(2, 1), pad=(1, 0, 1, 2), groups=2)
    # head 0 on t1: ops 1, 2
    t12 = tensor(1, 1, 4, like=t1)
    b.op(sb.GLOBAL_AVERAGE_POOL, t1, t12)
    t13 = tensor(1, 1, classes)
    b.weighted(rng, sb.FULLY_CONNECTED, t12, t13, (classes, 4))
    b.head(sb.HEAD_EXCLUSION, t1, t13, 1, 2, 0.25)
    # op3: depthwise, channel multiplier 2
    t2 = tensor(4, 3, 8)
    b.weighted(rng, sb.DEPTHWISE_CONV, t1, t2, (2, 3, 8), kernel=(2, 3), stride=(1, 2), pad=(0, 1, 1, 1), groups=4)
    # op4: pointwise conv, op5: ADD
    t3 = tensor(4, 3, 8)
    b.weighted(rng, sb.CONV, t2, t3, (8, 1, 1, 8), kernel=(1, 1), stride=(1, 1), groups=1)
    t4 = tensor(4, 3, 8)
    b.add_op(t2, t3, t4, act=(-100, 120))
    # op6: average pool with padding (counts exclude padding), op7: max pool with padding
    t5 = tensor(2, 3, 8, like=t4)
    b.op(sb.AVERAGE_POOL, t4, t5, kernel=(3, 2), stride=(2, 1), pad=(1, 1, 1, 0))
    t6 = tensor(2, 3, 8, like=t5)
    b.op(sb.MAX_POOL, t5, t6, kernel=(2, 2), stride=(1, 1), pad=(1, 1, 0, 0))
    # op8: depthwise, multiplier 1, stride 2
    t6b = tensor(1, 2, 8)
    b.weighted(rng, sb.DEPTHWISE_CONV, t6, t6b, (3, 3, 8), kernel=(3, 3), stride=(2, 2), pad=(1, 1, 1, 1), groups=8)
    # op9: conv with 4 groups of 2 -> 3 channels
    t7 = tensor(1, 2, 12)
    b.weighted(rng, sb.CONV, t6b, t7, (12, 1, 3, 2), relu=True, kernel=(1, 3), stride=(1, 1), pad=(0, 1, 0, 1), groups=4)
    # head 1 on t7: ops 10, 11
    t10 = tensor(1, 1, 12, like=t7)
    b.op(sb.GLOBAL_AVERAGE_POOL, t7, t10)
    t11 = tensor(1, 1, classes)
    b.weighted(rng, sb.FULLY_CONNECTED, t10, t11, (classes, 12))
    b.head(sb.HEAD_CONFIDENCE, t7, t11, 10, 2, 0.0)
    # classifier: FC 24 -> 16 (relu), FC 16 -> classes
    t8 = tensor(1, 1, 16)
    b.weighted(rng, sb.FULLY_CONNECTED, t7, t8, (16, 24), relu=True)
    t9 = tensor(1, 1, classes)
    b.weighted(rng, sb.FULLY_CONNECTED, t8, t9, (classes, 16))
    return b.build(t0, t9, mean=(0.3, 0.6), std=(0.35, 0.2), pixel_scale=1 / 255)


# ----------------------------------------------------------------------------------------------
# Tests


def test_crc32c_check_value():
    assert sb.crc32c(b"123456789") == 0xE3069283
    assert sb.crc32c(b"") == 0
    assert sb.crc32c(b"6789", sb.crc32c(b"12345")) == 0xE3069283


def test_reader_parses_builder_blob(blob_builder):
    blob = sb.load(random_graph(blob_builder, 0))
    assert (blob.tensor_count, blob.op_count, blob.head_count, blob.class_count) == (15, 14, 2, 5)
    assert blob.labels == [f"class {i}" for i in range(5)]
    assert [h.first_op for h in blob.heads] == [1, 10]
    assert blob.provenance_items() == [("tool", "conftest BlobBuilder")]
    assert sorted({op.kind for op in blob.ops}) == list(range(1, 8))


def _section(raw, kind):
    count = struct.unpack_from("<I", raw, 24)[0]
    for i in range(count):
        k, _, off, size, _, _ = struct.unpack_from("<IIQQII", raw, 64 + 32 * i)
        if k == kind:
            return off, size
    raise KeyError(kind)


@pytest.mark.parametrize("kind", range(1, 8), ids=lambda k: sb.SECTION_NAMES[k])
def test_flipped_byte_in_a_section_is_a_crc_error(blob_builder, kind):
    raw = bytearray(random_graph(blob_builder, 1))
    sb.load(bytes(raw))
    off, size = _section(raw, kind)
    raw[off + size // 2] ^= 0x10
    with pytest.raises(sb.CRCError, match=sb.SECTION_NAMES[kind]):
        sb.load(bytes(raw))


@pytest.mark.parametrize("where", [9, 20, 70, 100], ids=["header-version", "header-file-size", "table-0", "table-1"])
def test_flipped_byte_in_header_or_table_is_a_crc_error(blob_builder, where):
    raw = bytearray(random_graph(blob_builder, 1))
    raw[where] ^= 0x01
    with pytest.raises(sb.CRCError):
        sb.load(bytes(raw))


def test_structural_errors_are_rejected(blob_builder):
    raw = random_graph(blob_builder, 2)
    with pytest.raises(sb.BlobError, match="magic"):
        sb.load(b"SIEVEBLX" + raw[8:])
    with pytest.raises(sb.BlobError):
        sb.load(raw[:-1])                         # file_size mismatch
    with pytest.raises(sb.BlobError):
        sb.load(raw[:40])
    bad = bytearray(raw)
    off, size = _section(raw, 1)
    bad[off + size] = 1                           # nonzero padding after MODEL (96 bytes)
    with pytest.raises(sb.BlobError, match="padding"):
        sb.load(bytes(bad))


def test_invalid_op_is_rejected(blob_builder):
    b = blob_builder(2)
    x = b.tensor(4, 4, 1, 0.1, 0)
    y = b.tensor(1, 1, 2, 0.1, 0)
    # FC whose weights are one byte short
    b.op(sb.FULLY_CONNECTED, x, y, weights=np.zeros(31, np.int8), bias=[0, 0], multipliers=[1 << 30] * 2,
         shifts=[31, 31], act=(-128, 127))
    with pytest.raises(sb.BlobError, match="weights is 31 bytes, needs 32"):
        sb.load(b.build(x, y))


def test_rq_rounds_half_up():
    assert sb.rq(3, 1 << 30, 31) == 2          # 1.5 -> 2
    assert sb.rq(-3, 1 << 30, 31) == -1        # -1.5 -> -1
    assert sb.rq(-5, 1 << 30, 31) == -2        # -2.5 -> -2
    big = (1 << 31) - 1
    assert sb.rq(-(1 << 31), big, 62) == rq(-(1 << 31), big, 62)


def test_average_rounds_half_away_from_zero():
    total = np.array([5, -5, 4, -4, 7, -7, 0])
    assert sb._mean_trunc(total, np.int64(2)).tolist() == [3, -3, 2, -2, 4, -4, 0]
    assert sb._mean_trunc(total, np.int64(3)).tolist() == [avg(int(t), 3) for t in total]


def test_input_table_matches_scalar_formula(blob_builder):
    blob = sb.load(random_graph(blob_builder, 3))
    table = sb.input_table(blob)
    t = blob.input
    for c in range(blob.input_channels):
        expect = [scalar_input(p, blob.pixel_scale, blob.mean[c], blob.std[c], t.scale, t.zero_point) for p in range(256)]
        assert table[c].tolist() == expect
    # a tie: pixel 0, mean 0, std 1, scale 2 -> x/scale = 0; pixel 3, scale 2 -> 1.5 -> 2
    b = blob_builder(2)
    x = b.tensor(1, 1, 1, 2.0, 0)
    y = b.tensor(1, 1, 2, 1.0, 0)
    b.op(sb.FULLY_CONNECTED, x, y, weights=np.ones((2, 1), np.int8), bias=[0, 0], multipliers=[1 << 30] * 2,
         shifts=[30, 30], act=(-128, 127))
    tie = sb.load(b.build(x, y, mean=(0.0,), std=(1.0,), pixel_scale=1.0))
    tab = sb.input_table(tie)[0]
    assert tab[1] == 1 and tab[3] == 2 and tab[5] == 3 and tab[255] == 127


@pytest.mark.parametrize("seed", [10, 11, 12])
def test_vectorised_executor_matches_scalar_spec(blob_builder, seed):
    blob = sb.load(random_graph(blob_builder, seed))
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(5, 7, 6, 2), dtype=np.uint8)
    images[0] = 0
    images[1] = 255
    out = sb.run(blob, images, chunk=2, keep_all=True)
    for n in range(len(images)):
        ref = scalar_run(blob, images[n])
        for idx, value in ref.items():
            got = out["tensors"][idx][n]
            assert np.array_equal(got, value), f"image {n}, tensor {idx}: {np.argwhere(got != value)[:5]}"
        assert np.array_equal(out["final"][n], ref[blob.output_tensor].reshape(-1))
        for i, h in enumerate(blob.heads):
            assert np.array_equal(out["heads"][n, i], ref[h.logits_tensor].reshape(-1))
    # the graph is not degenerate: outputs vary and are not all clamped
    for idx, v in out["tensors"].items():
        assert len(np.unique(v)) > 2, f"tensor {idx} is nearly constant"


@pytest.mark.parametrize("k", [1024, 1025, 4096])
def test_extreme_dot_products_are_exact(blob_builder, k):
    """Every product at -128 * -128 and every sum at its largest: the float32 (k <= 1024) and float64
    matrix paths must still give the exact integer."""
    b = blob_builder(2)
    x = b.tensor(1, k, 1, 1.0, -128)
    y = b.tensor(1, 1, 2, 1.0, 0)
    w = np.full((2, k), -128, np.int8)
    w[1, ::2] = 127
    bias = [-(1 << 31) + 1, 12345]
    # rq(acc, 2^30, 31) = acc / 2 rounded half up, then clamped: compare through a wide act range
    b.op(sb.FULLY_CONNECTED, x, y, weights=w, bias=bias, multipliers=[1 << 30, 1 << 30], shifts=[62, 48],
         act=(-128, 127))
    # every pixel maps to -128: x = p / 255 - 1000 -> far below the range
    blob = sb.load(b.build(x, y, mean=(1000.0,), std=(1.0,), pixel_scale=1 / 255))
    images = np.arange(k, dtype=np.int64).reshape(1, 1, k) % 256
    xq = sb.quantize_images(blob, images.astype(np.uint8))
    assert (xq == -128).all()
    op = blob.ops[0]
    acc = sb._matmul_exact(xq.reshape(1, -1), op.weights.T)[0]
    assert acc.tolist() == [k * 16384, (k - (k + 1) // 2) * 16384 - (k + 1) // 2 * 128 * 127]
    out = sb.run(blob, images.astype(np.uint8))["final"][0]
    expect = [clamp(rq(int(a) + bb, 1 << 30, s), -128, 127) for a, bb, s in zip(acc.tolist(), bias, [62, 48])]
    assert out.tolist() == expect
