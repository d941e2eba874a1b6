"""`gexbert evaluate` end to end in quick mode on tiny folders in the shared layout (the embedded GSE7390 cohort and a
small saved model), its refusals, and the time-budget logic with a fake clock (no 20,000-gene run in CI)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from folders import write_folder

from gexbert_hf.cli import main
from gexbert_hf.study.evaluate_plan import plan_for
from gexbert_hf.study.stage_budget import EVALUATE_RESERVE, EVALUATE_SHARES, RunClock, StageBudget

RATES = ["MCAR 30%", "MCAR 50%", "MCAR 70%", "MCAR 90%"]
IMPUTERS = {"GexBERT", "column mean", "KNN", "Iterative", "SoftImpute"}
UNKNOWN = ["NOTAGENE1", "NOTAGENE2"]


@pytest.fixture(scope="module")
def labelled_folder(embedded_cohort, tmp_path_factory) -> Path:
    """The embedded cohort's 76 genes plus two the model does not know; `cancer_type` = ER status."""
    expression = embedded_cohort.expression.copy()
    for i, gene in enumerate(UNKNOWN):
        expression[gene] = np.random.default_rng(i).normal(size=len(expression))
    clinical = pd.DataFrame({"cancer_type": "ER_" + embedded_cohort.clinical["er"].astype(str)})
    return write_folder(tmp_path_factory.mktemp("data") / "tiny_labelled", expression, clinical)


@pytest.fixture(scope="module")
def quick_run(model_dir, labelled_folder, tmp_path_factory):
    output = tmp_path_factory.mktemp("evaluate") / "out"
    code = main(["evaluate", "--model", str(model_dir), "--data_dir", str(labelled_folder), "--output", str(output),
                 "--quick", "--seeds", "2", "--no_progress"])
    assert code == 0
    return output, json.loads((output / "results.json").read_text())


def test_imputation_scores_every_method_at_every_rate(quick_run):
    _, results = quick_run
    assert results["errors"] == {}
    imputation = results["imputation"]
    assert list(imputation["per_scenario"]) == RATES and imputation["seeds"] == [0, 1]
    for scenario, entry in imputation["per_scenario"].items():
        assert set(entry["methods"]) == IMPUTERS, scenario
        for method, metrics in entry["methods"].items():
            for metric in ("rmse", "per_gene_r"):
                assert len(metrics[metric]) == 2 and np.isfinite(metrics[metric]).all(), (scenario, method, metric)
        assert len(entry["calibration_80"]) == 2 and all(0 <= c <= 1 for c in entry["calibration_80"])
        # the tuned baselines carry per-gene signal that the column mean cannot
        assert np.mean(entry["methods"]["SoftImpute"]["per_gene_r"]) > 0.05
        assert np.mean(entry["methods"]["column mean"]["per_gene_r"]) == 0
    assert results["data"]["unknown_genes"] == UNKNOWN and results["data"]["n_genes"] == 76
    assert {v["scenario"] for v in results["verdicts"]["imputation"]} == set(RATES)
    assert results["budget"]["stages"]["imputation"]["skipped"] == []


def test_report_lists_unknown_genes_and_carries_tables_and_plots(quick_run):
    output, _ = quick_run
    report = (output / "report.md").read_text()
    assert "2 genes unknown to the model's vocabulary" in report and all(f"`{g}`" in report for g in UNKNOWN)
    assert (output / "unknown_genes.txt").read_text().split() == UNKNOWN
    for heading in ("## Verdicts", "## 1. Imputation", "## 2. Classification", "## Time budget"):
        assert heading in report
    for png in ("imputation_rmse.png", "imputation_per_gene_r.png", "classification_accuracy.png"):
        assert (output / png).stat().st_size > 1000 and f"({png})" in report, png
    assert "80% interval holds" in report and "Nothing was skipped." in report


