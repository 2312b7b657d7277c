#!/usr/bin/env python3
"""Independent reader and int8 executor for Sieve blobs (format v1), written only from docs/FORMAT.md.

It exists to disagree with the Swift runtime when either one is wrong, so it shares no code with it
and does the arithmetic the plain way: int8 dot products as float64 matrix products (exact, every
product and partial sum is an integer far below 2^53), everything after that in int64.

    python3 Tools/reference/sieve_blob.py BLOB --images IDX --labels IDX [--limit N] [--json]
                                          [--dump-logits FILE.npy]

Library use:

    blob = load("model.sieve")          # validates everything FORMAT.md says load checks
    out = run(blob, images_u8)          # images [N,H,W] or [N,H,W,C] uint8
    out["final"]                        # int8 [N, class_count]
    out["heads"]                        # int8 [N, head_count, class_count], HEADS-record order
"""
import argparse
import json
import math
import os
import struct
import sys
import time
import unicodedata
from dataclasses import dataclass, field

import numpy as np

# ----------------------------------------------------------------------------------------------
# Errors and CRC-32C

class BlobError(ValueError):
    """The blob violates docs/FORMAT.md."""


class CRCError(BlobError):
    """A CRC-32C in the blob does not match the bytes it covers."""


def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _crc32c_table()


