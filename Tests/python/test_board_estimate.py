"""Tools/board/estimate.py (docs/ESTIMATE.md): structural facts of the board estimator that can
fail (instruction counts known in advance, counts that scale with MACs, loop rates the cores'
guides publish, faster core below slower), never a time. Needs qemu-aarch64, aarch64-linux-gnu-gcc
and llvm-mca; builds board-ops once into .build/board."""
import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import CALIB, MODEL, REPO, SIEVE_BIN, require_file, run_cli

ESTIMATE = os.path.join(REPO, "Tools", "board", "estimate.py")


def estimate(*args, check=True):
    proc = subprocess.run([sys.executable, ESTIMATE, *map(str, args)], capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, SIEVE_BIN=SIEVE_BIN))
    if check and proc.returncode != 0:
        pytest.fail(f"estimate.py {' '.join(map(str, args))} exited {proc.returncode}:\n{proc.stderr}")
    return proc


def by_core(proc):
    return {r["core"]: r for r in json.loads(proc.stdout)["results"]}


def test_counts_and_loop_rates_match_what_is_known(tmp_path):
    ops = tmp_path / "known.ops"
    ops.write_text("CALIBRATE 10000\nCALIBRATE 30000\nPEAK 1000\n")
    results = by_core(estimate("--ops", ops, "--core", "cortex-a72", "--core", "cortex-a76", "--json"))
    for core, published_macs_per_cycle in (("cortex-a72", 8), ("cortex-a76", 32)):
        short, long, peak = results[core]["ops"]
        # The calibration loop is 4 instructions an iteration: 20000 more iterations, 80000 more
        # instructions exactly; the few left over are the call into the loop and the marker.
        assert long["instructions"] - short["instructions"] == 80000, core
        assert 40000 <= short["instructions"] <= 40064, core
        # The peak loop: 32 multiply-accumulates, subs, b.ne an iteration.
        assert 34000 <= peak["instructions"] <= 34064, core
        # A72: smlal on one of its two NEON pipes, 1 a cycle (8 MACs); A76: sdot on both, 32 MACs.
        rate = peak["macs"] / peak["hot_cycles"]
        assert abs(rate - published_macs_per_cycle) <= 0.1 * published_macs_per_cycle, (core, rate)


@pytest.fixture(scope="module")
def small_blob(tmp_path_factory):
    """VGG-S quantised quickly: only its shapes matter here."""
    require_file(MODEL, "trained float model")
    out = tmp_path_factory.mktemp("board") / "vgg-s.sieve"
    run_cli("quantize", MODEL, "--calib", CALIB, "--calib-count", 20, "--no-bias-correction", "-o", out)
    return out


def test_vgg_s_estimate_is_complete_and_consistent(small_blob):
    proc = estimate(small_blob, "--core", "cortex-a72", "--core", "cortex-a76", "--heads", "--json")
    results = by_core(proc)
    inspect = json.loads(subprocess.run([SIEVE_BIN, "inspect", "--json", small_blob], capture_output=True, text=True,
                                        check=True).stdout)
    for core, r in results.items():
        assert [o["index"] for o in r["ops"]] == [o["index"] for o in inspect["ops"]], core
        for o in r["ops"]:
            assert o["instructions"] > 0 and o["cycles"] > 0, (core, o)
            assert o["cycles_low"] <= o["cycles"] <= o["cycles_high"], (core, o)
        convs = {o["line"].split(None, 1)[1]: o for o in r["ops"] if o["kind"] == "CONV"}
        # 28x28x32->32 and 14x14x32->64 (3x3): the second has half the MACs, so about half the work.
        big, half = convs["28 28 32 28 28 32 3 3 1 1"], convs["14 14 32 14 14 64 3 3 1 1"]
        assert big["macs"] == 2 * half["macs"]
        assert 1.7 < big["instructions"] / half["instructions"] < 2.3, core
        # Convolutions are nearly all loop: the hot blocks carry almost every instruction.
        assert big["hot_instructions"] > 0.9 * big["instructions"], core
        assert r["total"]["macs"] == inspect["full_macs"], core
    assert results["cortex-a72"]["mca_model"] and results["cortex-a72"]["path"] == "neon"
    assert results["cortex-a76"]["path"] == "neondot"
    # The A76 with sdot needs fewer instructions and fewer cycles than the A72 with smlal.
    assert results["cortex-a76"]["total"]["instructions"] < results["cortex-a72"]["total"]["instructions"]
    assert results["cortex-a76"]["total"]["cycles"] < results["cortex-a72"]["total"]["cycles"]


def test_report_names_each_board(tmp_path):
    ops = tmp_path / "small.ops"
    ops.write_text("CONV 8 8 16 8 8 16 3 3 1 1\n")
    out = estimate("--ops", ops, "--core", "cortex-a53").stdout
    assert "llvm-mca -mcpu=cortex-a53 uses the A53 model" in out
    for board in ("Pi 3 B+ (cortex-a53 1.4 GHz, one core)", "Pi Zero 2 W (cortex-a53 1.0 GHz, one core)"):
        assert board in out
    assert out.count("CONV") == 1 and f"total, backbone (heads off): {8 * 8 * 16 * 3 * 3 * 16} MACs" in out