def test_classification_runs_on_labelled_data(quick_run):
    _, results = quick_run
    classification = results["classification"]
    assert classification["panel_sizes"] == ["16", "32", "64"] and classification["classes"] == ["ER_negative",
                                                                                                "ER_positive"]
    for entry in classification["per_panel"].values():
        assert set(entry["methods"]) == {"LR", "MLP", "GexBERT embedding→LR", "GexBERT panel+restored→LR"}
        for scores in entry["methods"].values():
            assert len(scores["accuracy"]) == 2 and all(0 < a <= 1 for a in scores["accuracy"])
            assert all(0 < f <= 1 for f in scores["macro_f1"])
    assert len(results["verdicts"]["classification"]) == 3


def test_output_is_marked_and_not_replaced_without_overwrite(quick_run, model_dir, labelled_folder, capsys):
    from gexbert_hf.outputs import read_marker

    output, _ = quick_run
    marker = read_marker(output)
    assert marker["command"] == "evaluate" and marker["complete"]
    assert {"results.json", "report.md", "imputation_rmse.png", "unknown_genes.txt"} <= set(marker["files"])
    before = (output / "results.json").read_bytes()
    assert main(["evaluate", "--model", str(model_dir), "--data_dir", str(labelled_folder), "--output",
                 str(output), "--quick"]) == 2
    assert "already exists; pass --overwrite" in capsys.readouterr().err
    assert (output / "results.json").read_bytes() == before


def test_unlabelled_folder_gets_no_classification(model_dir, embedded_cohort, tmp_path):
    folder = write_folder(tmp_path / "tiny_unlabelled", embedded_cohort.expression,
                          pd.DataFrame({"age": embedded_cohort.clinical["age"]}))
    output = tmp_path / "out"
    assert main(["evaluate", "--model", str(model_dir), "--data_dir", str(folder), "--output", str(output),
                 "--quick", "--seeds", "1", "--missing_rates", "50", "--no_progress"]) == 0
    results = json.loads((output / "results.json").read_text())
    assert results["classification"] == {"skipped": "no type labels"}
    assert list(results["budget"]["stages"]) == ["imputation"]
    assert list(results["imputation"]["per_scenario"]) == ["MCAR 50%"] and results["data"]["unknown_genes"] == []
    report = (output / "report.md").read_text()
    assert "unknown to the model's vocabulary" not in report and "Classification: not run (no type labels)" in report
    assert not (output / "classification_accuracy.png").exists() and not (output / "unknown_genes.txt").exists()


def test_tcga13_checkpoint_is_refused_on_tcga3(tmp_path, capsys):
    from gexbert_hf.loading import pretrained_path

    folder = tmp_path / "tcga3_xena_log2tpm"  # the name decides; refused before anything is read
    folder.mkdir()
    copy = tmp_path / "my_copy"  # a copy of the shipped folder carries its tokenizer fingerprint
    shutil.copytree(pretrained_path("tcga13-mrna"), copy)
    for model in ("tcga13-mrna", str(copy)):
        assert main(["evaluate", "--model", model, "--data_dir", str(folder), "--output", str(tmp_path / "o")]) == 2
        error = capsys.readouterr().err.strip()
        assert len(error.splitlines()) == 1 and "must not be judged on tcga3_xena_log2tpm" in error, error
        assert not (tmp_path / "o").exists()
    assert main(["evaluate", "--model", "tcga31-mirna", "--data_dir", str(folder), "--output",
                 str(tmp_path / "o")]) == 2  # not refused for overlap: fails on the empty folder instead
    assert "must not be judged" not in capsys.readouterr().err


def test_no_known_gene_is_one_line_naming_the_expected_ids(model_dir, embedded_cohort, tmp_path, capsys):
    expression = embedded_cohort.expression.iloc[:, :5].set_axis([f"ENSG0000010000{i}" for i in range(5)], axis=1)
    folder = write_folder(tmp_path / "ensembl", expression, None)
    assert main(["evaluate", "--model", str(model_dir), "--data_dir", str(folder), "--output",
                 str(tmp_path / "o")]) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]  # after the weight loader's progress bar
    assert error.startswith("gexbert evaluate: error: ") and "none of its 5 genes is in the tokenizer vocabulary" in error
    assert "Ensembl" in error and "the model expects" in error and not (tmp_path / "o").exists()


