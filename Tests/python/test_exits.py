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
