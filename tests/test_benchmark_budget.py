"""The benchmark's time budget and partial results (gexbert_hf/study/stage_budget.py, benchmark.py): every stage gets
a share, a spent share stops further seeds (each setting keeps its first), the skipped items are recorded and
reported, and results.json on disk keeps every finished stage when a later one fails or the run is stopped."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from gexbert_hf.study import benchmark
from gexbert_hf.study.stage_budget import STAGE_SHARES, RunClock, StageBudget, budgeted_rounds


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    """A data folder laid out like ../shared/data/<folder>: 160 synthetic samples x 40 genes, 3 types."""
    from gexbert_hf.data.cohorts import make_synthetic_cohort

    cohort = make_synthetic_cohort(n_samples=160, n_genes=40, n_types=3, n_modules=5, seed=0)
    folder = tmp_path_factory.mktemp("data") / "tiny"
    folder.mkdir()
    cohort.expression.T.rename_axis("sample").to_csv(folder / "expression.tsv.gz", sep="\t")
    cohort.clinical.to_csv(folder / "clinical.tsv", sep="\t")
    split = np.where(np.arange(len(cohort.expression)) % 4 == 0, "test", "train")
    (folder / "split.tsv").write_text("sample\tsplit\n" + "".join(
        f"{sample}\t{part}\n" for sample, part in zip(cohort.expression.index, split, strict=True)))
    return folder


def _arguments(folder, output, **changes) -> benchmark.BenchmarkArguments:
    options = {"quick": True, "seeds": 3, "panel_sizes": "8,all", "survival_panel_sizes": "8", "finetune": False,
               "progress": False, **changes}
    return benchmark.BenchmarkArguments(data_dir=str(folder), output=str(output), **options)


@pytest.fixture(scope="module")
def spent_run(tiny_folder, tmp_path_factory):
    """A quick run whose 0.06-second budget is spent before the first task: every later seed is skipped."""
    output = tmp_path_factory.mktemp("spent")
    assert benchmark.run_benchmark(_arguments(tiny_folder, output, time_budget_minutes=0.001, keep_model=True)) == 0
    return output, json.loads((output / "results.json").read_text())


def test_seeds_after_the_first_are_skipped_and_recorded_once_the_budget_is_spent(spent_run):
    output, results = spent_run
    assert results["errors"] == {}
    stages = results["budget"]["stages"]
    assert list(stages) == ["pretraining", "classification", "survival", "imputation", "attention"]
    imputation = results["imputation"]
    assert all(entry["seeds"] == [0] for entry in imputation["per_scenario"].values())
    assert {entry["item"] for entry in imputation["skipped_by_budget"]} == {
        f"{scenario}, seed {seed}" for scenario in imputation["scenarios"] for seed in (1, 2)}
    assert stages["imputation"]["skipped"] == imputation["skipped_by_budget"]
    assert "imputation stage's share of the time budget" in imputation["skipped_by_budget"][0]["reason"]
    assert all(entry["seeds"] == [0] for entry in results["classification"]["per_panel"].values())
    assert {entry["item"] for entry in results["classification"]["skipped_by_budget"]} == {
        "panel 8, seed 1", "panel 8, seed 2", "panel all, seed 1"}
    survival = results["survival"]
    assert survival["types"] and all(entry["by_panel"]["8"]["seeds"] == [0] for entry in survival["per_type"].values())
    assert survival["pooled"]["by_panel"]["8"]["seeds"] == [0]
    assert {"TYPE0 K=8, seed 1", "TYPE0 K=8, seed 2", "pooled K=8, seed 1", "pooled K=8, seed 2"} <= {
        entry["item"] for entry in stages["survival"]["skipped"]}
    assert len(results["ablation"]["runs"]) == 1 and results["ablation"]["skipped_by_budget"]  # the first always runs
    report = (output / "report.md").read_text()
    assert "**Cut short by the time budget**: pretraining skipped" in report and "## Time budget" in report
    assert "MCAR 50%, seed 1" in report and "with 1 (of 3 planned) random masks" in report
    assert "Pooled, K = 8 (1 panels" in report


def test_a_stage_that_fails_keeps_the_finished_stages_on_disk_and_in_the_report(spent_run, tiny_folder, tmp_path,
                                                                                monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("attention broke")

    monkeypatch.setattr(benchmark, "run_attention_analysis", broken)
    args = _arguments(tiny_folder, tmp_path, seeds=2, tasks="imputation,attention",
                      pretrained_model=str(spent_run[0] / "model"))
    assert benchmark.run_benchmark(args) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert "RuntimeError: attention broke" in results["errors"]["attention"] and "attention" not in results
    assert all(entry["seeds"] == [0, 1] for entry in results["imputation"]["per_scenario"].values())
    assert "partial" not in results["imputation"]
    assert "- attention: `RuntimeError: attention broke`" in (tmp_path / "report.md").read_text()


def test_a_stopped_run_leaves_every_finished_stage_and_the_running_stages_finished_items(spent_run, tiny_folder,
                                                                                         tmp_path, monkeypatch):
    real = benchmark.run_imputation

    def stopped_after_two_items(*args, checkpoint, **kwargs):
        saved = []

        def save_then_stop(partial: dict) -> None:
            checkpoint(partial)
            saved.append(1)
            if len(saved) == 2:
                raise KeyboardInterrupt  # escapes every guard, as a stopped run does

        return real(*args, checkpoint=save_then_stop, **kwargs)

    monkeypatch.setattr(benchmark, "run_imputation", stopped_after_two_items)
    args = _arguments(tiny_folder, tmp_path, seeds=2, tasks="survival,imputation",
                      pretrained_model=str(spent_run[0] / "model"))
    with pytest.raises(KeyboardInterrupt):
        benchmark.run_benchmark(args)
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["survival"]["per_type"] and "partial" not in results["survival"]
    assert "survival" in results["timings"] and "imputation" not in results["timings"]
    imputation = results["imputation"]
    assert imputation["partial"] and [len(entry["seeds"]) for entry in imputation["per_scenario"].values()] == [
        1, 1, 0, 0, 0, 0, 0]
    assert not (tmp_path / "report.md").exists()
    assert "**Partial**" in benchmark.report_from_json(tmp_path).read_text()


def test_the_clock_passes_unused_time_on_and_shrinks_the_stages_after_an_overrun():
    overrun = RunClock(100.0, ["survival", "imputation"], started=time.perf_counter() - 200.0)
    assert overrun.stage("survival").seconds == 0.0 and overrun.stage("imputation").spent()
    shares = STAGE_SHARES["survival"] + STAGE_SHARES["imputation"] + STAGE_SHARES["attention"]
    clock = RunClock(1e9, ["survival", "imputation", "attention"])
    assert clock.stage("survival").seconds == pytest.approx(1e9 * STAGE_SHARES["survival"] / shares, rel=1e-6)
    # survival used none of its share: imputation's share is taken of (nearly) the whole budget again
    assert clock.stage("imputation").seconds == pytest.approx(
        1e9 * STAGE_SHARES["imputation"] / (STAGE_SHARES["imputation"] + STAGE_SHARES["attention"]), rel=1e-6)
    assert clock.stage("attention").seconds == pytest.approx(1e9, rel=1e-6)  # the last stage gets all that is left
    assert set(clock.record()["stages"]) == {"survival", "imputation", "attention"}


def test_budgeted_rounds_go_seed_major_and_always_run_each_items_first_seed():
    unlimited = list(budgeted_rounds(StageBudget.unlimited(), {"a": [0, 1], "b": [0, 1, 2]}))
    assert unlimited == [("a", 0), ("b", 0), ("a", 1), ("b", 1), ("b", 2)]
    spent = StageBudget("x", 0.0)
    assert list(budgeted_rounds(spent, {"a": [0, 1], "b": [5]})) == [("a", 0), ("b", 5)]
    assert [entry["item"] for entry in spent.skipped] == ["a, seed 1"]


def test_imputation_scenarios_are_chosen_by_name_in_the_default_order_and_unknown_ones_refused():
    from gexbert_hf.study.benchmark import _imputation_scenarios

    assert _imputation_scenarios("MCAR 90%, MCAR 50%") == ["MCAR 50%", "MCAR 90%"]
    with pytest.raises(ValueError, match="MCAR 40%"):
        _imputation_scenarios("MCAR 40%")