# ----------------------------------------------------------------------------------------------------------------------
# the time budget
# ----------------------------------------------------------------------------------------------------------------------
class ManualClock:
    """A clock that moves only when told (`advance`), so a unit's cost is whatever the test says."""

    def __init__(self) -> None:
        self.time = 0.0

    def __call__(self) -> float:
        return self.time

    def advance(self, seconds: float) -> None:
        self.time += seconds


def test_imputation_stage_runs_units_only_while_the_longest_fits_and_records_the_rest(model_dir, labelled_folder,
                                                                                      monkeypatch):
    from gexbert_hf.loading import load_model_and_tokenizer
    from gexbert_hf.study import evaluate

    model, tokenizer = load_model_and_tokenizer(model_dir)
    args = evaluate.EvaluateArguments(model=str(model_dir), data_dir=str(labelled_folder), output="unused",
                                      quick=True, seeds=2, progress=False)
    data, _ = evaluate.load_evaluation_data(args, tokenizer)
    clock, real = ManualClock(), evaluate.run_scenario

    def ten_seconds_each(*arguments, **options):
        clock.advance(10.0)
        return real(*arguments, **options)

    monkeypatch.setattr(evaluate, "run_scenario", ten_seconds_each)
    budget = StageBudget("imputation", 25.0, now=clock)  # 2 units fit; then 5 s are left, less than the 10 s unit
    results = evaluate.imputation_stage(model, tokenizer, data, args, budget)
    assert list(results["per_scenario"]) == ["MCAR 30%", "MCAR 50%"] and results["seeds"] == [0]
    assert [entry["item"] for entry in budget.skipped] == ["MCAR 70%, seed 0", "MCAR 90%, seed 0"] + [
        f"{rate}, seed 1" for rate in RATES]  # evaluate runs no first seed past the budget
    assert "less than its longest unit so far (0.2 min)" in budget.skipped[0]["reason"]
    assert budget.record()["units_done"] == 2


def test_a_tiny_budget_skips_everything_and_says_so(model_dir, labelled_folder, tmp_path):
    output = tmp_path / "out"
    assert main(["evaluate", "--model", str(model_dir), "--data_dir", str(labelled_folder), "--output", str(output),
                 "--quick", "--seeds", "2", "--time_budget_minutes", "0.0001", "--no_progress"]) == 0
    results = json.loads((output / "results.json").read_text())
    stages = results["budget"]["stages"]
    assert results["imputation"]["per_scenario"] == {} and len(stages["imputation"]["skipped"]) == 8
    assert len(stages["classification"]["skipped"]) == 6 and stages["classification"]["units_done"] == 0
    report = (output / "report.md").read_text()
    assert "No missing rate finished within the time budget" in report and "Skipped for time (imputation)" in report


def test_an_earlier_results_json_with_one_budget_record_per_stage_still_renders():
    from gexbert_hf.study.evaluate_report import budget_lines

    earlier = {"budget": {"imputation": {"stage": "imputation", "budget_seconds": 600, "used_seconds": 420,
                                         "units_done": 3, "skipped": ["imputation MCAR 90% seed 0"]}}}
    lines = "\n".join(budget_lines(earlier))
    assert "| imputation | 10.0 | 7.0 | 3 | 1 |" in lines and "imputation MCAR 90% seed 0." in lines


