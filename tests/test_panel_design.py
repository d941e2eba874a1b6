"""`gexbert design-panel` in quick mode on the embedded GSE7390 cohort with a tiny model, the library call behind it,
the classical selectors, and its refusals of bad gene lists and sizes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from folders import write_folder

from gexbert_hf.cli import main
from gexbert_hf.loading import load_model_and_tokenizer
from gexbert_hf.panel_design import PanelInputError, design_panel
from gexbert_hf.study.panel_selection import greedy_lr_ranking, mrmr_ranking, pivoted_qr_ranking, random_panel


@pytest.fixture(scope="module")
def er_folder(embedded_cohort, tmp_path_factory) -> Path:
    """The embedded cohort's 76 genes; `cancer_type` = ER status (two classes)."""
    clinical = pd.DataFrame({"cancer_type": "ER_" + embedded_cohort.clinical["er"].astype(str)})
    return write_folder(tmp_path_factory.mktemp("data") / "tiny_er", embedded_cohort.expression, clinical)


@pytest.fixture(scope="module")
def other_folder(embedded_cohort, tmp_path_factory) -> Path:
    """The same cohort under another split: the transfer target."""
    clinical = pd.DataFrame({"cancer_type": "ER_" + embedded_cohort.clinical["er"].astype(str)})
    return write_folder(tmp_path_factory.mktemp("data") / "tiny_er_other", embedded_cohort.expression, clinical, seed=1)


@pytest.fixture(scope="module")
def quick_run(model_dir, er_folder, other_folder, tmp_path_factory):
    output = tmp_path_factory.mktemp("design") / "panel"
    code = main(["design-panel", "--model", str(model_dir), "--data_dir", str(er_folder), "--output", str(output),
                 "--size", "2,4", "--quick", "--minutes", "2", "--no_progress", "--eval_data_dir", str(other_folder)])
    assert code == 0
    return output, json.loads((output / "results.json").read_text())


def test_quick_run_writes_the_panel_path_and_judges_every_design(quick_run, embedded_cohort):
    output, results = quick_run
    panel = pd.read_csv(output / "panel.tsv", sep="\t")
    assert panel.columns[0] == "gene" and len(panel) == 4 and panel["gene"].is_unique
    assert set(panel["gene"]) <= set(embedded_cohort.expression.columns)
    assert (output / "panel_2.txt").read_text().split() == list(panel["gene"][:2])  # every size is a prefix
    judged = {(entry["method"], entry["size"]) for entry in results["evaluation"]["per_panel"]}
    skipped = {(entry["method"], entry["size"]) for entry in results["evaluation"]["skipped"]}
    expected = {(method, size) for method in ("GexBERT design", "variance", "mRMR", "L1 LR", "greedy LR")
                for size in (2, 4)}
    not_drawn = {(method, size) for method in ("variance", "mRMR", "L1 LR", "greedy LR") for size in (2, 4)
                 if f"classical selection: {method} skipped, the time budget was spent" in results["design"]["notes"]}
    assert expected <= judged | skipped | not_drawn and ("GexBERT design", 2) in judged  # a busy machine skips
    entry = next(e for e in results["evaluation"]["per_panel"] if e["method"] == "GexBERT design")
    assert set(entry["classification"]) == {"LR", "MLP", "GexBERT panel+restored→LR"}
    assert set(entry["restoration"]) == {"GexBERT", "KNN", "ridge"}
    assert all(0.0 <= reader["accuracy"] <= 1.0 for reader in entry["classification"].values())


def test_report_puts_the_method_table_first_and_names_the_genes(quick_run):
    output, results = quick_run
    report = (output / "report.md").read_text()
    first_section = report.split("## ")[1]
    assert first_section.startswith("Test split") and "| GexBERT design | 2 |" in first_section
    assert results["rankings"]["GexBERT design"][0] in first_section
    assert "## Targets" in report and (output / "accuracy_by_size.png").is_file()
    # the transfer cohort: judged (or skipped for time) under its own split, said in the report
    assert results["transfer"]["source"].endswith("tiny_er_other") and "## Transfer" in report
    assert results["transfer"]["data"]["n_test"] != results["data"]["n_test"]


