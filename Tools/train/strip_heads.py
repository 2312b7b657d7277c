"""Removes a model's exit heads, so `sieve retrofit` can fit its own (docs/RETROFIT.md, the camera model):
keeps only the output `sieve.final_output` names, drops the nodes and initializers only the heads
read, and the `sieve.heads` metadata.

    python3 Tools/train/strip_heads.py models/camera-mobilenet.onnx noheads.onnx
"""
import argparse

import onnx


def strip_heads(model: onnx.ModelProto) -> onnx.ModelProto:
    meta = {p.key: p.value for p in model.metadata_props}
    final = meta.get("sieve.final_output", model.graph.output[0].name)
    graph = model.graph
    keep_outputs = [o for o in graph.output if o.name == final]
    if not keep_outputs:
        raise SystemExit(f"error: no graph output named '{final}'")

    # Walk back from the final output: every node it depends on stays, the rest only fed heads.
    producer = {out: node for node in graph.node for out in node.output}
    needed, live, stack = set(), set(), [final]
    while stack:
        name = stack.pop()
        if name in live:
            continue
        live.add(name)
        node = producer.get(name)
        if node is not None and id(node) not in needed:
            needed.add(id(node))
            stack.extend(i for i in node.input if i)
    nodes = [n for n in graph.node if id(n) in needed]
    initializers = [t for t in graph.initializer if t.name in live]

    del graph.output[:]
    graph.output.extend(keep_outputs)
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.initializer[:]
    graph.initializer.extend(initializers)
    kept_info = [v for v in graph.value_info if v.name in live]
    del graph.value_info[:]
    graph.value_info.extend(kept_info)
    props = [p for p in model.metadata_props if p.key != "sieve.heads"]
    del model.metadata_props[:]
    model.metadata_props.extend(props)
    return model


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model")
    p.add_argument("out")
    args = p.parse_args()
    model = onnx.load(args.model)
    before = len(model.graph.node)
    strip_heads(model)
    onnx.checker.check_model(model)
    onnx.save(model, args.out)
    print(f"{args.out}: {before} -> {len(model.graph.node)} nodes, outputs {[o.name for o in model.graph.output]}")


if __name__ == "__main__":
    main()