def test_plan_scales_the_baselines_with_the_gene_count():
    narrow, wide = plan_for(1526, quick=False, test_rows=200), plan_for(20000, quick=False, test_rows=200)
    assert (narrow.test_rows, narrow.reference_rows, narrow.iterative_rounds, narrow.soft_max_iter) == (200, 1200, 3,
                                                                                                      40)
    assert (wide.test_rows, wide.reference_rows, wide.tuning_rows, wide.iterative_rounds, wide.soft_max_iter) == (
        100, 200, 60, 1, 20)
    assert wide.tuning_genes == 2000 and plan_for(20000, quick=True, test_rows=200).test_rows == 30


def test_classification_gets_its_share_and_imputation_all_that_is_left_less_the_reserve():
    clock = ManualClock()
    run = RunClock(100.0, ["classification", "imputation"], started=0.0, shares=EVALUATE_SHARES,
                   reserve=EVALUATE_RESERVE, now=clock)
    clock.advance(10.0)  # loading
    assert run.stage("classification").seconds == pytest.approx((100 * (1 - EVALUATE_RESERVE) - 10) * 0.4)
    clock.advance(5.0)  # classification ended early: imputation gets the rest
    assert run.stage("imputation").seconds == pytest.approx(100 * (1 - EVALUATE_RESERVE) - 15)
    late = RunClock(100.0, ["imputation"], started=0.0, shares=EVALUATE_SHARES, reserve=EVALUATE_RESERVE, now=clock)
    clock.advance(200.0)
    assert late.stage("imputation").seconds == 0  # past the budget: nothing left, never negative


def test_h5ad_input_reads_its_obs_and_split(embedded_cohort, model_dir, tmp_path):
    from gexbert_hf.data.anndata import anndata_from_frame
    from gexbert_hf.loading import load_model_and_tokenizer
    from gexbert_hf.study.evaluate import EvaluateArguments, load_evaluation_data

    _, tokenizer = load_model_and_tokenizer(model_dir)
    adata = anndata_from_frame(embedded_cohort.expression)
    adata.obs["cancer_type"] = embedded_cohort.clinical["er"].astype(str).to_numpy()
    adata.write_h5ad(tmp_path / "drawn.h5ad")
    adata.obs["split"] = np.where(np.arange(adata.n_obs) % 4 == 0, "test", "train")
    adata.write_h5ad(tmp_path / "given.h5ad")
    given, record = load_evaluation_data(EvaluateArguments(model="m", data_dir=str(tmp_path / "given.h5ad"),
                                                           output="o"), tokenizer)
    assert record["split"] == "obs column `split`" and len(given.raw_test) == 50 and given.label_column == "cancer_type"
    drawn, record = load_evaluation_data(EvaluateArguments(model="m", data_dir=str(tmp_path / "drawn.h5ad"),
                                                           output="o"), tokenizer)
    assert record["split"].startswith("no split given") and 35 <= len(drawn.raw_test) <= 45
    assert record["folder"] == "drawn" and record["n_genes"] == 76


