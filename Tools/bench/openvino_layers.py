"""OpenVINO's own per-layer times for an ONNX model (its PERF_COUNT profile), one thread, latency
hint, medians of per-layer means over --runs inferences after 50 warm-ups; to set beside
`sieve bench`'s per-op table. Give it the QDQ model peers.py caches (`--cache-dir`), or any ONNX.

    python3 Tools/bench/openvino_layers.py MODEL.onnx [--runs 200]
"""
import argparse
import collections
import time

import numpy as np
import openvino as ov


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--min-us", type=float, default=0.5, help="hide layers faster than this")
    args = parser.parse_args()
    compiled = ov.Core().compile_model(args.model, "CPU", {"PERF_COUNT": "YES", "INFERENCE_NUM_THREADS": "1", "NUM_STREAMS": "1",
                                                            "PERFORMANCE_HINT": "LATENCY"})
    request = compiled.create_infer_request()
    x = np.random.default_rng(0).normal(0, 1, tuple(compiled.inputs[0].shape)).astype(np.float32)
    for _ in range(50):
        request.infer({0: x})
    totals = collections.defaultdict(float)
    started = time.perf_counter()
    for _ in range(args.runs):
        request.infer({0: x})
        for p in request.profiling_info:
            totals[(p.node_name, p.node_type, p.exec_type)] += p.real_time.total_seconds() * 1e6
    wall = (time.perf_counter() - started) / args.runs * 1e6
    print(f"{'us':>8}  {'layer type':20} {'kernel':28} node")
    for (name, kind, kernel), total in totals.items():
        if total / args.runs >= args.min_us:
            print(f"{total / args.runs:8.1f}  {kind:20} {kernel:28} {name}")
    print(f"sum of layers {sum(totals.values()) / args.runs:.1f} us; wall time per inference (profiling on) {wall:.1f} us")


if __name__ == "__main__":
    main()