def crc32c(data, crc=0):
    """CRC-32C (Castagnoli, reflected 0x82F63B78, init and final XOR 0xFFFFFFFF).

    `crc` continues a previous result, so crc32c(b, crc32c(a)) == crc32c(a + b)."""
    table = _CRC_TABLE
    c = crc ^ 0xFFFFFFFF
    for b in bytes(data):
        c = table[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


# ----------------------------------------------------------------------------------------------
# Constants

MAGIC = b"SIEVEBLB"
HEADER_SIZE = 64
ENTRY_SIZE = 32
MODEL_SIZE = 96
TENSOR_SIZE = 32
OP_SIZE = 128
HEAD_SIZE = 32

SEC_MODEL, SEC_TENSORS, SEC_OPS, SEC_HEADS, SEC_LABELS, SEC_DATA, SEC_PROVENANCE = range(1, 8)
SECTION_NAMES = {1: "MODEL", 2: "TENSORS", 3: "OPS", 4: "HEADS", 5: "LABELS", 6: "DATA", 7: "PROVENANCE"}

CONV, DEPTHWISE_CONV, FULLY_CONNECTED, MAX_POOL, AVERAGE_POOL, GLOBAL_AVERAGE_POOL, ADD, CONCAT, MUL, LUT, GATHER = range(1, 12)
LUT_MAX_GROUPS, LUT_GROUPED_MAX_CHANNELS = 16, 4096   # FORMAT.md, LUT with table groups
OP_NAMES = {1: "CONV", 2: "DEPTHWISE_CONV", 3: "FULLY_CONNECTED", 4: "MAX_POOL", 5: "AVERAGE_POOL",
            6: "GLOBAL_AVERAGE_POOL", 7: "ADD", 8: "CONCAT", 9: "MUL", 10: "LUT", 11: "GATHER"}
TWO_INPUTS = (ADD, CONCAT, MUL)
NO_TENSOR = 0xFFFFFFFF

HEAD_EXCLUSION, HEAD_CONFIDENCE = 1, 2


def _round_up(x, m=64):
    return (x + m - 1) // m * m


# ----------------------------------------------------------------------------------------------
# Parsed blob

@dataclass
class Tensor:
    index: int
    n: int
    h: int
    w: int
    c: int
    scale: float        # the f32 value, as a Python float (exact)
    zero_point: int

    @property
    def shape(self):
        return (self.h, self.w, self.c)


@dataclass
class Op:
    index: int
    kind: int
    input0: int
    input1: int
    output: int
    kernel_h: int
    kernel_w: int
    stride_h: int
    stride_w: int
    pad_top: int
    pad_left: int
    pad_bottom: int
    pad_right: int
    groups: int
    act_min: int
    act_max: int
    refs: dict          # name -> (offset, size)
    params: tuple
    weights: np.ndarray = None      # int8, shaped per kind (GATHER: int32 channel indices)
    bias: np.ndarray = None         # int32 [Cout]
    multipliers: np.ndarray = None  # int32 [Cout] (ADD: 3)
    shifts: np.ndarray = None       # int32 [Cout] (ADD: 3)

    @property
    def name(self):
        return OP_NAMES.get(self.kind, f"kind{self.kind}")

    @property
    def inputs(self):
        """Every tensor the op reads: input0, input1, and CONCAT's params[0], params[1] (u32, absent = 0xFFFFFFFF)."""
        extra = [p & 0xFFFFFFFF for p in self.params[:2]] if self.kind == CONCAT else []
        return [t for t in [self.input0, self.input1] + extra if t != NO_TENSOR]


@dataclass
class Head:
    kind: int
    tap_tensor: int
    logits_tensor: int
    first_op: int
    op_count: int
    threshold: float
    exit_confidence: float


@dataclass
class Blob:
    tensor_count: int
    op_count: int
    head_count: int
    class_count: int
    input_tensor: int
    output_tensor: int
    input_channels: int
    mean: tuple
    std: tuple
    pixel_scale: float
    tensors: list
    ops: list
    heads: list
    labels: list
    provenance: str
    sections: dict = field(default_factory=dict)   # kind -> (offset, size)
    warnings: list = field(default_factory=list)

    @property
    def input(self):
        return self.tensors[self.input_tensor]

    def provenance_items(self):
        items = []
        for line in self.provenance.splitlines():
            if ":" in line:
                k, v = line.split(":", 1)
                items.append((k.strip(), v.strip()))
        return items


# ----------------------------------------------------------------------------------------------
# Reader

def _u32(b, off):
    return struct.unpack_from("<I", b, off)[0]


def _check(cond, msg):
    if not cond:
        raise BlobError(msg)


def load(source):
    """Parses and validates a blob from a path, bytes-like object, or returns a Blob unchanged."""
    if isinstance(source, Blob):
        return source
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as f:
            buf = f.read()
    else:
        buf = bytes(source)
    return _parse(buf)


def _parse(buf):
    size = len(buf)
    _check(size >= HEADER_SIZE, f"file is {size} bytes, shorter than the 64-byte header")
    _check(buf[0:8] == MAGIC, f"bad magic {buf[0:8]!r}")
    version, header_size, file_size, section_count, table_crc, header_crc = struct.unpack_from("<IIQIII", buf, 8)
    if crc32c(buf[0:32]) != header_crc:
        raise CRCError(f"header CRC-32C mismatch: stored {header_crc:#010x}, computed {crc32c(buf[0:32]):#010x}")
    _check(version == 1, f"format_version {version}, expected 1")
    _check(header_size == HEADER_SIZE, f"header_size {header_size}, expected 64")
    _check(file_size == size, f"file_size {file_size} but the file is {size} bytes")
    _check(1 <= section_count <= 16, f"section_count {section_count} not in 1...16")
    _check(not any(buf[36:64]), "header reserved bytes are not zero")
    table_end = HEADER_SIZE + ENTRY_SIZE * section_count
    _check(table_end <= size, "section table runs past the end of the file")
    table = buf[HEADER_SIZE:table_end]
    if crc32c(table) != table_crc:
        raise CRCError(f"section table CRC-32C mismatch: stored {table_crc:#010x}, computed {crc32c(table):#010x}")

    sections = {}
    for i in range(section_count):
        kind, flags, off, sz, crc, reserved = struct.unpack_from("<IIQQII", buf, HEADER_SIZE + ENTRY_SIZE * i)
        where = f"section entry {i} (kind {kind})"
        _check(kind in SECTION_NAMES, f"{where}: unknown kind")
        _check(kind not in sections, f"{where}: kind {SECTION_NAMES[kind]} appears twice")
        _check(flags == 0, f"{where}: flags {flags} not 0")
        _check(reserved == 0, f"{where}: reserved {reserved} not 0")
        _check(off % 64 == 0, f"{where}: offset {off} not a multiple of 64")
        _check(off >= table_end, f"{where}: offset {off} not after the section table (ends at {table_end})")
        _check(off + sz <= size, f"{where}: offset {off} + size {sz} past file_size {size}")
        payload = buf[off:off + sz]
        if crc32c(payload) != crc:
            raise CRCError(f"{SECTION_NAMES[kind]} section CRC-32C mismatch: stored {crc:#010x}, "
                           f"computed {crc32c(payload):#010x}")
        sections[kind] = (off, sz)
    for kind, name in SECTION_NAMES.items():
        _check(kind in sections, f"required section {name} missing")

    # No overlap; zero padding to 64 after each payload; at least 64 zero bytes at the end.
    ordered = sorted(sections.items(), key=lambda kv: kv[1][0])
    for (k0, (o0, s0)), (k1, (o1, s1)) in zip(ordered, ordered[1:]):
        _check(o0 + s0 <= o1, f"sections {SECTION_NAMES[k0]} and {SECTION_NAMES[k1]} overlap")
    for kind, (off, sz) in ordered:
        pad_end = min(_round_up(off + sz), size)
        _check(not any(buf[off + sz:pad_end]), f"{SECTION_NAMES[kind]} section padding is not zero")
    last_kind, (last_off, last_sz) = ordered[-1]
    tail = buf[last_off + last_sz:]
    _check(len(tail) >= 64, f"only {len(tail)} bytes after the last section, need at least 64 zero bytes")
    _check(not any(tail), "bytes after the last section are not zero")

    def payload(kind):
        off, sz = sections[kind]
        return buf[off:off + sz]

    # MODEL
    m = payload(SEC_MODEL)
    _check(len(m) >= MODEL_SIZE, f"MODEL section is {len(m)} bytes, needs {MODEL_SIZE}")
    (tensor_count, op_count, head_count, class_count, input_tensor, output_tensor, input_channels,
     m_reserved) = struct.unpack_from("<8I", m, 0)
    mean = struct.unpack_from("<4f", m, 32)
    std = struct.unpack_from("<4f", m, 48)
    pixel_scale = struct.unpack_from("<f", m, 64)[0]
    _check(1 <= tensor_count <= 4096, f"tensor_count {tensor_count} not in 1...4096")
    _check(1 <= op_count <= 4096, f"op_count {op_count} not in 1...4096")
    _check(0 <= head_count <= 64, f"head_count {head_count} not in 0...64")
    _check(2 <= class_count <= 1000, f"class_count {class_count} not in 2...1000")
    _check(input_tensor < tensor_count, f"input_tensor {input_tensor} out of range")
    _check(output_tensor < tensor_count, f"output_tensor {output_tensor} out of range")
    _check(1 <= input_channels <= 4, f"input_channels {input_channels} not in 1...4")
    _check(m_reserved == 0, "MODEL reserved field at 28 not 0")
    _check(not any(m[68:96]), "MODEL reserved bytes 68..<96 not zero")
    for c in range(input_channels):
        _check(math.isfinite(mean[c]), f"mean[{c}] not finite")
        _check(math.isfinite(std[c]) and std[c] > 0, f"std[{c}] = {std[c]} not > 0")
    _check(math.isfinite(pixel_scale) and pixel_scale > 0, f"pixel_scale {pixel_scale} not > 0")

    # TENSORS
    t = payload(SEC_TENSORS)
    _check(len(t) >= TENSOR_SIZE * tensor_count,
           f"TENSORS section is {len(t)} bytes, {tensor_count} records need {TENSOR_SIZE * tensor_count}")
    tensors = []
    for i in range(tensor_count):
        n, h, w, c, scale, zp, flags, reserved = struct.unpack_from("<4Ifi2I", t, TENSOR_SIZE * i)
        where = f"tensor {i}"
        _check(n == 1, f"{where}: n {n} not 1")
        for nm, v in (("h", h), ("w", w), ("c", c)):
            _check(1 <= v <= 65535, f"{where}: {nm} {v} not in 1...65535")
        _check(h * w * c <= 1 << 26, f"{where}: h*w*c {h * w * c} > 2^26")
        _check(math.isfinite(scale) and scale > 0, f"{where}: scale {scale} not finite and > 0")
        _check(-128 <= zp <= 127, f"{where}: zero_point {zp} not in -128...127")
        _check(flags == 0, f"{where}: flags {flags} not 0")
        _check(reserved == 0, f"{where}: reserved {reserved} not 0")
        tensors.append(Tensor(i, n, h, w, c, scale, zp))
    _check(tensors[input_tensor].c == input_channels,
           f"input_channels {input_channels} but the input tensor has c = {tensors[input_tensor].c}")
    out_t = tensors[output_tensor]
    _check(out_t.shape == (1, 1, class_count),
           f"output tensor {output_tensor} is {out_t.shape}, expected 1x1x1x{class_count}")

    # OPS
    data = payload(SEC_DATA)
    o = payload(SEC_OPS)
    _check(len(o) >= OP_SIZE * op_count, f"OPS section is {len(o)} bytes, {op_count} records need {OP_SIZE * op_count}")
    ops = []
    producer = {}
    warnings = []
    for i in range(op_count):
        f = struct.unpack_from("<16I", o, OP_SIZE * i)
        act_min, act_max = struct.unpack_from("<2i", o, OP_SIZE * i + 52)
        refvals = struct.unpack_from("<8I", o, OP_SIZE * i + 64)
        params = struct.unpack_from("<8i", o, OP_SIZE * i + 96)
        refs = {"weights": refvals[0:2], "bias": refvals[2:4], "multipliers": refvals[4:6], "shifts": refvals[6:8]}
        op = Op(i, f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8], f[9], f[10], f[11], f[12],
                act_min, act_max, refs, params)
        _validate_op(op, f[15], tensors, producer, input_tensor, data, warnings)
        producer[op.output] = i
        ops.append(op)
    for i in range(tensor_count):
        if i != input_tensor:
            _check(i in producer, f"tensor {i} is not written by any op")

    # HEADS
    hsec = payload(SEC_HEADS)
    _check(len(hsec) >= HEAD_SIZE * head_count,
           f"HEADS section is {len(hsec)} bytes, {head_count} records need {HEAD_SIZE * head_count}")
    heads = []
    for i in range(head_count):
        kind, tap, logits, first, count = struct.unpack_from("<5I", hsec, HEAD_SIZE * i)
        threshold = struct.unpack_from("<f", hsec, HEAD_SIZE * i + 20)[0]
        exit_confidence, r1 = struct.unpack_from("<fI", hsec, HEAD_SIZE * i + 24)
        heads.append(Head(kind, tap, logits, first, count, threshold, exit_confidence))
        where = f"head {i}"
        _check(kind in (HEAD_EXCLUSION, HEAD_CONFIDENCE), f"{where}: kind {kind} not 1 or 2")
        _check(math.isfinite(exit_confidence) and 0 <= exit_confidence <= 1
               and (exit_confidence == 0 or kind == HEAD_EXCLUSION),
               f"{where}: exit_confidence {exit_confidence} not in [0, 1] or set on a confidence head")
        _check(r1 == 0, f"{where}: reserved not 0")
        _check(count >= 1, f"{where}: op_count {count} < 1")
        _check(first + count <= op_count, f"{where}: ops {first}..<{first + count} past op_count {op_count}")
        _check(math.isfinite(threshold) and (threshold == 0 or 0 < threshold <= 1),
               f"{where}: threshold {threshold} not 0 or in (0, 1]")
        _check(tap < tensor_count and logits < tensor_count, f"{where}: tensor index out of range")
        _check(tensors[logits].shape == (1, 1, class_count), f"{where}: logits tensor {logits} not 1x1x1x{class_count}")
        _check(ops[first + count - 1].output == logits, f"{where}: logits tensor not written by the head's last op")
        _check(tap in producer and producer[tap] < first, f"{where}: tap tensor {tap} not written by an earlier op")
        _check(ops[first].input0 == tap or ops[first].input1 == tap, f"{where}: first head op does not read the tap")
        if i > 0:
            prev = heads[i - 1]
            _check(first >= prev.first_op + prev.op_count, f"{where}: overlaps or precedes head {i - 1}")
    head_of_op = {}
    for i, h in enumerate(heads):
        for k in range(h.first_op, h.first_op + h.op_count):
            head_of_op[k] = i
    for op in ops:
        for src in op.inputs:
            if src == input_tensor:
                continue
            src_head = head_of_op.get(producer[src])
            my_head = head_of_op.get(op.index)
            if my_head is None:
                _check(src_head is None, f"op {op.index} outside any head reads tensor {src} of head {src_head}")
            else:
                _check(src_head == my_head or src == heads[my_head].tap_tensor,
                       f"op {op.index} of head {my_head} reads tensor {src}, neither the tap nor its own")

    # LABELS
    lab = payload(SEC_LABELS)
    _check(len(lab) >= 4, "LABELS section too small")
    count = _u32(lab, 0)
    _check(count == class_count, f"LABELS count {count} != class_count {class_count}")
    _check(len(lab) >= 4 + 8 * count, "LABELS section too small for its table")
    labels = []
    for i in range(count):
        off, length = struct.unpack_from("<2I", lab, 4 + 8 * i)
        _check(1 <= length <= 255, f"label {i}: length {length} not in 1...255")
        _check(off + length <= len(lab), f"label {i}: bytes past the section")
        try:
            s = lab[off:off + length].decode("utf-8")
        except UnicodeDecodeError:
            raise BlobError(f"label {i}: not UTF-8")
        _check(not any(unicodedata.category(ch) == "Cc" or ch in '"\\' for ch in s),
               f"label {i}: {s!r} holds a control character, '\"' or '\\'")
        labels.append(s)

    # PROVENANCE
    try:
        provenance = payload(SEC_PROVENANCE).decode("utf-8")
    except UnicodeDecodeError:
        raise BlobError("PROVENANCE is not UTF-8")

    return Blob(tensor_count, op_count, head_count, class_count, input_tensor, output_tensor, input_channels,
                mean, std, pixel_scale, tensors, ops, heads, labels, provenance, sections, warnings)


