"""The benchmark end to end in quick mode on real data (tcga3, subsampled), plus its statistical building blocks."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from gexbert_hf.study.baselines import harrell_c, impute_mean, impute_soft, mcar_mask, univariate_cox_z
from gexbert_hf.study.benchmark_data import within_type_standardised


@pytest.fixture(scope="module")
def quick_run(shared_data_dir, tmp_path_factory):
    from gexbert_hf.cli import main

    output = tmp_path_factory.mktemp("benchmark")
    code = main(["benchmark", "--data_dir", str(shared_data_dir / "tcga3_xena_log2tpm"), "--output", str(output),
                 "--quick", "--seeds", "2", "--progress", "false", "--keep_model", "true"])
    assert code == 0
    return output, json.loads((output / "results.json").read_text())


def test_quick_benchmark_writes_every_task(quick_run):
    output, results = quick_run
    assert results["errors"] == {}
    for task in ("classification", "survival", "imputation", "attention", "ablation", "pretraining"):
        assert task in results, task
    assert results["ablation"]["chosen_value_embedding"] in ("level", "continuous", "both")
    assert {run["value_embedding"] for run in results["ablation"]["runs"]} == {"level", "continuous", "both"}
    report = (output / "report.md").read_text()
    for heading in ("## 1. Cancer-type classification", "## 2. Survival", "## 3. Imputation", "## 4. Attention"):
        assert heading in report
    for png in ("classification_accuracy.png", "imputation_rmse.png", "attention_heatmap.png",
                "survival_c_index_K32.png", "pretraining_loss.png"):
        assert (output / png).stat().st_size > 1000, png
        assert f"({png})" in report


def test_quick_benchmark_numbers_are_sane(quick_run):
    _, results = quick_run
    classification = results["classification"]
    assert classification["panel_sizes"][:3] == ["8", "16", "32"] and classification["panel_sizes"][-1] == "all"
    for key, entry in classification["per_panel"].items():
        for method in ("LR", "RF", "HGB", "MLP"):
            accuracy = entry["methods"][method]["accuracy"]
            assert len(accuracy) == (2 if key != "all" else 2) and all(0.33 < a <= 1 for a in accuracy), (key, method)
        if key != "all":
            assert "GexBERT restore→LR" in entry["methods"]
    assert results["verdicts"]["classification"], "win/loss table missing"
    survival = results["survival"]
    assert survival["types"] and set(survival["summary"]) == {"32", "64"}
    for entry in survival["per_type"].values():
        arms = entry["by_panel"]["32"]["arms"]
        for value in arms.values():
            low, high = value["ci95"]
            assert 0 <= low <= value["c_index"] + 1e-9 and value["c_index"] <= high + 1e-9 <= 1 + 1e-9
    imputation = results["imputation"]
    assert set(imputation["per_scenario"]) == {"MCAR 10%", "MCAR 30%", "MCAR 50%", "MCAR 70%", "MCAR 90%",
                                               "MNAR 50%", "whole-gene 30%"}
    for scenario, entry in imputation["per_scenario"].items():
        assert set(entry["methods"]) == {"GexBERT", "column mean", "KNN", "Iterative", "SoftImpute"}
        assert all(0 <= c <= 1 for c in entry["calibration_80"])
        # column mean carries no per-gene signal; the tuned baselines must beat it
        assert np.mean(entry["methods"]["column mean"]["per_gene_r"]) == 0
        assert np.mean(entry["methods"]["SoftImpute"]["per_gene_r"]) > 0.1
        if scenario.startswith("MCAR"):  # under MNAR the low values are missing and no imputer need beat the mean
            assert np.mean(entry["methods"]["SoftImpute"]["rmse"]) < np.mean(entry["methods"]["column mean"]["rmse"])
    attention = results["attention"]
    assert 0 <= attention["overlap_p_one_sided"] <= 1 and attention["total_overlap"] >= 0
    assert set(attention["per_type"]) == {"BLCA", "COADREAD", "STAD"}


def test_a_kept_model_is_reused_without_pretraining(quick_run, shared_data_dir, tmp_path):
    from gexbert_hf.cli import main

    first, earlier = quick_run
    code = main(["benchmark", "--data_dir", str(shared_data_dir / "tcga3_xena_log2tpm"), "--output", str(tmp_path),
                 "--quick", "--seeds", "2", "--progress", "false", "--tasks", "imputation",
                 "--pretrained_model", str(first / "model")])
    assert code == 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["errors"] == {} and "ablation" not in results["timings"]
    assert results["pretraining"]["loaded_from"] == str(first / "model")
    assert results["pretraining"]["steps"] == earlier["pretraining"]["steps"]
    # the same model, masks and seeds: the same imputation, to the last digit
    again = results["imputation"]["per_scenario"]["MCAR 50%"]["methods"]["GexBERT"]["rmse"]
    assert again == earlier["imputation"]["per_scenario"]["MCAR 50%"]["methods"]["GexBERT"]["rmse"]
    assert "did not pretrain" in (tmp_path / "report.md").read_text()


def test_a_directory_without_a_model_is_refused_by_name(shared_data_dir, tmp_path):
    from gexbert_hf.errors import ExpressionInputError
    from gexbert_hf.study.benchmark import BenchmarkArguments, run_benchmark

    args = BenchmarkArguments(data_dir=str(shared_data_dir / "tcga3_xena_log2tpm"), output=str(tmp_path / "out"),
                              quick=True, progress=False, pretrained_model=str(tmp_path))
    with pytest.raises(ExpressionInputError, match=f"{tmp_path}: not a saved GexBERT"):
        run_benchmark(args)


def test_a_model_kept_from_other_genes_is_refused_naming_them(quick_run, shared_data_dir, tmp_path):
    from gexbert_hf.errors import ExpressionInputError
    from gexbert_hf.study.benchmark import BenchmarkArguments, run_benchmark

    first, _ = quick_run  # quick mode keeps 64 random genes; another seed draws other genes
    args = BenchmarkArguments(data_dir=str(shared_data_dir / "tcga3_xena_log2tpm"), output=str(tmp_path / "out"),
                              quick=True, progress=False, seed=1, tasks="imputation",
                              pretrained_model=str(first / "model"))
    with pytest.raises(ExpressionInputError, match="pretrained on other data.*unknown to the tokenizer vocabulary"):
        run_benchmark(args)


def test_within_type_standardisation_is_detected():
    rng = np.random.default_rng(0)
    types = pd.Series(np.repeat(["A", "B", "C"], 50))
    shifted = pd.DataFrame(rng.normal(size=(150, 20)) + np.repeat([0.0, 2.0, 4.0], 50)[:, None])
    zscored = shifted.groupby(types.to_numpy()).transform(lambda column: (column - column.mean()) / column.std())
    assert within_type_standardised(zscored, types)["within_type_standardised"]
    assert not within_type_standardised(shifted, types)["within_type_standardised"]


def test_classification_gate_skips_standardised_or_unlabelled_data_and_obeys_on_off():
    from gexbert_hf import GexBertTokenizer
    from gexbert_hf.data.cohorts import Cohort
    from gexbert_hf.study.benchmark_data import SKIP_STANDARDISED, classification_gate, split_cohort

    rng = np.random.default_rng(0)
    samples = pd.Index([f"S{i:03d}" for i in range(150)], name="sample")
    types = pd.Series(np.repeat(["A", "B", "C"], 50), index=samples)
    shifted = pd.DataFrame(rng.normal(size=(150, 20)) + np.repeat([0.0, 2.0, 4.0], 50)[:, None], index=samples,
                           columns=[f"G{j}" for j in range(20)])
    zscored = shifted.groupby(types.to_numpy()).transform(lambda column: (column - column.mean()) / column.std())
    split = pd.Series(np.where(np.arange(150) % 5 == 0, "test", "train"), index=samples)

    def gate(values: pd.DataFrame, label: str | None, mode: str = "auto") -> str | None:
        tokenizer = GexBertTokenizer.fit(values, normalization="none", num_levels=8)
        cohort = Cohort(values, pd.DataFrame({"cancer_type": types}), label_column=label)
        return classification_gate(tokenizer, split_cohort("toy", cohort, split), mode)[1]

    assert gate(shifted, "cancer_type") is None and gate(zscored, "cancer_type") == SKIP_STANDARDISED
    assert gate(zscored, "cancer_type", "on") is None and gate(shifted, "cancer_type", "off").startswith("switched")
    assert gate(shifted, None) == "no type labels"


def test_harrell_c_matches_scikit_survival():
    from sksurv.metrics import concordance_index_censored

    rng = np.random.default_rng(1)
    time, event, risk = rng.exponential(size=80), rng.random(80) < 0.6, rng.normal(size=80)
    expected = concordance_index_censored(event, time, risk)[0]
    assert harrell_c(risk, time, event) == pytest.approx(expected, abs=1e-10)


def test_univariate_cox_score_ranks_the_prognostic_gene_first():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(300, 10))
    time = rng.exponential(np.exp(-1.5 * x[:, 3]))
    event = rng.random(300) < 0.8
    z = univariate_cox_z(x, time, event)
    assert np.argmax(np.abs(z)) == 3 and z[3] > 0


def test_soft_impute_beats_column_mean_on_low_rank_data():
    rng = np.random.default_rng(3)
    matrix = rng.normal(size=(300, 4)) @ rng.normal(size=(4, 40)) + 0.1 * rng.normal(size=(300, 40))
    reference, test = matrix[:200], matrix[200:]
    mask = mcar_mask(test.shape, 0.5, rng)
    incomplete = np.where(mask, np.nan, test)
    soft = impute_soft(reference, incomplete, penalty=0.02)
    mean = impute_mean(reference, incomplete)
    assert np.sqrt(np.mean((soft[mask] - test[mask]) ** 2)) < 0.5 * np.sqrt(np.mean((mean[mask] - test[mask]) ** 2))


def test_verdicts_call_ties_ties_within_the_tolerance():
    from gexbert_hf.study.benchmark_verdicts import TIE_TOLERANCE, classification_verdicts, imputation_verdicts, outcome

    assert outcome(0.7 + 1e-16, 0.7) == "tie"            # a float difference is not a win
    assert outcome(0.7, 0.7) == "tie"                    # nor an exact tie a loss
    assert outcome(0.7 + 2 * TIE_TOLERANCE, 0.7) == "win"
    assert outcome(0.70, 0.71, higher_is_better=False) == "win"
    panel = {"GexBERT LR": {"accuracy": [0.5, 0.6], "macro_f1": [0.4, 0.5]},
             "MLP": {"accuracy": [0.55, 0.55 + 1e-16], "macro_f1": [0.4, 0.5]}}
    (verdict,) = classification_verdicts({"panel_sizes": ["16"], "per_panel": {"16": {"methods": panel}}})
    assert verdict["outcome"] == "tie"
    methods = {"GexBERT": {"rmse": [0.60], "per_gene_r": [0.70]}, "KNN": {"rmse": [0.60], "per_gene_r": [0.80]}}
    (verdict,) = imputation_verdicts({"per_scenario": {"MCAR 50%": {"methods": methods}}})
    assert (verdict["outcome_rmse"], verdict["outcome_per_gene_r"]) == ("tie", "loss")
