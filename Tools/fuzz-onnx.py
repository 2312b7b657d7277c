"""Mutation fuzzing of `sieve quantize`'s ONNX import: each mutant is a working model with one to
three structural changes (an attribute set to 0, -1 or 2^62, a node deleted, rewired or given
another op type, an initializer's dims, data type or bytes changed, a shape tensor's value pushed
to an extreme, nodes reordered or duplicated, the output moved), quantised with the release CLI.
A mutant passes when the CLI exits 0 with a blob, or 1 with one `error:` line that is not an
internal error; a signal (a Swift trap, a crash), any other status or a hang is a failure, and the
mutant is kept to reproduce it.

    python3 Tools/fuzz-onnx.py SEED.onnx... --calib CALIB.npy [--count N] [--seed S] [--keep DIR]

Tests/python/test_onnx_mutants.py runs a fixed set of mutants of models exported by torch, both
exporters; this script is for longer runs (`--count 2000`)."""
import argparse
import copy
import os
import random
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import numpy_helper

EXTREMES = [0, -1, 1, 2, 3, 5, 1 << 15, (1 << 31) - 1, -(1 << 31), 1 << 40, (1 << 62), -(1 << 63), (1 << 63) - 1]
OP_TYPES = ["Conv", "Relu", "Add", "Mul", "Sub", "Div", "Concat", "Gemm", "MatMul", "MaxPool", "AveragePool", "GlobalAveragePool",
            "Reshape", "Flatten", "Transpose", "Split", "Slice", "Gather", "Sigmoid", "HardSigmoid", "HardSwish", "Softmax",
            "BatchNormalization", "Pad", "ReduceMean", "ReduceMax", "Squeeze", "Unsqueeze", "Clip", "Where", "Erf", "Tanh",
            "Identity", "Shape", "Cast", "Resize", "Greater"]
INT64 = onnx.TensorProto.INT64


def tensor_names(model):
    names = [i.name for i in model.graph.input] + [t.name for t in model.graph.initializer]
    for node in model.graph.node:
        names.extend(o for o in node.output if o)
    return names


def mutate_attribute(model, rng):
    nodes = [n for n in model.graph.node if any(a.type in (onnx.AttributeProto.INT, onnx.AttributeProto.INTS, onnx.AttributeProto.FLOAT)
                                                 for a in n.attribute)]
    if not nodes:
        return None
    node = rng.choice(nodes)
    attrs = [a for a in node.attribute if a.type in (onnx.AttributeProto.INT, onnx.AttributeProto.INTS, onnx.AttributeProto.FLOAT)]
    a = rng.choice(attrs)
    value = rng.choice(EXTREMES)
    if a.type == onnx.AttributeProto.INT:
        a.i = value
    elif a.type == onnx.AttributeProto.FLOAT:
        a.f = rng.choice([0.0, -1.0, 1e30, float("nan"), float("inf"), 1e-30])
    elif len(a.ints) and rng.random() < 0.8:
        a.ints[rng.randrange(len(a.ints))] = value
    else:
        del a.ints[:]
        a.ints.extend(rng.choice(EXTREMES) for _ in range(rng.randrange(0, 9)))
    return f"{node.op_type} '{node.name}' attribute {a.name}"


def remove_attribute(model, rng):
    nodes = [n for n in model.graph.node if n.attribute]
    if not nodes:
        return None
    node = rng.choice(nodes)
    a = node.attribute.pop(rng.randrange(len(node.attribute)))
    return f"{node.op_type} '{node.name}' without attribute {a.name}"


def rewire_input(model, rng):
    nodes = [n for n in model.graph.node if n.input]
    node = rng.choice(nodes)
    k = rng.randrange(len(node.input))
    node.input[k] = rng.choice(tensor_names(model) + ["", "nowhere"])
    return f"{node.op_type} '{node.name}' input {k} rewired to '{node.input[k]}'"


def change_inputs_count(model, rng):
    node = rng.choice(list(model.graph.node))
    if node.input and rng.random() < 0.5:
        node.input.pop()
        return f"{node.op_type} '{node.name}' loses its last input"
    node.input.append(rng.choice(tensor_names(model)))
    return f"{node.op_type} '{node.name}' gains an input"