def test_adapted_checkpoint_is_scored_beside_the_shipped_one_on_scattered_nan(model_dir, embedded_cohort, tmp_path):
    """`--adapt_minutes`: the adapted model on the same masks as the checkpoint as given; a cohort with scattered
    missing cells is scored on the measured cells it hides only (every metric finite); the tuned values are checked
    against their grids; and a cohort whose test samples the checkpoint was trained on is warned about."""
    from gexbert_hf.training.sample_hashes import training_sample_hashes

    expression = embedded_cohort.expression.mask(np.random.default_rng(4).random(embedded_cohort.expression.shape)
                                                 < 0.05)
    folder = write_folder(tmp_path / "scattered", expression, None)
    split = pd.read_csv(folder / "split.tsv", sep="\t")
    trained_on = split.loc[split["split"] == "test", "sample"].head(3).tolist()
    model_copy = tmp_path / "model"
    shutil.copytree(model_dir, model_copy)
    config = json.loads((model_copy / "config.json").read_text())
    config["training_samples_hash"] = training_sample_hashes(trained_on, salt="x")
    (model_copy / "config.json").write_text(json.dumps(config))
    output = tmp_path / "out"
    with pytest.warns(UserWarning, match="3 of the cohort's .* test samples were in the checkpoint's training set"):
        code = main(["evaluate", "--model", str(model_copy), "--data_dir", str(folder), "--output", str(output),
                     "--quick", "--seeds", "1", "--missing_rates", "50,90", "--adapt_minutes", "1", "--no_progress"])
    assert code == 0
    results = json.loads((output / "results.json").read_text())
    assert results["errors"] == {} and results["data"]["scattered_missing_cells"] > 0
    assert results["data"]["genes_with_missing_values"] == [] and results["data"]["n_genes"] == 76
    assert results["adaptation"]["steps"] >= 1 and results["data"]["training_overlap"]["test"] == trained_on
    for entry in results["imputation"]["per_scenario"].values():
        assert {"GexBERT", "GexBERT adapted", "KNN", "SoftImpute"} <= set(entry["methods"])
        for method, values in entry["methods"].items():
            assert np.isfinite(values["rmse"]).all() and np.isfinite(values["per_gene_r"]).all(), method
    # the adapted model is no baseline: the checkpoint's verdicts are against the baselines only
    assert all(not v["best_rmse_baseline"].startswith("GexBERT") for v in results["verdicts"]["imputation"])
    assert len(results["verdicts"]["imputation_adapted"]) == 2
    report = (output / "report.md").read_text()
    assert "Shipped → adapted" in report and "WARNING: 3 test samples were in the checkpoint's training set" in report
    assert "Baseline tuning: KNN:" in report and "scattered missing cells" in report


def test_tuning_extends_a_grid_whose_best_value_is_at_its_edge():
    from gexbert_hf.study.baselines import edge_note, tune_imputer

    rng = np.random.default_rng(0)
    factors = rng.normal(size=(300, 3))
    matrix = factors @ rng.normal(size=(3, 40)) + 0.05 * rng.normal(size=(300, 40))  # low rank: small penalties win
    best, scores = tune_imputer("SoftImpute", matrix[:240], matrix[240:], [0.2, 0.4])
    assert best < 0.2 and len(scores) > 2  # the grid grew below its edge
    assert edge_note({"1": 1.0, "2": 0.5, "3": 0.7}, 2) is None
    assert "largest" in edge_note({"1": 1.0, "2": 0.5}, 2)


def test_a_designed_panel_is_scored_beside_the_random_ones(model_dir, labelled_folder, embedded_cohort, tmp_path):
    """`--panel` takes design-panel's panel.tsv (first column `gene`) and scores it with the same classifiers;
    a gene the cohort does not measure is refused by name."""
    designed = list(embedded_cohort.expression.columns[[3, 11, 19, 27, 40, 52, 60, 70]])
    pd.DataFrame({"gene": designed, "gain": np.linspace(0.1, 0.01, 8)}).to_csv(tmp_path / "panel.tsv", sep="\t",
                                                                                index=False)
    output = tmp_path / "out"
    assert main(["evaluate", "--model", str(model_dir), "--data_dir", str(labelled_folder), "--output", str(output),
                 "--quick", "--seeds", "1", "--panel_sizes", "8", "--panel", str(tmp_path / "panel.tsv"),
                 "--no_progress"]) == 0
    per_panel = json.loads((output / "results.json").read_text())["classification"]["per_panel"]
    assert per_panel["8 designed"]["genes"] == designed and "8" in per_panel
    assert set(per_panel["8 designed"]["methods"]) >= {"LR", "GexBERT panel+restored→LR"}
    assert "8 designed" in (output / "report.md").read_text()
    (tmp_path / "bad.txt").write_text("NOT_A_GENE\n" + "\n".join(designed[:3]) + "\n")
    assert main(["evaluate", "--model", str(model_dir), "--data_dir", str(labelled_folder), "--output",
                 str(tmp_path / "out2"), "--quick", "--seeds", "1", "--panel", str(tmp_path / "bad.txt")]) == 2