def test_output_is_not_replaced_without_overwrite(quick_run, model_dir, er_folder, capsys):
    output, _ = quick_run
    code = main(["design-panel", "--model", str(model_dir), "--data_dir", str(er_folder), "--output", str(output),
                 "--size", "2", "--quick", "--no_compare", "--no_progress"])
    assert code == 2 and "--overwrite" in capsys.readouterr().err


def test_candidates_and_must_include_shape_the_panel(model_dir, er_folder, embedded_cohort, tmp_path):
    genes = list(embedded_cohort.expression.columns)
    (tmp_path / "candidates.txt").write_text("\n".join(genes[10:20]) + "\n")
    (tmp_path / "keep.txt").write_text(genes[40] + "\n")
    output = tmp_path / "out"
    code = main(["design-panel", "--model", str(model_dir), "--data_dir", str(er_folder), "--output", str(output),
                 "--size", "3", "--quick", "--no_compare", "--no_progress", "--objective", "restore",
                 "--candidates", str(tmp_path / "candidates.txt"), "--must_include", str(tmp_path / "keep.txt")])
    assert code == 0
    panel = pd.read_csv(output / "panel.tsv", sep="\t")
    assert panel["gene"][0] == genes[40] and bool(panel["forced"][0])
    assert set(panel["gene"][1:]) <= set(genes[10:20])


@pytest.mark.parametrize("flag", ["--candidates", "--must_include"])
def test_unknown_gene_in_a_list_is_named(model_dir, er_folder, tmp_path, capsys, flag):
    (tmp_path / "genes.txt").write_text("X200726_at\nNOT_A_GENE_XYZ\n")
    code = main(["design-panel", "--model", str(model_dir), "--data_dir", str(er_folder), "--output",
                 str(tmp_path / "out"), "--size", "2", "--quick", "--no_compare", "--no_progress",
                 flag, str(tmp_path / "genes.txt")])
    error = capsys.readouterr().err
    assert code == 2 and "NOT_A_GENE_XYZ" in error and flag in error
    assert not (tmp_path / "out" / "panel.tsv").exists()


def test_size_larger_than_the_candidates_is_refused(model_dir, er_folder, embedded_cohort, tmp_path, capsys):
    (tmp_path / "candidates.txt").write_text("\n".join(embedded_cohort.expression.columns[:5]) + "\n")
    code = main(["design-panel", "--model", str(model_dir), "--data_dir", str(er_folder), "--output",
                 str(tmp_path / "out"), "--size", "4,8", "--quick", "--no_compare", "--no_progress",
                 "--candidates", str(tmp_path / "candidates.txt")])
    error = capsys.readouterr().err
    assert code == 2 and "--size 8" in error and "5 candidates" in error


def test_library_call_follows_the_budget_and_keeps_order(model_dir, embedded_cohort):
    model, tokenizer = load_model_and_tokenizer(model_dir)
    raw = embedded_cohort.expression
    validation = np.random.default_rng(0).random(len(raw)) < 0.3
    design = design_panel(model, tokenizer, raw, None, validation, [3, 6], "restore", minutes=0.0,
                          max_score_rows=30, max_queries=12, progress=False)
    # no time at all: nothing is verified, the score test alone orders the genes, and the result says so
    assert len(design.genes) == 6 and len(set(design.genes)) == 6 and design.verified == [0] * 6
    assert design.notes and "score test" in design.notes[0]
    with pytest.raises(PanelInputError, match="needs class labels"):
        design_panel(model, tokenizer, raw, None, validation, [3], "classify", progress=False)


def test_classical_selectors_find_the_informative_genes():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 400)
    work = rng.normal(size=(400, 30))
    work[:, 7] += 3.0 * (labels == 1)  # two genes carry the class, the rest is noise
    work[:, 19] += 3.0 * (labels == 2)
    fit = rng.random(400) < 0.7
    pool = list(range(30))
    assert set(greedy_lr_ranking(work, labels, fit, [], pool, 2)) == {7, 19}
    assert set(mrmr_ranking(work, labels, [], pool, 2)) == {7, 19}
    # pivoted QR: after the first pivot, a duplicate of it is never the next
    work[:, 3] = work[:, 5]
    qr_order = pivoted_qr_ranking(work, [], pool, 30)
    assert abs(qr_order.index(3) - qr_order.index(5)) > 1 or 29 in (qr_order.index(3), qr_order.index(5))
    assert random_panel([4], pool, 5, seed=1)[0] == 4 and len(set(random_panel([], pool, 5, seed=1))) == 5
