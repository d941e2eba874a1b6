"""`gexbert demo --quick`: every step runs and the report, plots and results are written."""

from __future__ import annotations

import json

from gexbert_hf.cli import main
from gexbert_hf.outputs import OUTPUT_MARKER, read_marker


def test_demo_quick_writes_report_plots_and_results(tmp_path, capsys):
    output = tmp_path / "demo"
    assert main(["demo", "--quick", "--output", str(output), "--progress", "false"]) == 0
    results = json.loads((output / "results.json").read_text())
    assert results["quick"] and results["split"]["test"] == 50
    assert set(results["classification"]["methods"]) == {
        "GexBERT (fine-tuned, panel + unseen-gene queries)", "logistic regression (same panel)"}
    assert len(results["classification"]["panel"]) == 16
    assert not set(results["survival"]["anchors"]) & set(results["classification"]["panel"])
    assert set(results["survival"]["cox"]) == {"panel alone", "panel + GexBERT-restored anchors",
                                               "panel + ridge-restored anchors", "panel + true anchors (reference)"}
    assert set(results["imputation"]["methods"]) == {"GexBERT", "column mean (train)", "KNN (k=10, train reference)"}
    assert abs(results["imputation"]["missing_fraction"] - 0.5) < 0.05
    for name in ("pretraining.png", "classification.png", "survival.png", "imputation.png"):
        assert (output / name).stat().st_size > 1000, name
    report = (output / "report.md").read_text()
    assert "quick mode" in report and "## Summary" in report and "![imputation](imputation.png)" in report
    assert "| task | GexBERT | baseline | difference |" in capsys.readouterr().out
    marker = read_marker(output)  # issue #14: the next --overwrite removes exactly these
    assert marker["command"] == "demo" and marker["complete"]
    assert sorted(marker["files"]) == sorted(path.name for path in output.iterdir() if path.name != OUTPUT_MARKER)
    # the 2-D map of the test samples' embeddings, coloured by label, linked from the report
    assert (output / "embedding_map.png").stat().st_size > 1000
    assert "![embedding map](embedding_map.png)" in report and "coloured by er" in report
    embedding = results["embedding"]
    assert embedding["samples"] == 50 and embedding["label"] == "er"
    assert len(embedding["explained_variance_ratio"]) == 2 and 0 < sum(embedding["explained_variance_ratio"]) <= 1
