#!/usr/bin/env python3
"""Estimate a blob's time per op on Raspberry Pi cores from the host (docs/ESTIMATE.md).

Counts the AArch64 instructions each op's kernels execute under qemu-aarch64 (basic-block
execution counts from `-d exec,nochain,in_asm`), costs the hot blocks with llvm-mca's model of the
core and the rest at a stated IPC, and prints per-op and whole-network times at each Pi's clock.

    Tools/board/estimate.py BLOB [--core cortex-a72 ...] [--json]
    Tools/board/estimate.py --ops OPS_FILE ...     ops as Tools/board/board-ops.c reads them

Weights are random, drawn in [-63, 63] when the blob was quantised with 7-bit weights (its
provenance says so) or --weight-bits 7 is given, else in [-127, 127]: the neon conv picks its
quad form at pack time from the weights.

SIEVE_BIN (default .build/release/sieve) runs `sieve inspect --json BLOB`.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
from collections import Counter

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SYSROOT = "/usr/aarch64-linux-gnu"

# Per core: SIMD path the runtime picks, qemu CPU model with that ISA, llvm-mca -mcpu, IPC of the
# cold (rarely repeated) code, and the boards with their clocks in GHz.
CORES = {
    "cortex-a53": dict(path="neon", qemu="cortex-a53", mca="cortex-a53", ipc=0.6,
                       boards=[("Pi 3 B+", 1.4), ("Pi Zero 2 W", 1.0)]),
    "cortex-a55": dict(path="neondot", qemu="cortex-a76", mca="cortex-a55", ipc=0.7,
                       boards=[("A55 board (no Pi)", 1.8)]),
    "cortex-a72": dict(path="neon", qemu="cortex-a72", mca="cortex-a72", ipc=1.2, boards=[("Pi 4", 1.8)]),
    "cortex-a76": dict(path="neondot", qemu="cortex-a76", mca="cortex-a76", ipc=1.8, boards=[("Pi 5", 2.4)]),
}
HOT_EXECUTIONS = 64       # a block run at least this often in one op is costed by llvm-mca
HOT_RANGE = (1.0, 1.3)    # mca's steady state is a floor: cache misses and front-end stalls on top
IPC_RANGE = (1.5, 0.67)   # cold code: stated IPC times these factors for the low and high bound
MCA_ITERATIONS = 200


class EstimateError(Exception):
    pass


def run(command, **kwargs):
    try:
        return subprocess.run(command, check=True, capture_output=True, text=True, **kwargs).stdout
    except FileNotFoundError:
        raise EstimateError(f"{command[0]} is not installed")
    except subprocess.CalledProcessError as e:
        raise EstimateError(f"{' '.join(command[:3])}... failed: {e.stderr.strip()[-500:]}")


def ops_of_blob(blob):
    sieve = os.environ.get("SIEVE_BIN", os.path.join(ROOT, ".build/release/sieve"))
    if not os.path.exists(blob):
        raise EstimateError(f"no such blob: {blob}")
    if not os.path.exists(sieve):
        raise EstimateError(f"no sieve binary at {sieve}: swift build -c release --product sieve, or set SIEVE_BIN")
    info = json.loads(run([sieve, "inspect", "--json", blob]))
    weight_bits = 7 if "7-bit [-63, 63]" in info.get("provenance", "") else 8
    ops = []
    for op in info["ops"]:
        kernel = op.get("kernel", [1, 1])
        stride = op.get("stride", [1, 1])
        (ih, iw, ic), (oh, ow, oc) = op["input"], op["output"]
        if op["kind"] == "FULLY_CONNECTED":
            ih, iw, ic = 1, 1, ih * iw * ic
        ops.append(dict(index=op["index"], kind=op["kind"], head="head" in op, macs=op.get("macs", 0),
                        line=f"{op['kind']} {ih} {iw} {ic} {oh} {ow} {oc} {kernel[0]} {kernel[1]} {stride[0]} {stride[1]}"))
    return ops, weight_bits


def ops_of_file(path):
    ops = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            fields = line.split()
            if fields[0] in ("CALIBRATE", "PEAK"):
                if len(fields) != 2 or not fields[1].isdigit():
                    raise EstimateError(f"{path}: expected {fields[0]} and a count: {line}")
                macs = 0  # PEAK's MACs depend on the path: set per core
            else:
                if len(fields) != 11:
                    raise EstimateError(f"{path}: expected KIND and 10 integers: {line}")
                ih, iw, ic, oh, ow, oc, kh, kw = map(int, fields[1:9])
                macs = {"CONV": oh * ow * oc * kh * kw * ic, "DEPTHWISE_CONV": oh * ow * oc * kh * kw,
                        "FULLY_CONNECTED": ih * iw * ic * oh * ow * oc}.get(fields[0], 0)
            ops.append(dict(index=len(ops), kind=fields[0], head=False, macs=macs, line=line))
    return ops


def build(build_dir):
    """Cross-builds board-ops (static: fixed addresses, no loader in the trace) when out of date."""
    os.makedirs(build_dir, exist_ok=True)
    binary = os.path.join(build_dir, "board-ops")
    kernels = os.path.join(ROOT, "Sources/CSieveKernels")
    sources = [os.path.join(ROOT, "Tools/board/board-ops.c")]
    for sub in ("", "arm", "x86"):
        d = os.path.join(kernels, sub)
        sources += sorted(os.path.join(d, f) for f in os.listdir(d) if f.endswith(".c"))
    headers = [os.path.join(kernels, d, f) for d in ("include", "arm") for f in os.listdir(os.path.join(kernels, d))]
    newest = max(os.path.getmtime(f) for f in sources + headers)
    if not os.path.exists(binary) or os.path.getmtime(binary) < newest:
        run(["aarch64-linux-gnu-gcc", "-O3", "-static", "-fno-strict-aliasing", "-std=gnu11",
             "-I" + os.path.join(kernels, "include"), "-o", binary] + sources + ["-lm", "-lpthread"])
    return binary


def disassembly(binary):
    """Address -> instruction text in GNU syntax, targets replaced by a label llvm-mc accepts."""
    text = {}
    for line in run(["aarch64-linux-gnu-objdump", "-d", "--no-show-raw-insn", binary]).splitlines():
        m = re.match(r"\s+([0-9a-f]+):\s+(\S.*)$", line)
        if not m:
            continue
        insn = re.sub(r"\s*(//.*|<[^>]*>)", "", m.group(2)).strip()
        parts = insn.split(None, 1)
        if len(parts) == 2:  # a bare hex operand of 5+ digits is an address (d0...d31 are registers)
            operands = [re.sub(r"^[0-9a-f]{5,}$", "L0", o.strip()) for o in parts[1].split(",")]
            insn = parts[0] + " " + ", ".join(operands)
        text[int(m.group(1), 16)] = insn
    return text


def marker_address(binary):
    for line in run(["aarch64-linux-gnu-nm", binary]).splitlines():
        fields = line.split()
        if len(fields) == 3 and fields[2] == "board_mark":
            return int(fields[0], 16)
    raise EstimateError("board_mark not found in board-ops")


def trace(binary, cpu, path, ops_file, marker, op_count, weight_bits=8):
    """Runs board-ops under qemu, reading its log through a FIFO: per op, block -> executions;
    and block -> its instruction addresses (from in_asm)."""
    with tempfile.TemporaryDirectory() as tmp:
        fifo = os.path.join(tmp, "log")
        os.mkfifo(fifo)
        process = subprocess.Popen(["qemu-aarch64", "-L", SYSROOT, "-cpu", cpu, "-d", "exec,nochain,in_asm",
                                    "-D", fifo, binary, path, ops_file, str(weight_bits)],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        output = {}

        def wait():
            output["out"] = process.communicate()
            try:  # qemu may exit before opening the log: open the FIFO's other end so ours returns
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:
                pass  # no reader left: the log was read to its end

        reader = threading.Thread(target=wait)
        reader.start()
        counts = [Counter() for _ in range(op_count)]
        blocks = {}
        current, op, block = None, -1, None
        with open(fifo) as log:
            for line in log:
                if line.startswith("Trace"):
                    pc = int(line.split("/", 2)[1], 16)
                    if pc == marker:
                        op += 1
                        current = counts[op] if op < op_count else None
                    elif current is not None:
                        current[pc] += 1
                    block = None
                elif line.startswith("0x"):
                    address = int(line[2:line.index(":")], 16)
                    if block is None:
                        block = blocks[address] = []
                    block.append(address)
                else:
                    block = None
        reader.join()
        stdout, stderr = output["out"]
        if process.returncode != 0:
            raise EstimateError(f"board-ops failed under qemu -cpu {cpu}: {stderr.strip()[-500:]}")
        if op != op_count:
            raise EstimateError(f"expected {op_count + 1} markers in the qemu log, saw {op + 1}")
    return counts, blocks


BRANCHES = re.compile(r"^(b|b\.\w+|bl|br|blr|ret|cbz|cbnz|tbz|tbnz|svc)$")


def falls_through(pc, blocks, text):
    return not BRANCHES.match(text.get(blocks[pc][-1], "b").split()[0])


def chain(pc, blocks, text, into, executions):
    """The instructions of the piece of straight-line code the block at pc belongs to: qemu ends a
    block at a page boundary (and at its size limit) without a branch, so a loop body can come in
    two pieces; costed apart, each would pay its own pipeline fill or miss the other's work. A
    piece that falls into the next one belongs with it only when both ran equally often: then every
    run of one is a run of the other. (A loop's preheader also falls into the loop's head, once
    per call; taken in, its few instructions took a share of every iteration's cycles, and the same
    peak loop came out at 9.6 or 8.0 MACs/cycle depending on whether the linker put its head at a
    page boundary.) At most 8 pieces."""
    pieces = [pc]

    def together(a, b):
        return executions.get(a, 0) == executions.get(b, 0)

    while len(pieces) < 8:
        before = [q for q in into.get(pieces[0], ()) if together(q, pieces[0])]
        if not before:
            break
        pieces.insert(0, max(before))
    while len(pieces) < 8 and falls_through(pieces[-1], blocks, text):
        after = blocks[pieces[-1]][-1] + 4
        if after not in blocks or not together(pieces[-1], after):
            break
        pieces.append(after)
    return [a for p in pieces for a in blocks[p]]


def mca_cycles(mcpu, hot, blocks, text, executions):
    """Steady-state cycles of one execution of each hot block, all in one llvm-mca run (regions).
    A block split from its neighbours by qemu is costed as the whole piece of code (chain()) and
    takes its share of that region's cycles by instruction count. executions: block -> how often
    it ran in the whole trace (which pieces run together)."""
    source = ["L0:"]
    names = []
    share = {}
    into = {}  # block -> the blocks that fall into it
    for q in blocks:
        if falls_through(q, blocks, text) and blocks[q][-1] + 4 in blocks:
            into.setdefault(blocks[q][-1] + 4, []).append(q)
    for pc in sorted(hot):
        names.append(pc)
        instructions = chain(pc, blocks, text, into, executions)
        share[pc] = len(blocks[pc]) / len(instructions)
        source.append(f"# LLVM-MCA-BEGIN b{pc:x}")
        source += [text.get(a, "nop") for a in instructions]
        source.append(f"# LLVM-MCA-END b{pc:x}")
    out = run(["llvm-mca", "-mtriple=aarch64-linux-gnu", f"-mcpu={mcpu}", "-mattr=+dotprod,+i8mm",
               f"-iterations={MCA_ITERATIONS}", "-resource-pressure=0", "-instruction-info=0"],
              input="\n".join(source) + "\n")
    cycles, region = {}, None
    for line in out.splitlines():
        m = re.match(r"\[\d+\] Code Region - b([0-9a-f]+)", line)
        if m:
            region = int(m.group(1), 16)
        m = re.match(r"Total Cycles:\s+(\d+)", line)
        if m and region is not None:
            cycles[region] = int(m.group(1)) / MCA_ITERATIONS * share[region]
    missing = [pc for pc in names if pc not in cycles]
    if missing:
        raise EstimateError(f"llvm-mca gave no result for {len(missing)} blocks")
    return cycles


def mca_model(mcpu):
    """The scheduling model llvm-mca really uses for -mcpu: named by its resource units."""
    out = run(["llvm-mca", "-mtriple=aarch64-linux-gnu", f"-mcpu={mcpu}", "-iterations=1"],
              input="add x0, x0, x1\nmul v0.4s, v1.4s, v2.4s\n")
    units = re.findall(r"\[\d+(?:\.\d+)?\]\s+-\s+(\w+?)Unit", out)
    return (units[0] if units else "unknown") + " model"


def estimate(ops, core, binary, text, marker, ops_file, weight_bits):
    spec = CORES[core]
    counts, blocks = trace(binary, spec["qemu"], spec["path"], ops_file, marker, len(ops), weight_bits)
    for i, c in enumerate(counts):
        unknown = [pc for pc in c if pc not in blocks]
        if unknown:
            raise EstimateError(f"op {i}: {len(unknown)} executed blocks have no in_asm listing")
    hot = {pc for c in counts for pc, n in c.items() if n >= HOT_EXECUTIONS}
    executions = Counter()
    for c in counts:
        executions.update(c)
    cycles = mca_cycles(spec["mca"], hot, blocks, text, executions) if hot else {}
    rows = []
    peak_macs = {"neon": 32 * 8, "neondot": 32 * 16}[spec["path"]]  # per iteration, as sieve_peak_macs counts
    for op, c in zip(ops, counts):
        if op["kind"] == "PEAK":
            op = dict(op, macs=int(op["line"].split()[1]) * peak_macs)
        instructions = sum(n * len(blocks[pc]) for pc, n in c.items())
        hot_instructions = sum(n * len(blocks[pc]) for pc, n in c.items() if pc in hot)
        hot_cycles = sum(n * cycles[pc] for pc, n in c.items() if pc in hot)
        cold = instructions - hot_instructions
        ipc = spec["ipc"]
        point = hot_cycles + cold / ipc
        low = hot_cycles * HOT_RANGE[0] + cold / (ipc * IPC_RANGE[0])
        high = hot_cycles * HOT_RANGE[1] + cold / (ipc * IPC_RANGE[1])
        rows.append(dict(index=op["index"], kind=op["kind"], head=op["head"], macs=op["macs"], line=op["line"],
                         instructions=instructions, hot_instructions=hot_instructions, blocks=len(c),
                         hot_cycles=hot_cycles, cycles=point, cycles_low=low, cycles_high=high))
    return dict(core=core, path=spec["path"], weight_bits=weight_bits, qemu_cpu=spec["qemu"], mca_cpu=spec["mca"], mca_model=mca_model(spec["mca"]),
                cold_ipc=spec["ipc"], boards=[dict(board=b, ghz=g) for b, g in spec["boards"]], ops=rows)


def totals(result, heads):
    rows = [r for r in result["ops"] if heads or not r["head"]]
    keys = ("macs", "instructions", "hot_instructions", "cycles", "cycles_low", "cycles_high")
    return {k: sum(r[k] for r in rows) for k in keys}


def report(result, heads):
    ghz = result["boards"][0]["ghz"]
    print(f"== {result['core']}: path {result['path']} (qemu -cpu {result['qemu_cpu']}), llvm-mca -mcpu={result['mca_cpu']} "
          f"uses the {result['mca_model']}, cold code at IPC {result['cold_ipc']}, {result['weight_bits']}-bit weights; times at {ghz} GHz "
          f"({result['boards'][0]['board']})")
    print(f"{'op':>4} {'kind':<20} {'MACs':>10} {'instr':>11} {'hot %':>6} {'cycles':>11} {'us':>9} {'range us':>17} {'MAC/cyc':>8}")
    for r in result["ops"]:
        if r["head"] and not heads:
            continue
        us = r["cycles"] / ghz / 1e3
        print(f"{r['index']:>4} {r['kind']:<20} {r['macs']:>10} {r['instructions']:>11} "
              f"{100 * r['hot_instructions'] / max(r['instructions'], 1):>5.0f}% {r['cycles']:>11.0f} {us:>9.1f} "
              f"{r['cycles_low'] / ghz / 1e3:>8.1f}-{r['cycles_high'] / ghz / 1e3:<8.1f} "
              f"{r['macs'] / max(r['cycles'], 1):>8.2f}")
    t = totals(result, heads)
    what = "network with heads" if heads else "backbone (heads off)"
    print(f"total, {what}: {t['macs']} MACs, {t['instructions']} instructions ({100 * t['hot_instructions'] / max(t['instructions'], 1):.0f}% in hot blocks), "
          f"{t['cycles']:.0f} cycles ({t['cycles_low']:.0f}-{t['cycles_high']:.0f})")
    for b in result["boards"]:
        g = b["ghz"]
        print(f"  {b['board']} ({result['core']} {g} GHz, one core): {t['cycles'] / g / 1e6:.3f} ms "
              f"({t['cycles_low'] / g / 1e6:.3f}-{t['cycles_high'] / g / 1e6:.3f}), "
              f"{t['macs'] / max(t['cycles'], 1) * g:.2f} GMAC/s")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("blob", nargs="?", help="a .sieve blob (shapes from `sieve inspect --json`)")
    parser.add_argument("--ops", help="an ops file instead of a blob (board-ops.c's format)")
    parser.add_argument("--core", action="append", choices=sorted(CORES), help="default: all four")
    parser.add_argument("--heads", action="store_true", help="count the heads' ops in the totals too")
    parser.add_argument("--weight-bits", type=int, choices=(7, 8),
                        help="draw weights as 7- or 8-bit ones (default: what the blob's provenance says; 8 for --ops)")
    parser.add_argument("--json", action="store_true", help="one JSON document instead of the tables")
    parser.add_argument("--build-dir", default=os.path.join(ROOT, ".build/board"))
    args = parser.parse_args()
    if (args.blob is None) == (args.ops is None):
        parser.error("give exactly one of a blob and --ops")
    try:
        ops, blob_bits = ops_of_blob(args.blob) if args.blob else (ops_of_file(args.ops), 8)
        weight_bits = args.weight_bits or blob_bits
        if not ops:
            raise EstimateError("no ops to run")
        binary = build(args.build_dir)
        text, marker = disassembly(binary), marker_address(binary)
        with tempfile.NamedTemporaryFile("w", suffix=".ops") as f:
            f.write("".join(op["line"] + "\n" for op in ops))
            f.flush()
            results = [estimate(ops, core, binary, text, marker, f.name, weight_bits) for core in (args.core or sorted(CORES))]
    except (EstimateError, OSError, ValueError, KeyError) as e:
        print(f"estimate: {e}", file=sys.stderr)
        return 2
    if args.json:
        for r in results:
            r["total"] = totals(r, args.heads)
        json.dump(dict(heads=args.heads, results=results), sys.stdout, indent=1)
        print()
    else:
        for r in results:
            report(r, args.heads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
