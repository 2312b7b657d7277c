"""Early exit end to end: `sieve tune` replays the runtime's exit rule over cached logits; the
runtime, run on the same images with the tuned blob, must make exactly the decisions tune predicted."""
import json
import math
import os
import subprocess
import sys

import pytest

from conftest import MODEL, REPO, TEST1000_IMAGES, TEST1000_LABELS, report, run_cli


@pytest.mark.parametrize("rule,search", [("exclusion", "paper"), ("confidence", "coordinate"), ("combined", "coordinate"),
                                         ("exclusion", "marginal"), ("confidence", "marginal"), ("combined", "marginal")])
def test_tune_predicts_runtime_exactly(quantized_blob, tmp_path, rule, search):
    tuned = tmp_path / f"{rule}.sieve"
    proc, _ = run_cli("tune", quantized_blob, "--images", TEST1000_IMAGES, "--labels", TEST1000_LABELS, "--indices", "all",
                      "--max-drop", "1.0", "--rule", rule, "--search", search, "--safety", "0", "-o", tuned, "--json")
    tune = json.loads(proc.stdout)
    predicted = tune["results"][0]
    assert predicted["rule"] == rule and predicted["search"] == search and predicted["accuracy"] >= tune["target_accuracy"]
    assert any(t > 0 for t in predicted["thresholds"]), "the search should turn at least one head on"
    proc, _ = run_cli("eval", tuned, "--images", TEST1000_IMAGES, "--labels", TEST1000_LABELS, "--json")
    measured = json.loads(proc.stdout)
    assert measured["exits"] == predicted["exits"]
    assert measured["accuracy"] == pytest.approx(predicted["accuracy"], abs=1e-9)
    assert measured["mean_macs"] == pytest.approx(predicted["mean_macs"], abs=1e-6)
    assert measured["accuracy_no_exit"] == pytest.approx(tune["reference_accuracy"], abs=1e-9)
    assert measured["mean_macs"] < measured["full_macs"]
    # The thresholds are in the blob for `sieve inspect` to show.
    info = json.loads(run_cli("inspect", tuned, "--json")[0].stdout)
    assert [h["threshold"] for h in info["heads"]] == pytest.approx(predicted["thresholds"])


def test_eval_plot_is_an_svg_with_every_rule(quantized_blob, tmp_path):
    import xml.etree.ElementTree as ET
    plot = tmp_path / "front.svg"
    run_cli("eval", quantized_blob, "--images", TEST1000_IMAGES, "--labels", TEST1000_LABELS, "--limit", 300, "--plot", plot)
    root = ET.parse(plot).getroot()
    ns = {"svg": "http://www.w3.org/2000/svg"}
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    series = {g.get("data-rule"): g for g in root.iter("{http://www.w3.org/2000/svg}g") if g.get("class") == "series"}
    assert set(series) == {"exclusion", "confidence", "combined"}
    for name, g in series.items():
        points = g.find("svg:polyline", ns).get("points").split()
        assert len(points) >= 3, f"{name}: a front needs several operating points"
    assert any(g.get("class") == "operating-point" for g in root.iter("{http://www.w3.org/2000/svg}g"))


def test_safety_margin_discounts_the_changed_images(quantized_blob):
    """--safety S judges a setting by its accuracy less S standard errors, sqrt(lost + gained) / images."""
    proc, _ = run_cli("tune", quantized_blob, "--images", TEST1000_IMAGES, "--labels", TEST1000_LABELS, "--indices", "all",
                      "--max-drop", "1.0", "--rule", "confidence", "--safety", "2", "--json")
    tune = json.loads(proc.stdout)
    r = tune["results"][0]
    assert tune["safety"] == 2
    assert r["judged_accuracy"] == pytest.approx(r["accuracy"] - 2 * 100 * math.sqrt(r["lost"] + r["gained"]) / tune["images"])
    assert r["judged_accuracy"] >= tune["target_accuracy"]
    assert r["accuracy"] == pytest.approx(tune["reference_accuracy"] + 100 * (r["gained"] - r["lost"]) / tune["images"])
    assert r["lost"] + r["gained"] > 0 and r["reduction"] > 0


def test_float_reference_makes_the_same_exits(quantized_blob, tmp_path):
    """Tools/train/float_exits.py applies the blob's rule to the float model; the int8 runtime must
    agree with it image by image on nearly every exit head and answer."""
    tuned, exits = tmp_path / "tuned.sieve", tmp_path / "int8.csv"
    run_cli("tune", quantized_blob, "--images", TEST1000_IMAGES, "--labels", TEST1000_LABELS, "--indices", "all",
            "--max-drop", "1.0", "--rule", "combined", "-o", tuned)
    run_cli("eval", tuned, "--images", TEST1000_IMAGES, "--labels", TEST1000_LABELS, "--dump-exits", exits)
    proc = subprocess.run([sys.executable, os.path.join(REPO, "Tools", "train", "float_exits.py"), MODEL, str(tuned),
                           "--images", TEST1000_IMAGES, "--labels", TEST1000_LABELS, "--compare", str(exits), "--json"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["images"] == 1000 and sum(result["exits"]) == 1000
    assert sum(result["exits"][:-1]) > 100, "the tuned blob should exit early on many images"
    agree = result["agreement"]
    report(f"int8 vs float exits on 1000 test images: head {agree['exit_head']:.1f} %, answer {agree['answer']:.1f} %, "
           f"both {agree['exit_head_and_answer']:.1f} %")
    # Measured 95-96 % on the 10k test set (docs/EARLY-EXIT.md); issue 3 asks for 98 %.
    assert agree["answer"] >= 98.5
    assert agree["exit_head_and_answer"] >= 93.0


def test_float_reference_rejects_a_blob_of_another_model(quantized_blob, tmp_path):
    """Heads are paired by position: a model with another head count is refused, not misread."""
    proc = subprocess.run([sys.executable, os.path.join(REPO, "Tools", "train", "float_exits.py"),
                           os.path.join(REPO, "models", "resnet-s.onnx"), quantized_blob, "--limit", "10"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 1
    assert "heads" in proc.stderr and "Traceback" not in proc.stderr
