"""Early exit end to end: `sieve tune` replays the runtime's exit rule over cached logits; the
runtime, run on the same images with the tuned blob, must make exactly the decisions tune predicted."""
import json

import pytest

from conftest import TEST1000_IMAGES, TEST1000_LABELS, run_cli


@pytest.mark.parametrize("rule,search", [("exclusion", "paper"), ("confidence", "coordinate"), ("combined", "coordinate")])
def test_tune_predicts_runtime_exactly(quantized_blob, tmp_path, rule, search):
    tuned = tmp_path / f"{rule}.sieve"
    proc, _ = run_cli("tune", quantized_blob, "--images", TEST1000_IMAGES, "--labels", TEST1000_LABELS, "--indices", "all",
                      "--max-drop", "1.0", "--rule", rule, "--search", search, "-o", tuned, "--json")
    tune = json.loads(proc.stdout)
    predicted = tune["results"][0]
    assert predicted["rule"] == rule and predicted["accuracy"] >= tune["target_accuracy"]
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