def delete_node(model, rng):
    k = rng.randrange(len(model.graph.node))
    node = model.graph.node[k]
    if node.input and node.output and rng.random() < 0.7:  # bypass: its readers read its first input
        for other in model.graph.node:
            for i, name in enumerate(other.input):
                if name == node.output[0]:
                    other.input[i] = node.input[0]
        for output in model.graph.output:
            if output.name == node.output[0]:
                output.name = node.input[0]
    del model.graph.node[k]
    return f"{node.op_type} '{node.name}' deleted"


def change_op_type(model, rng):
    node = rng.choice(list(model.graph.node))
    old, node.op_type = node.op_type, rng.choice(OP_TYPES)
    return f"'{node.name}' {old} -> {node.op_type}"


def mutate_initializer(model, rng):
    if not model.graph.initializer:
        return None
    t = rng.choice(list(model.graph.initializer))
    choice = rng.randrange(5)
    if choice == 0 and len(t.dims):
        t.dims[rng.randrange(len(t.dims))] = rng.choice([0, 1, 2, 3, 7, 1 << 20, 1 << 40, -1])
        return f"initializer '{t.name}' dims {list(t.dims)}"
    if choice == 1 and len(t.dims) > 1:
        dims = list(t.dims)
        rng.shuffle(dims)
        del t.dims[:]
        t.dims.extend(dims)
        return f"initializer '{t.name}' dims permuted to {dims}"
    if choice == 2:
        t.data_type = rng.choice([onnx.TensorProto.INT64, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16, onnx.TensorProto.INT8,
                                  onnx.TensorProto.STRING, 0, 99])
        return f"initializer '{t.name}' data type {t.data_type}"
    if choice == 3 and t.raw_data:
        t.raw_data = t.raw_data[:rng.randrange(len(t.raw_data))]
        return f"initializer '{t.name}' raw data cut to {len(t.raw_data)} bytes"
    values = numpy_helper.to_array(t).copy()
    if values.size == 0:
        return None
    flat = values.reshape(-1)
    if values.dtype == np.int64:
        flat[rng.randrange(flat.size)] = rng.choice(EXTREMES)
    elif values.dtype.kind == "f":
        flat[rng.randrange(flat.size)] = rng.choice([0.0, -1.0, 1e30, np.nan, np.inf, -np.inf])
    t.CopyFrom(numpy_helper.from_array(values, t.name))
    return f"initializer '{t.name}' value changed"


