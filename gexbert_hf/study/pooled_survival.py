"""Survival by restored anchors, pooled over cancer types: the per-type protocol's arms, one Cox model stratified by
type.

Per type, a test split holds a handful of deaths and a C-index CI spans ±0.1, so the per-type protocol rarely tells
the arms apart. Here the types with any usable deaths are pooled: one anchor set (the genes most prognostic within
types, by the stratified Cox score test on train), one random panel per seed, the same arms as per type, each fitted
as a ridge Cox model stratified by type (penalty chosen on a validation part of train, stratified by type and event)
and scored by the event-weighted within-type C-index. Bootstrap resamples of the test samples, drawn within each
type and shared by the arms, give each arm's 95% interval and paired intervals of its difference to the panel arm.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from tqdm.auto import tqdm

from .stage_budget import StageBudget, budgeted_rounds
from .stratified_cox import bootstrap_arms, mean_stratified_c, percentile_interval, tuned_stratified_risk
from .survival_arms import (
    ARMS,
    Restorer,
    SurvivalCohort,
    SurvivalPart,
    anchor_genes,
    panel_arms,
    random_panel,
    types_to_run,
)

PANEL_ARM, TRUE_ARM = ARMS[0], ARMS[2]


def _pooled_seed(restore: Restorer, data: SurvivalPart, work_reference, anchors: list[str], k: int, seed: int,
                 state: dict) -> None:
    """One random panel: every arm's stratified Cox test risk, added to `state`."""
    others = [gene for gene in data.work_train.columns if gene not in set(anchors)]
    arms, gexbert_r, ridge_r = panel_arms(restore, data, work_reference, random_panel(others, k, seed), anchors,
                                          seed)
    state["restore_r"].append(gexbert_r)
    state["ridge_r"].append(ridge_r)
    for arm, (x_tr, x_te) in arms.items():
        risk, penalty = tuned_stratified_risk(x_tr, data.t_train, data.e_train, data.types_train, x_te,
                                              data.validation)
        state["risks"].setdefault(arm, []).append(risk)
        state["penalties"].setdefault(arm, []).append(penalty)
    state["seeds"].append(seed)


def _pooled_entry(data: SurvivalPart, state: dict, k: int, n_boot: int, gap_threshold: float) -> dict:
    """Panel size `k`: each arm's stratified C-index (mean over the panels that ran) with its bootstrap interval,
    its paired difference to the panel arm, and the share of the (a)->(c) gap it closes where that gap is real."""
    time, event, strata = data.t_test, data.e_test, data.types_test
    boot = bootstrap_arms(state["risks"], time, event, strata, n_boot, seed=[k, 23])
    entry: dict = {"seeds": list(state["seeds"]), "arms": {}, "vs_panel": {}, "share_of_gap_closed": {},
                   "anchor_restoration_r": {"GexBERT": float(np.nanmean(state["restore_r"])),
                                            "ridge": float(np.nanmean(state["ridge_r"]))}}
    for arm, risks in state["risks"].items():
        entry["arms"][arm] = {"c_index": mean_stratified_c(risks, time, event, strata),
                              "ci95": percentile_interval(boot[arm]), "penalties": state["penalties"][arm],
                              "per_seed": [mean_stratified_c([risk], time, event, strata) for risk in risks]}
    panel_c = entry["arms"][PANEL_ARM]["c_index"]
    for arm in entry["arms"]:
        if arm != PANEL_ARM:
            entry["vs_panel"][arm] = {"delta": entry["arms"][arm]["c_index"] - panel_c,
                                      "ci95": percentile_interval(boot[arm] - boot[PANEL_ARM])}
    gap = entry["vs_panel"][TRUE_ARM]["delta"]
    entry["gap"] = gap
    if gap >= gap_threshold:
        entry["share_of_gap_closed"] = {arm: value["delta"] / gap for arm, value in entry["vs_panel"].items()
                                        if arm != TRUE_ARM}
    return entry


def run_pooled_survival(
    restore: Restorer,
    cohort: SurvivalCohort,
    panel_sizes: Sequence[int] = (32, 64),
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    n_anchors: int = 8,
    min_train_events: int = 5,
    min_test_events: int = 2,
    n_boot: int = 200,
    gap_threshold: float = 0.02,
    budget: StageBudget | None = None,
    progress: bool = True,
) -> dict:
    """The arms of the per-type protocol, pooled over every type with at least `min_train_events` train and
    `min_test_events` test deaths, one Cox model stratified by type per arm and panel.

    `restore(raw, panel, anchors)` gives the restored anchors (GexBERT's in the benchmark). Seeds run seed-major
    over the panel sizes; a later seed starts only while `budget` expects it to fit (skips are recorded in
    `skipped_by_budget`).
    """
    types = types_to_run(cohort, min_train_events, min_test_events)
    results: dict = {"types": types, "panel_sizes": list(panel_sizes), "seeds": list(seeds), "n_anchors": n_anchors,
                     "min_train_events": min_train_events, "min_test_events": min_test_events, "by_panel": {},
                     "skipped_by_budget": []}
    if len(types) < 2:
        results["not_run"] = f"{len(types)} type(s) with enough deaths: nothing to pool"
        return results
    data = cohort.part(types)
    anchors, z = anchor_genes(data, n_anchors, stratified=True)
    results.update({"anchors": anchors, "anchor_z": z, "n_train": len(data.t_train), "n_test": len(data.t_test),
                    "train_events": int(data.e_train.sum()), "test_events": int(data.e_test.sum()),
                    "events_by_type": {cancer: {"train": int(data.e_train[data.types_train == cancer].sum()),
                                                "test": int(data.e_test[data.types_test == cancer].sum())}
                                       for cancer in types}})
    plan = {f"pooled K={k}": list(seeds) for k in panel_sizes}
    states = {item: {"risks": {}, "penalties": {}, "restore_r": [], "ridge_r": [], "seeds": []} for item in plan}
    already_skipped = len(budget.skipped) if budget is not None else 0
    for item, seed in tqdm(budgeted_rounds(budget, plan), total=len(plan) * len(seeds), desc="survival pooled",
                           disable=not progress):
        _pooled_seed(restore, data, cohort.work_train, anchors, int(item.split("=")[1]), seed, states[item])
    for item, state in states.items():
        k = int(item.split("=")[1])
        results["by_panel"][str(k)] = _pooled_entry(data, state, k, n_boot, gap_threshold)
    results["skipped_by_budget"] = list(budget.skipped[already_skipped:]) if budget is not None else []
    return results