def _validate_op(op, reserved, tensors, producer, input_tensor, data, warnings):
    where = f"op {op.index} ({op.name})"
    _check(op.kind in OP_NAMES, f"op {op.index}: unknown kind {op.kind}")
    _check(reserved == 0, f"{where}: reserved {reserved} not 0")
    count = len(tensors)
    for nm, t in (("input0", op.input0), ("output", op.output)):
        _check(t < count, f"{where}: {nm} {t} out of range")
    if op.kind in TWO_INPUTS:
        _check(op.input1 < count, f"{where}: input1 {op.input1} out of range")
    else:
        _check(op.input1 == NO_TENSOR, f"{where}: input1 {op.input1:#x} not 0xFFFFFFFF")
    if op.kind == CONCAT:
        in2, in3 = op.params[0] & 0xFFFFFFFF, op.params[1] & 0xFFFFFFFF
        _check(in2 == NO_TENSOR or in2 < count, f"{where}: input2 (params[0]) {in2} out of range")
        _check(in3 == NO_TENSOR or (in3 < count and in2 != NO_TENSOR),
               f"{where}: input3 (params[1]) {in3} out of range or set without input2")
    for src in op.inputs:
        _check(src == input_tensor or src in producer,
               f"{where}: reads tensor {src}, neither the graph input nor an earlier op's output")
    _check(op.output != input_tensor, f"{where}: writes the graph input")
    _check(op.output not in producer, f"{where}: tensor {op.output} already written by op {producer.get(op.output)}")

    x, y = tensors[op.input0], tensors[op.output]
    cin, cout = x.c, y.c
    spatial = op.kind in (CONV, DEPTHWISE_CONV, MAX_POOL, AVERAGE_POOL)
    uses_act = op.kind in (CONV, DEPTHWISE_CONV, FULLY_CONNECTED, ADD, MUL)
    uses_refs = {CONV: ("weights", "bias", "multipliers", "shifts"),
                 DEPTHWISE_CONV: ("weights", "bias", "multipliers", "shifts"),
                 FULLY_CONNECTED: ("weights", "bias", "multipliers", "shifts"),
                 ADD: ("multipliers", "shifts"),
                 CONCAT: ("weights",), MUL: ("multipliers", "shifts"), LUT: ("weights",),
                 GATHER: ("weights",)}.get(op.kind, ())

    geometry = (op.kernel_h, op.kernel_w, op.stride_h, op.stride_w, op.pad_top, op.pad_left, op.pad_bottom, op.pad_right)
    if spatial:
        for nm, v in (("kernel_h", op.kernel_h), ("kernel_w", op.kernel_w), ("stride_h", op.stride_h),
                      ("stride_w", op.stride_w)):
            _check(1 <= v <= 64, f"{where}: {nm} {v} not in 1...64")
        _check(op.pad_top < op.kernel_h and op.pad_bottom < op.kernel_h and
               op.pad_left < op.kernel_w and op.pad_right < op.kernel_w, f"{where}: padding not below the kernel size")
        span_h = x.h + op.pad_top + op.pad_bottom - op.kernel_h
        span_w = x.w + op.pad_left + op.pad_right - op.kernel_w
        _check(span_h >= 0 and span_w >= 0, f"{where}: kernel larger than the padded input")
        oh, ow = span_h // op.stride_h + 1, span_w // op.stride_w + 1
        _check((y.h, y.w) == (oh, ow), f"{where}: output {y.h}x{y.w}, formula gives {oh}x{ow}")
    elif op.kind in (FULLY_CONNECTED, ADD, CONCAT, MUL, LUT, GATHER):
        _check(not any(geometry), f"{where}: unused kernel/stride/padding fields not zero")
    # GLOBAL_AVERAGE_POOL: FORMAT.md lists "the pools" as having kernel 1...64 but gives GAP no window;
    # its geometry fields are not checked.

    if op.kind in (CONV, DEPTHWISE_CONV):
        _check(op.groups >= 1, f"{where}: groups {op.groups} < 1")
    elif op.kind == LUT:  # the table count: 0 for one table, else 2...16 tables, one per channel group
        _check(op.groups == 0 or 2 <= op.groups <= LUT_MAX_GROUPS, f"{where}: lut groups {op.groups} not 0 or 2...{LUT_MAX_GROUPS}")
        _check(op.groups == 0 or cin <= LUT_GROUPED_MAX_CHANNELS, f"{where}: lut with table groups has {cin} channels, more than {LUT_GROUPED_MAX_CHANNELS}")
    else:
        _check(op.groups == 0, f"{where}: unused groups field {op.groups} not zero")
    if op.kind == CONV:
        _check(cin % op.groups == 0 and cout % op.groups == 0, f"{where}: Cin {cin} / Cout {cout} not divisible by groups {op.groups}")
    elif op.kind == DEPTHWISE_CONV:
        _check(op.groups == cin, f"{where}: groups {op.groups} != Cin {cin}")
        _check(cout % cin == 0, f"{where}: Cout {cout} not a multiple of Cin {cin}")
    elif op.kind == FULLY_CONNECTED:
        _check(y.shape == (1, 1, cout), f"{where}: output {y.shape} not 1x1x1xCout")
    elif op.kind in (MAX_POOL, AVERAGE_POOL, GLOBAL_AVERAGE_POOL):
        _check(x.scale == y.scale and x.zero_point == y.zero_point, f"{where}: output quantisation differs from the input's")
        _check(cout == cin, f"{where}: Cout {cout} != Cin {cin}")
        if op.kind == GLOBAL_AVERAGE_POOL:
            _check(y.shape == (1, 1, cin), f"{where}: output {y.shape} not 1x1x1x{cin}")
    elif op.kind == ADD:
        z = tensors[op.input1]
        _check(x.shape == z.shape == y.shape, f"{where}: shapes {x.shape}, {z.shape} -> {y.shape} differ")
    elif op.kind == CONCAT:
        parts = [tensors[t] for t in op.inputs]
        _check(all((t.h, t.w) == (y.h, y.w) for t in parts), f"{where}: inputs differ from the output in H or W")
        _check(sum(t.c for t in parts) == y.c, f"{where}: output C {y.c} is not the sum of the inputs' C")
    elif op.kind == MUL:
        z = tensors[op.input1]
        _check(x.shape == y.shape, f"{where}: input0 {x.shape} and output {y.shape} differ")
        _check(z.shape in ((1, 1, y.c), y.shape), f"{where}: input1 {z.shape} is neither 1x1x{y.c} nor {y.shape}")
    elif op.kind == LUT:
        _check(x.shape == y.shape, f"{where}: input {x.shape} and output {y.shape} differ")
    elif op.kind == GATHER:
        _check((x.h, x.w) == (y.h, y.w), f"{where}: input {x.shape} and output {y.shape} differ in H or W")
        _check(x.scale == y.scale and x.zero_point == y.zero_point, f"{where}: output quantisation differs from the input's")

    if uses_act:
        _check(-128 <= op.act_min <= op.act_max <= 127, f"{where}: act range [{op.act_min}, {op.act_max}] invalid")
    elif op.kind in (CONCAT, LUT, GATHER):
        _check((op.act_min, op.act_max) == (-128, 127), f"{where}: act range [{op.act_min}, {op.act_max}] not -128...127 (no clamp)")
    elif (op.act_min, op.act_max) not in ((0, 0), (-128, 127)):
        # FORMAT.md's arithmetic for the pools has no clamp; this reference applies none.
        warnings.append(f"{where}: act range [{op.act_min}, {op.act_max}] on a pool is ignored")
    if op.kind == ADD:
        _check(0 <= op.params[0] <= 20, f"{where}: left_shift {op.params[0]} not in 0...20")
        _check(not any(op.params[1:]), f"{where}: params[1...7] not zero")
    elif op.kind == CONCAT:
        _check(not any(op.params[2:]), f"{where}: params[2...7] not zero")
    else:
        _check(not any(op.params), f"{where}: params not zero")

    # DataRefs
    if op.kind in (CONV, DEPTHWISE_CONV, FULLY_CONNECTED):
        if op.kind == CONV:
            wshape = (cout, op.kernel_h, op.kernel_w, cin // op.groups)
        elif op.kind == DEPTHWISE_CONV:
            wshape = (op.kernel_h, op.kernel_w, cout)
        else:
            wshape = (cout, x.h * x.w * x.c)
        need = {"weights": int(np.prod(wshape)), "bias": 4 * cout, "multipliers": 4 * cout, "shifts": 4 * cout}
    elif op.kind == ADD:
        need = {"multipliers": 12, "shifts": 12}
    elif op.kind == CONCAT:
        need = {"weights": 256 * len(op.inputs)}
    elif op.kind == MUL:
        need = {"multipliers": 4, "shifts": 4}
    elif op.kind == LUT:
        need = {"weights": 256 if op.groups == 0 else 256 * op.groups + cin}
    elif op.kind == GATHER:
        need = {"weights": 4 * cout}
    else:
        need = {}
    arrays = {}
    for nm, (off, sz) in op.refs.items():
        if nm not in uses_refs:
            _check(off == 0 and sz == 0, f"{where}: unused DataRef {nm} is ({off}, {sz}), not (0, 0)")
            continue
        _check(off % 64 == 0, f"{where}: {nm} offset {off} not a multiple of 64")
        _check(off + sz <= len(data), f"{where}: {nm} ({off}, {sz}) outside DATA ({len(data)} bytes)")
        _check(sz >= need[nm], f"{where}: {nm} is {sz} bytes, needs {need[nm]}")
        if op.kind in (CONCAT, MUL, LUT, GATHER):
            _check(sz == need[nm], f"{where}: {nm} is {sz} bytes, not exactly {need[nm]}")
        end = min(_round_up(off + sz), len(data))
        _check(not any(data[off + sz:end]), f"{where}: {nm} not followed by zero padding")
        raw = data[off:off + need[nm]]
        arrays[nm] = np.frombuffer(raw, dtype=np.int8 if nm == "weights" and op.kind != GATHER else "<i4").copy()
    if op.kind == LUT and op.groups:
        tables = 256 * op.groups
        op.weights = arrays["weights"][:tables].reshape(-1, 256)     # one table per channel group
        op.table_of_channel = arrays["weights"][tables:].view(np.uint8).astype(np.int64)
        _check(np.all(op.table_of_channel < op.groups), f"{where}: a channel names a table outside 0...{op.groups - 1}")
        return
    if op.kind in (CONCAT, LUT):
        op.weights = arrays["weights"].reshape(-1, 256)     # one table per input
        op.table_of_channel = None
        return
    if op.kind == GATHER:
        op.weights = arrays["weights"]
        _check(np.all((op.weights >= 0) & (op.weights < cin)), f"{where}: an index is outside 0...{cin - 1}")
        return
    if "weights" in arrays:
        op.weights = arrays["weights"].reshape(wshape)
        op.bias = arrays["bias"]
    if uses_refs:
        op.multipliers, op.shifts = arrays["multipliers"], arrays["shifts"]
        if op.kind == ADD:
            _check(np.all((op.multipliers >= 0)) and np.all((op.shifts >= 1) & (op.shifts <= 62)),
                   f"{where}: multipliers must be >= 0 and shifts in 1...62")
        else:
            _check(np.all((op.multipliers >= 1 << 30)), f"{where}: multipliers not in [2^30, 2^31)")
            _check(np.all((op.shifts >= 1) & (op.shifts <= 62)), f"{where}: shifts not in 1...62")


# ----------------------------------------------------------------------------------------------
# Input quantisation

def round_half_away(v):
    """C's round(): nearest integer, halves away from zero; exact for every double."""
    v = np.asarray(v, dtype=np.float64)
    t = np.trunc(v)
    frac = v - t            # exact
    return t + np.where(np.abs(frac) >= 0.5, np.sign(v), 0.0)


def input_table(blob):
    """int8 [input_channels, 256]: pixel value -> quantised input, per FORMAT.md (double precision)."""
    blob = load(blob)
    t = blob.input
    p = np.arange(256, dtype=np.float64)
    table = np.empty((blob.input_channels, 256), dtype=np.int8)
    for c in range(blob.input_channels):
        x = (p * float(blob.pixel_scale) - float(blob.mean[c])) / float(blob.std[c])
        q = round_half_away(x / float(t.scale)) + t.zero_point
        table[c] = np.clip(q, -128, 127).astype(np.int8)
    return table


def quantize_images(blob, images):
    """uint8 [N,H,W] or [N,H,W,C] -> int8 [N,H,W,C] through the input table."""
    blob = load(blob)
    t = blob.input
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise ValueError(f"images must be uint8, got {images.dtype}")
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[1:] != (t.h, t.w, t.c):
        raise ValueError(f"images {images.shape} do not match the input tensor {t.h}x{t.w}x{t.c}")
    table = input_table(blob)
    out = np.empty(images.shape, dtype=np.int8)
    for c in range(t.c):
        out[..., c] = table[c][images[..., c]]
    return out


# ----------------------------------------------------------------------------------------------
# Kernels (x: int8 [N,H,W,C]; results int8)

_I64 = np.int64


def rq(acc, M, s):
    """(acc * M + 2^(s-1)) >> s in int64; the arithmetic shift rounds half up."""
    acc = np.asarray(acc, dtype=_I64)
    M = np.asarray(M, dtype=_I64)
    s = np.asarray(s, dtype=_I64)
    return (acc * M + (np.int64(1) << (s - 1))) >> s


def _check_acc(acc, op):
    lo, hi = acc.min(initial=0), acc.max(initial=0)
    if lo < -(1 << 31) or hi >= 1 << 31:
        raise OverflowError(f"op {op.index} ({op.name}): accumulator [{lo}, {hi}] leaves int32; "
                            "FORMAT.md's int32 accumulation would overflow")


def _finish(acc, op, y):
    _check_acc(acc, op)
    q = rq(acc, op.multipliers.astype(_I64), op.shifts.astype(_I64)) + y.zero_point
    return np.clip(q, op.act_min, op.act_max).astype(np.int8)


def _pad(x, op, value, dtype):
    n, h, w, c = x.shape
    out = np.full((n, h + op.pad_top + op.pad_bottom, w + op.pad_left + op.pad_right, c), value, dtype=dtype)
    out[:, op.pad_top:op.pad_top + h, op.pad_left:op.pad_left + w, :] = x
    return out


def _taps(xp, op, oh, ow):
    """Yields (ky, kx, view [N,oh,ow,C]) of the padded input for every kernel position."""
    sh, sw = op.stride_h, op.stride_w
    for ky in range(op.kernel_h):
        for kx in range(op.kernel_w):
            yield ky, kx, xp[:, ky:ky + sh * (oh - 1) + 1:sh, kx:kx + sw * (ow - 1) + 1:sw, :]


def _exact_float(k):
    """The narrowest float type in which a length-k int8 dot product is exact in any summation order:
    every product is at most 2^14 in magnitude and every partial sum at most k * 2^14, so float32
    (integers up to 2^24) does while k <= 1024, float64 (2^53) far beyond any blob."""
    if k * 128 * 128 <= 1 << 24:
        return np.float32
    assert k * 128 * 128 < 1 << 53
    return np.float64


def _matmul_exact(a, b):
    """Integer matrix product of int8 operands through BLAS, exact (see _exact_float)."""
    ft = _exact_float(a.shape[-1])
    r = a.astype(ft, copy=False) @ b.astype(ft, copy=False)
    return r.astype(_I64)   # every value is an integer, the cast is exact


def conv(x, op, xt, yt):
    n = x.shape[0]
    oh, ow, cout = yt.h, yt.w, yt.c
    g_count = op.groups
    cg, cog = xt.c // g_count, cout // g_count
    xp = _pad(x, op, xt.zero_point, np.int8)
    kk = op.kernel_h * op.kernel_w
    acc = np.empty((n, oh, ow, cout), dtype=_I64)
    ft = _exact_float(kk * cg)
    sub = max(1, (1 << 23) // (oh * ow * kk * cg))     # images per im2col block
    for g in range(g_count):
        wg = op.weights[g * cog:(g + 1) * cog].reshape(cog, kk * cg).T.astype(ft)
        for b in range(0, n, sub):
            xb = xp[b:b + sub]
            m = xb.shape[0]
            patches = np.empty((m, oh, ow, op.kernel_h, op.kernel_w, cg), dtype=ft)
            for ky, kx, view in _taps(xb, op, oh, ow):
                patches[:, :, :, ky, kx, :] = view[..., g * cg:(g + 1) * cg]
            acc[b:b + m, ..., g * cog:(g + 1) * cog] = _matmul_exact(
                patches.reshape(m * oh * ow, kk * cg), wg).reshape(m, oh, ow, cog)
    acc += op.bias.astype(_I64)
    return _finish(acc, op, yt)


def depthwise_conv(x, op, xt, yt):
    n = x.shape[0]
    oh, ow, cout = yt.h, yt.w, yt.c
    mult = cout // xt.c
    xp = _pad(x, op, xt.zero_point, np.int8)
    if mult != 1:
        xp = xp[..., np.arange(cout) // mult]        # channel oc reads input channel oc / mult
    acc = np.zeros((n, oh, ow, cout), dtype=_I64)
    for ky, kx, view in _taps(xp, op, oh, ow):
        acc += view.astype(_I64) * op.weights[ky, kx].astype(_I64)
    acc += op.bias.astype(_I64)
    return _finish(acc, op, yt)


def fully_connected(x, op, xt, yt):
    n = x.shape[0]
    acc = _matmul_exact(x.reshape(n, -1), op.weights.T)     # NHWC flattening order
    acc += op.bias.astype(_I64)
    return _finish(acc, op, yt).reshape(n, 1, 1, yt.c)


def max_pool(x, op, xt, yt):
    xp = _pad(x, op, -1000, np.int16)       # padding never wins
    out = None
    for _, _, view in _taps(xp, op, yt.h, yt.w):
        out = view.copy() if out is None else np.maximum(out, view)
    assert out.min() >= -128
    return out.astype(np.int8)


def _mean_trunc(total, count):
    """(sum + n/2) / n if sum >= 0 else (sum - n/2) / n, C truncating division."""
    half = count // 2
    pos = (total + half) // count
    neg = -((-total + half) // count)
    return np.where(total >= 0, pos, neg)


def average_pool(x, op, xt, yt):
    n = x.shape[0]
    xp = _pad(x, op, 0, _I64)
    ones = _pad(np.ones((1, xt.h, xt.w, 1), dtype=_I64), op, 0, _I64)
    total = np.zeros((n, yt.h, yt.w, yt.c), dtype=_I64)
    count = np.zeros((1, yt.h, yt.w, 1), dtype=_I64)
    for (_, _, view), (_, _, cview) in zip(_taps(xp, op, yt.h, yt.w), _taps(ones, op, yt.h, yt.w)):
        total += view
        count += cview
    assert count.min() >= 1
    return _mean_trunc(total, count).astype(np.int8)


def global_average_pool(x, op, xt, yt):
    total = x.astype(_I64).sum(axis=(1, 2), keepdims=True)
    return _mean_trunc(total, np.int64(xt.h * xt.w)).astype(np.int8)


def add(x0, x1, op, t0, t1, yt):
    L = op.params[0]
    M, s = op.multipliers.astype(_I64), op.shifts.astype(_I64)
    a = rq((x0.astype(_I64) - t0.zero_point) << L, M[0], s[0])
    b = rq((x1.astype(_I64) - t1.zero_point) << L, M[1], s[1])
    q = rq(a + b, M[2], s[2]) + yt.zero_point
    return np.clip(q, op.act_min, op.act_max).astype(np.int8)


def concat(xs, op, yt):
    """Each input's channels in turn, through its table (T[q + 128])."""
    return np.concatenate([op.weights[k][x.astype(np.int16) + 128] for k, x in enumerate(xs)], axis=3)


def mul(x0, x1, op, t0, t1, yt):
    """rq((q0 - zp0) * (q1 - zp1), M, s) + zp_out, clamped; a 1x1xC input1 broadcasts over H, W."""
    product = (x0.astype(_I64) - t0.zero_point) * (x1.astype(_I64) - t1.zero_point)
    q = rq(product, np.int64(op.multipliers[0]), np.int64(op.shifts[0]))
    q = (((q + yt.zero_point) & 0xFFFFFFFF) ^ 0x80000000) - 0x80000000   # FORMAT.md: int32 wraps
    return np.clip(q, op.act_min, op.act_max).astype(np.int8)


def lut(x, op):
    """out = T[q + 128]; with table groups, channel c's table is T[table_of_channel[c]]."""
    if op.table_of_channel is None:
        return op.weights[0][x.astype(np.int16) + 128]
    return op.weights[op.table_of_channel, x.astype(np.int64) + 128]


def gather(x, op):
    """Output channel c is input channel index[c]: a copy, no arithmetic."""
    return x[..., op.weights]


def run_op(op, values, tensors):
    xt, yt = tensors[op.input0], tensors[op.output]
    x = values[op.input0]
    if op.kind == CONV:
        return conv(x, op, xt, yt)
    if op.kind == DEPTHWISE_CONV:
        return depthwise_conv(x, op, xt, yt)
    if op.kind == FULLY_CONNECTED:
        return fully_connected(x, op, xt, yt)
    if op.kind == MAX_POOL:
        return max_pool(x, op, xt, yt)
    if op.kind == AVERAGE_POOL:
        return average_pool(x, op, xt, yt)
    if op.kind == GLOBAL_AVERAGE_POOL:
        return global_average_pool(x, op, xt, yt)
    if op.kind == ADD:
        return add(x, values[op.input1], op, xt, tensors[op.input1], yt)
    if op.kind == CONCAT:
        return concat([values[t] for t in op.inputs], op, yt)
    if op.kind == MUL:
        return mul(x, values[op.input1], op, xt, tensors[op.input1], yt)
    if op.kind == LUT:
        return lut(x, op)
    if op.kind == GATHER:
        return gather(x, op)
    raise BlobError(f"op {op.index}: unknown kind {op.kind}")


# ----------------------------------------------------------------------------------------------
# Executor

def run(blob, images, chunk=250, keep_all=False):
    """Runs every op on a batch of uint8 images.

    Returns {'final': int8 [N, K], 'heads': int8 [N, head_count, K]} and, with keep_all,
    'tensors': {index: int8 [N, h, w, c]} for every tensor (the input included)."""
    blob = load(blob)
    q = quantize_images(blob, images)
    n = q.shape[0]
    k = blob.class_count
    final = np.empty((n, k), dtype=np.int8)
    heads = np.empty((n, blob.head_count, k), dtype=np.int8)
    kept = {} if keep_all else None
    for start in range(0, n, chunk):
        values = {blob.input_tensor: q[start:start + chunk]}
        for op in blob.ops:
            out = run_op(op, values, blob.tensors)
            t = blob.tensors[op.output]
            assert out.shape[1:] == (t.h, t.w, t.c) and out.dtype == np.int8, (op.index, out.shape)
            values[op.output] = out
        final[start:start + chunk] = values[blob.output_tensor].reshape(-1, k)
        for i, h in enumerate(blob.heads):
            heads[start:start + chunk, i] = values[h.logits_tensor].reshape(-1, k)
        if keep_all:
            for idx, v in values.items():
                kept.setdefault(idx, []).append(v)
    result = {"final": final, "heads": heads}
    if keep_all:
        result["tensors"] = {idx: np.concatenate(v) for idx, v in kept.items()}
    return result


def exact_logits(blob, tensors):
    """The exact logits (FORMAT.md, "Exact logits") from `run(..., keep_all=True)`'s tensors:
    float32 [N, 1 + head_count, K], [:, 0] the classifier's, [:, 1 + i] head i's."""
    ops = blob.ops
    final_writer = max(op.index for op in ops if op.output == blob.output_tensor)

    def readers(t):
        return [op.index for op in ops if t in op.inputs]

    def source(writer, earliest):
        op = ops[writer]
        out = blob.tensors[op.output]
        if op.kind == GLOBAL_AVERAGE_POOL and tensors[op.input0].shape[1] * tensors[op.input0].shape[2] <= 1 << 24:
            tap = blob.tensors[op.input0]
            x = tensors[op.input0]
            means = x.astype(_I64).sum(axis=(1, 2)).astype(np.float64) / (x.shape[1] * x.shape[2])
            return (np.float64(tap.scale) * (means - tap.zero_point)).astype(np.float32)
        if op.kind != FULLY_CONNECTED:
            q = tensors[op.output].reshape(len(tensors[op.output]), -1).astype(np.float64)
            return ((q - out.zero_point) * float(out.scale)).astype(np.float32)
        prev = ops[writer - 1] if writer - 1 >= earliest else None
        if prev is not None and prev.kind == GLOBAL_AVERAGE_POOL and prev.output == op.input0:
            tap = tensors[prev.input0]
            n = tap.shape[1] * tap.shape[2]
            sums = tap.astype(_I64).sum(axis=(1, 2))
        else:
            x = tensors[op.input0]
            n = 1
            sums = x.reshape(len(x), -1).astype(_I64)
        acc = n * op.bias.astype(_I64) + sums @ op.weights.astype(_I64).T
        z = acc.astype(np.float64) * np.ldexp(op.multipliers.astype(np.float64), -op.shifts.astype(np.int64))
        z = z * np.float64(out.scale) / np.float64(n)
        # The clamp bounds are float32 products, as the runtime computes them.
        if op.act_min > -128:
            z = np.maximum(z, np.float64(np.float32(out.scale) * np.float32(op.act_min - out.zero_point)))
        if op.act_max < 127:
            z = np.minimum(z, np.float64(np.float32(out.scale) * np.float32(op.act_max - out.zero_point)))
        return z.astype(np.float32)

    pooled = ops[final_writer - 1].output if final_writer > 0 else None
    private = pooled is not None and readers(pooled) == [final_writer] and \
        all(h.tap_tensor != pooled for h in blob.heads)
    rows = [source(final_writer, final_writer - 1 if private else final_writer)]
    for h in blob.heads:
        rows.append(source(h.first_op + h.op_count - 1, h.first_op))
    return np.stack(rows, axis=1)


# ----------------------------------------------------------------------------------------------
# CLI

def _read_idx(path):
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, os.path.join(os.path.dirname(here), "train"))
    import fmnist
    return fmnist.read_idx(path)


def describe(blob):
    lines = [f"{blob.tensor_count} tensors, {blob.op_count} ops, {blob.head_count} heads, {blob.class_count} classes"]
    for op in blob.ops:
        x, y = blob.tensors[op.input0], blob.tensors[op.output]
        lines.append(f"  op {op.index:3d} {op.name:20s} t{op.input0}{x.shape} -> t{op.output}{y.shape} "
                     f"k{op.kernel_h}x{op.kernel_w} s{op.stride_h}x{op.stride_w} "
                     f"p{op.pad_top},{op.pad_left},{op.pad_bottom},{op.pad_right} g{op.groups} "
                     f"act[{op.act_min},{op.act_max}] out scale {y.scale:.6g} zp {y.zero_point}")
    for i, h in enumerate(blob.heads):
        lines.append(f"  head {i}: kind {h.kind} tap t{h.tap_tensor} logits t{h.logits_tensor} "
                     f"ops {h.first_op}..<{h.first_op + h.op_count} threshold {h.threshold}")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description="Independent numpy reference for Sieve blobs (docs/FORMAT.md).")
    p.add_argument("blob")
    p.add_argument("--images")
    p.add_argument("--labels")
    p.add_argument("--limit", type=int)
    p.add_argument("--json", action="store_true")
    p.add_argument("--dump-logits", metavar="FILE.npy",
                   help="int8 (N, 1 + head_count, class_count): [:,0] final, [:,1+i] head i")
    p.add_argument("--describe", action="store_true", help="print the op list")
    args = p.parse_args(argv)

    t0 = time.time()
    blob = load(args.blob)
    for w in blob.warnings:
        print(f"warning: {w}", file=sys.stderr)
    if args.describe or not args.images:
        print(describe(blob))
        if not args.images:
            return 0
    images = _read_idx(args.images)
    labels = _read_idx(args.labels) if args.labels else None
    if args.limit is not None:
        images = images[:args.limit]
        labels = labels[:args.limit] if labels is not None else None
    t1 = time.time()
    out = run(blob, images)
    elapsed = time.time() - t1
    if args.dump_logits:
        np.save(args.dump_logits, np.concatenate([out["final"][:, None, :], out["heads"]], axis=1))
    result = {"images": int(len(images)), "seconds": round(elapsed, 3), "load_seconds": round(t1 - t0, 3)}
    if labels is not None:
        pred = out["final"].argmax(axis=1)          # first maximum on ties
        result["correct"] = int((pred == labels).sum())
        result["accuracy"] = 100.0 * result["correct"] / len(images)
    if args.json:
        print(json.dumps(result))
    else:
        acc = f", accuracy {result['accuracy']:.2f}% ({result['correct']}/{len(images)})" if labels is not None else ""
        print(f"{len(images)} images in {elapsed:.2f}s{acc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