def mutate_constant(model, rng):
    """A Constant node's value (shapes, pads, axes, slice bounds written as Constants)."""
    nodes = [n for n in model.graph.node if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value"]
    if not nodes:
        return mutate_initializer(model, rng)
    node = rng.choice(nodes)
    values = numpy_helper.to_array(node.attribute[0].t).copy()
    if values.size and values.dtype == np.int64:
        values.reshape(-1)[rng.randrange(values.size)] = rng.choice(EXTREMES)
    elif values.size and values.dtype.kind == "f":
        values.reshape(-1)[rng.randrange(values.size)] = rng.choice([0.0, -1.0, 1e30, np.nan])
    else:
        values = np.array(rng.choice(EXTREMES), dtype=np.int64)
    node.attribute[0].t.CopyFrom(numpy_helper.from_array(values, node.attribute[0].t.name))
    return f"Constant '{node.name}' value {values.reshape(-1)[:8].tolist()}"


def reorder_nodes(model, rng):
    nodes = model.graph.node
    i, j = rng.randrange(len(nodes)), rng.randrange(len(nodes))
    a, b = copy.deepcopy(nodes[i]), copy.deepcopy(nodes[j])
    nodes[i].CopyFrom(b)
    nodes[j].CopyFrom(a)
    return f"nodes {i} and {j} swapped"


def duplicate_node(model, rng):
    node = rng.choice(list(model.graph.node))
    model.graph.node.insert(rng.randrange(len(model.graph.node) + 1), copy.deepcopy(node))
    return f"{node.op_type} '{node.name}' written twice"


def move_output(model, rng):
    output = rng.choice(list(model.graph.output))
    output.name = rng.choice(tensor_names(model))
    if rng.random() < 0.3:
        model.graph.output.add().CopyFrom(output)
    return f"graph output now '{output.name}'"


def mutate_input_shape(model, rng):
    dims = model.graph.input[0].type.tensor_type.shape.dim
    d = dims[rng.randrange(len(dims))]
    if rng.random() < 0.3:
        d.dim_param = "dynamic"
    else:
        d.dim_value = rng.choice([0, 1, 2, 3, 4, 16, 31, 1 << 16, 1 << 31])
    return "graph input dims changed"


def mutate_metadata(model, rng):
    """A `sieve.*` prop's JSON: cut short, a value of the wrong type or size, a head that names nothing."""
    if not model.metadata_props:
        return None
    prop = rng.choice(list(model.metadata_props))
    value = prop.value
    prop.value = rng.choice([value[:rng.randrange(len(value) + 1)], "[]", "{}", "null", "[1e400]", "[-1]", "[0]", "[NaN]",
                             '[{"output": "nowhere", "kind": "exclusion"}]', '[{"output": "head0"}]', '"' + "x" * 100000 + '"',
                             "[" * 10000, value.replace("0", "-0").replace("1", "1e30"), value * 2])
    return f"metadata {prop.key} = {prop.value[:60]!r}"


MUTATIONS = [mutate_attribute, mutate_attribute, remove_attribute, rewire_input, change_inputs_count, delete_node, change_op_type,
             mutate_initializer, mutate_initializer, mutate_constant, mutate_constant, reorder_nodes, duplicate_node, move_output,
             mutate_input_shape, mutate_metadata]


def mutant(seed_model, rng):
    """A copy of `seed_model` with one to three mutations and what they were."""
    model = copy.deepcopy(seed_model)
    done = []
    while not done or (len(done) < 3 and rng.random() < 0.4):
        try:
            what = rng.choice(MUTATIONS)(model, rng)
        except (ValueError, TypeError, IndexError, OverflowError):  # a mutation that cannot apply to an earlier one's result
            what = None
        if what:
            done.append(what)
    return model, "; ".join(done)


def quantize(sieve, path, calib, out, norm=("--norm", "none"), timeout=120):
    """Runs `sieve quantize` on one mutant: (None, "quantised" or "refused") when it passed, else (what
    went wrong, None)."""
    cmd = [sieve, "quantize", path, *norm, "--calib", calib, "--calib-count", "4", "--no-bias-correction", "-o", out]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"no answer in {timeout} s", None
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    if proc.returncode == 0:
        return (None, "quantised") if os.path.isfile(out) else ("exit 0 without a blob", None)
    if proc.returncode == 1 and lines and lines[-1].startswith("error: ") and "internal error" not in lines[-1]:
        return None, "refused"
    return f"exit {proc.returncode}: {proc.stderr.strip()[-600:]}", None


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("seeds", nargs="+", help="working ONNX models (all tensors inside the file)")
    p.add_argument("--calib", required=True, help="calibration images for the seeds' input size")
    p.add_argument("--count", type=int, default=200, help="mutants per seed (default 200)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--keep", default="onnx-mutants", help="where failing mutants are written")
    p.add_argument("--sieve", default=os.environ.get("SIEVE_BIN", ".build/release/sieve"))
    args = p.parse_args()
    rng = random.Random(args.seed)
    failures, outcomes = 0, {"quantised": 0, "refused": 0}
    with tempfile.TemporaryDirectory() as tmp:
        for seed_path in args.seeds:
            seed_model = onnx.load(seed_path)
            # A seed that says how its input is normalised is quantised without --norm, so its metadata is read.
            norm = () if any(p.key == "sieve.input_mean" for p in seed_model.metadata_props) else ("--norm", "none")
            for k in range(args.count):
                model, what = mutant(seed_model, rng)
                path = os.path.join(tmp, "mutant.onnx")
                onnx.save(model, path)
                out = os.path.join(tmp, "out.sieve")
                if os.path.exists(out):
                    os.remove(out)
                failure, outcome = quantize(args.sieve, path, args.calib, out, norm)
                if outcome:
                    outcomes[outcome] += 1
                if failure:
                    failures += 1
                    os.makedirs(args.keep, exist_ok=True)
                    kept = os.path.join(args.keep, f"{os.path.basename(seed_path)[:-5]}-{k}.onnx")
                    onnx.save(model, kept)
                    print(f"FAIL {kept}: {what}\n    {failure}", flush=True)
            print(f"{seed_path}: {args.count} mutants", flush=True)
    print(f"{outcomes['quantised']} mutants quantised, {outcomes['refused']} refused in one line, {failures} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
