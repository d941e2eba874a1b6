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


class ManualClock:
    """Moves only when a unit says so: each unit's cost is set by the test, no sleeping."""

    def __init__(self) -> None:
        self.time = 0.0

    def __call__(self) -> float:
        return self.time


def _run_rounds(seconds: float, costs: dict[str, float], first_round: bool) -> tuple[list, StageBudget]:
    """Seeds 0-2 of each item in `costs` under a `seconds` budget, each unit costing its item's seconds."""
    clock = ManualClock()
    budget = StageBudget("demo", seconds, now=clock)
    ran = []
    for item, seed in budgeted_rounds(budget, {item: [0, 1, 2] for item in costs}, first_round=first_round):
        clock.time += costs[item]
        ran.append((item, seed))
    return ran, budget


def test_a_unit_starts_only_while_the_longest_unit_so_far_fits_in_what_is_left():
    # 10 s units in 35 s: after three units 5 s are left, less than the longest unit, so the fourth is skipped
    ran, budget = _run_rounds(35.0, {"a": 10.0, "b": 10.0}, first_round=True)
    assert ran == [("a", 0), ("b", 0), ("a", 1)]
    assert [entry["item"] for entry in budget.skipped] == ["b, seed 1", "a, seed 2", "b, seed 2"]
    assert "0.1 min left after 0.5 min, less than its longest unit so far (0.2 min)" in budget.skipped[0]["reason"]
    assert budget.record()["units_done"] == 3 and budget.longest == 10.0
    # the longest unit, not the last, is what a later one must fit: a 20 s unit, then 2 s ones, in 35 s
    ran, _ = _run_rounds(35.0, {"slow": 20.0, "fast": 2.0}, first_round=True)
    assert ran == [("slow", 0), ("fast", 0)]


def test_the_benchmark_runs_every_first_seed_and_evaluate_stops_at_the_budget():
    # 10 s units in 5 s: the benchmark still runs each item's first seed (every setting has a number) ...
    ran, budget = _run_rounds(5.0, {"a": 10.0, "b": 10.0}, first_round=True)
    assert ran == [("a", 0), ("b", 0)] and len(budget.skipped) == 4
    assert "share of the time budget (0.1 min) was spent after 0.3 min" in budget.skipped[0]["reason"]
    # ... evaluate starts the first unit while anything is left, and no other once it is spent
    ran, budget = _run_rounds(5.0, {"a": 10.0, "b": 10.0}, first_round=False)
    assert ran == [("a", 0)] and [entry["item"] for entry in budget.skipped][:2] == ["b, seed 0", "a, seed 1"]
    ran, budget = _run_rounds(0.0, {"a": 10.0}, first_round=False)
    assert ran == [] and len(budget.skipped) == 3


def test_a_part_of_the_allowance_shares_the_records_and_times_its_units_apart():
    clock = ManualClock()
    whole = StageBudget("survival", 100.0, now=clock)
    first = whole.part(0.6)
    for _ in first.units([("per type", None)]):
        clock.time += 50.0
    assert first.left() == 10.0 and not first.fits() and whole.fits() and whole.longest == 0.0
    first.skip("per type, seed 1")
    assert whole.record()["units_done"] == 1 and [entry["item"] for entry in whole.skipped] == ["per type, seed 1"]


def test_imputation_scenarios_are_chosen_by_name_in_the_default_order_and_unknown_ones_refused():
    from gexbert_hf.study.benchmark import _imputation_scenarios

    assert _imputation_scenarios("MCAR 90%, MCAR 50%") == ["MCAR 50%", "MCAR 90%"]
    with pytest.raises(ValueError, match="MCAR 40%"):
        _imputation_scenarios("MCAR 40%")