def test_bad_input_is_refused(tmp_path):
    proc = estimate(tmp_path / "missing.sieve", check=False)
    assert proc.returncode == 2 and "no such blob" in proc.stderr
    ops = tmp_path / "bad.ops"
    ops.write_text("CONV 28 28\n")
    proc = estimate("--ops", ops, "--core", "cortex-a72", check=False)
    assert proc.returncode == 2 and "expected KIND and 10 integers" in proc.stderr
    ops.write_text("SOFTMAX 1 1 10 1 1 10 1 1 1 1\n")
    proc = estimate("--ops", ops, "--core", "cortex-a72", check=False)
    assert proc.returncode == 2 and "unknown op kind" in proc.stderr


def test_a_loop_split_by_a_page_boundary_costs_what_the_whole_loop_costs():
    # qemu ends a block at a page boundary: a loop body can come as a head piece falling into a
    # tail piece. Each piece must take its share of the whole loop's cycles, wherever the split is.
    if not shutil.which("llvm-mca"):
        pytest.skip("llvm-mca is not installed")
    sys.path.insert(0, os.path.dirname(ESTIMATE))
    import estimate as E
    body = ["smull v16.8h, v24.8b, v28.8b", "smlal2 v16.8h, v24.16b, v28.16b", "sadalp v0.4s, v16.8h"] * 8
    body += ["subs x15, x15, #1", "b.ne L0"]
    text = {0x1000 + 4 * i: insn for i, insn in enumerate(body)}
    end = 0x1000 + 4 * len(body)
    whole = {0x1000: list(range(0x1000, end, 4))}
    cycles_whole = E.mca_cycles("cortex-a72", set(whole), whole, text, {0x1000: 1000})[0x1000]
    for split in (2, 13, 24):
        at = 0x1000 + 4 * split
        blocks = {0x1000: list(range(0x1000, at, 4)), at: list(range(at, end, 4))}
        cycles = E.mca_cycles("cortex-a72", set(blocks), blocks, text, {0x1000: 1000, at: 1000})
        assert abs(cycles[0x1000] + cycles[at] - cycles_whole) < 0.01 * cycles_whole, (split, cycles, cycles_whole)


def test_a_preheader_falling_into_a_loop_is_not_costed_as_part_of_it():
    # When the linker puts a loop's head at a page boundary, qemu's block before it is the loop's
    # preheader (run once a call), which falls into the loop without a branch. It must not be
    # costed as part of every iteration: the loop costs the same wherever the linker puts it.
    if not shutil.which("llvm-mca"):
        pytest.skip("llvm-mca is not installed")
    sys.path.insert(0, os.path.dirname(ESTIMATE))
    import estimate as E
    preheader = ["stp d8, d9, [sp, #-64]!", "stp d10, d11, [sp, #16]", "stp d12, d13, [sp, #32]",
                 "stp d14, d15, [sp, #48]", "mov x15, x0", "movi v30.16b, #1", "movi v31.16b, #2"]
    loop = [f"smlal v{i % 30}.8h, v30.8b, v31.8b" for i in range(32)] + ["subs x15, x15, #1", "b.ne L0"]
    loop_at = 0x1000 + 4 * len(preheader)
    text = {0x1000 + 4 * i: insn for i, insn in enumerate(preheader + loop)}
    alone = {loop_at: [loop_at + 4 * i for i in range(len(loop))]}
    cycles_alone = E.mca_cycles("cortex-a72", set(alone), alone, text, {loop_at: 1000})[loop_at]
    blocks = {**alone, 0x1000: list(range(0x1000, loop_at, 4))}
    cycles = E.mca_cycles("cortex-a72", set(blocks), blocks, text, {0x1000: 1, loop_at: 1000})
    assert abs(cycles[loop_at] - cycles_alone) < 0.01 * cycles_alone, (cycles, cycles_alone)
    # 32 smlal on the A72's one multiply pipe: 32 cycles an iteration, 8 MACs a cycle.
    assert abs(32 * 8 / cycles[loop_at] - 8) <= 0.8, cycles


def test_seven_bit_weights_take_the_quad_form_on_neon(tmp_path):
    # The neon conv picks its quad form at pack time from the weights: 7-bit ones (4 x 63 x 128
    # fits an int16 lane) take it, random 8-bit ones do not. Fewer instructions (103 per 32
    # columns against 2 x 61) and, on the in-order A53, fewer cycles. A 7x7 output: at 14x14 this
    # conv would take the Winograd route, which has no quad form.
    ops = tmp_path / "conv.ops"
    ops.write_text("CONV 7 7 64 7 7 64 3 3 1 1\n")
    runs = {bits: by_core(estimate("--ops", ops, "--core", "cortex-a53", "--weight-bits", bits, "--json"))["cortex-a53"]
            for bits in (7, 8)}
    assert runs[7]["weight_bits"] == 7 and runs[8]["weight_bits"] == 8
    seven, eight = runs[7]["ops"][0], runs[8]["ops"][0]
    assert seven["macs"] == eight["macs"]
    assert seven["instructions"] < 0.95 * eight["instructions"], (seven["instructions"], eight["instructions"])
    assert seven["hot_cycles"] < eight["hot_cycles"], (seven["hot_cycles"], eight["hot_cycles"])
