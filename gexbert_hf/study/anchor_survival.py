"""Survival by restoring prognostic anchor genes from a small panel (the paper's second claim).

Per cancer type: anchors = the most prognostic genes on that type's train samples (univariate Cox score test);
panel = K random non-anchor genes. A ridge-penalised Cox model (penalty chosen on a train-carved validation part)
is fitted on each arm of `survival_arms` (panel; + anchors restored by GexBERT; + the true anchors, the ceiling;
+ anchors predicted by ridge regression or KNN). A type rarely has enough deaths for a test C-index to tell the arms
apart, so the same arms are also compared pooled over types (`pooled_survival`: one Cox model stratified by type).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ..tokenization_gexbert import GexBertTokenizer
from .baselines import bootstrap_c_index, harrell_c, tuned_cox_risk
from .pooled_survival import run_pooled_survival
from .stage_budget import StageBudget, budgeted_rounds
from .survival_arms import (
    ARMS,
    Restorer,
    SurvivalCohort,
    SurvivalPart,
    anchor_genes,
    gexbert_restorer,
    panel_arms,
    random_panel,
    types_to_run,
)


def _panel_seed(restore: Restorer, data: SurvivalPart, work_reference: pd.DataFrame, cancer: str,
                anchors: list[str], k: int, seed: int, state: dict, finetune: Callable | None) -> None:
    """One random panel of one type: every arm's tuned Cox test risk, added to `state`."""
    others = [gene for gene in data.work_train.columns if gene not in set(anchors)]
    panel = random_panel(others, k, seed)
    arms, gexbert_r, ridge_r = panel_arms(restore, data, work_reference, panel, anchors, seed)
    state["restore_r"].append(gexbert_r)
    state["ridge_r"].append(ridge_r)
    for arm, (x_tr, x_te) in arms.items():
        risk, penalty = tuned_cox_risk(x_tr, data.t_train, data.e_train, x_te, data.validation)
        state["risks"].setdefault(arm, []).append(risk)
        state["penalties"].setdefault(arm, []).append(penalty)
    if finetune is not None:
        risk = finetune(cancer, panel, seed)
        if risk is not None:
            state["risks"].setdefault("GexBertForSurvival fine-tuned", []).append(np.asarray(risk))
    state["seeds"].append(seed)


def _panel_size_entry(data: SurvivalPart, state: dict, k: int, n_boot: int) -> dict:
    """Panel size `k` of one type: every arm's test C-index over the panels that ran, with a bootstrap CI."""
    entry: dict = {"anchor_restoration_r": {"GexBERT": float(np.nanmean(state["restore_r"])),
                                            "ridge": float(np.nanmean(state["ridge_r"]))},
                   "seeds": list(state["seeds"]), "arms": {}}
    for arm, arm_risks in state["risks"].items():
        per_seed = [harrell_c(risk, data.t_test, data.e_test) for risk in arm_risks]
        point, low, high = bootstrap_c_index(arm_risks, data.t_test, data.e_test, n_boot=n_boot, seed=k)
        entry["arms"][arm] = {"c_index": point, "ci95": [low, high], "per_seed": per_seed,
                              "penalties": state["penalties"].get(arm, [])}
    return entry


def run_anchor_survival(
    model,
    tokenizer: GexBertTokenizer,
    raw_train: pd.DataFrame,
    clinical_train: pd.DataFrame,
    raw_test: pd.DataFrame,
    clinical_test: pd.DataFrame,
    type_column: str,
    time_column: str,
    event_column: str,
    panel_sizes: Sequence[int] = (32, 64),
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    n_anchors: int = 8,
    min_train_events: int = 20,
    min_test_events: int = 5,
    max_types: int | None = None,
    n_boot: int = 200,
    gap_threshold: float = 0.02,
    finetune: Callable | None = None,
    progress: bool = True,
    budget: StageBudget | None = None,
    pooled: bool = True,
) -> dict:
    """Test C-index of arms (a)-(d) per type, panel size and seed; bootstrap CIs; share of the (a)->(c) gap closed;
    with `pooled`, the same arms pooled over types (`results["pooled"]`, see `run_pooled_survival`).

    `finetune(type, panel, seed) -> test risk` adds a fine-tuned `GexBertForSurvival` on the panel where given.
    Seeds run seed-major over (type, K); a later seed starts only while `budget` expects it to fit (skips are
    recorded).
    """
    cohort = SurvivalCohort.build(tokenizer, raw_train, clinical_train, raw_test, clinical_test, type_column,
                                  time_column, event_column)
    restore = gexbert_restorer(model, tokenizer)
    types = types_to_run(cohort, min_train_events, min_test_events, max_types)
    results: dict = {"types": types, "panel_sizes": list(panel_sizes), "seeds": list(seeds), "n_anchors": n_anchors,
                     "per_type": {}, "summary": {}}
    parts, anchors = {}, {}
    for cancer in types:  # anchors: chosen on this type's train samples only
        parts[cancer] = cohort.part([cancer])
        anchors[cancer], z = anchor_genes(parts[cancer], n_anchors)
        data = parts[cancer]
        results["per_type"][cancer] = {
            "anchors": anchors[cancer], "anchor_z": z, "n_train": len(data.t_train), "n_test": len(data.t_test),
            "train_events": int(data.e_train.sum()), "test_events": int(data.e_test.sum()), "by_panel": {}}
    plan = {f"{cancer} K={k}": list(seeds) for cancer in types for k in panel_sizes}
    states = {item: {"risks": {}, "penalties": {}, "restore_r": [], "ridge_r": [], "seeds": []} for item in plan}
    # with the pooled protocol to follow, the per-type seeds may use the first 60% of the stage's allowance
    per_type_budget = budget.part(0.6) if budget is not None and pooled else budget
    for item, seed in tqdm(budgeted_rounds(per_type_budget, plan), total=len(plan) * len(seeds),
                           desc="survival per type", disable=not progress):
        cancer, k = item.rsplit(" K=", 1)
        _panel_seed(restore, parts[cancer], cohort.work_train, cancer, anchors[cancer], int(k), seed, states[item],
                    finetune)
    for item, state in states.items():
        cancer, k = item.rsplit(" K=", 1)
        results["per_type"][cancer]["by_panel"][k] = _panel_size_entry(parts[cancer], state, int(k), n_boot)
    results["summary"] = summarise_gap(results, gap_threshold)
    results["skipped_by_budget"] = list(budget.skipped) if budget is not None else []
    if pooled:
        results["pooled"] = run_pooled_survival(restore, cohort, panel_sizes, seeds, n_anchors=n_anchors,
                                                n_boot=n_boot, gap_threshold=gap_threshold, budget=budget,
                                                progress=progress)
    return results


def summarise_gap(results: dict, gap_threshold: float) -> dict:
    """Per panel size: mean C of each arm over types, and the share of the (a)->(c) gap closed by (b) and (d),
    averaged over the types where (c) beats (a) by at least `gap_threshold` (the others listed apart)."""
    summary: dict = {}
    for k in results["panel_sizes"]:
        key = str(k)
        arms: dict[str, list[float]] = {}
        gap_types, other_types = [], []
        shares: dict[str, list[float]] = {}
        for cancer, entry in results["per_type"].items():
            panel_entry = entry["by_panel"].get(key)
            if panel_entry is None:
                continue
            c = {arm: value["c_index"] for arm, value in panel_entry["arms"].items()}
            for arm, value in c.items():
                arms.setdefault(arm, []).append(value)
            gap = c[ARMS[2]] - c[ARMS[0]]
            if gap >= gap_threshold:
                gap_types.append(cancer)
                for arm in c:
                    if arm not in (ARMS[0], ARMS[2]):
                        shares.setdefault(arm, []).append((c[arm] - c[ARMS[0]]) / gap)
            else:
                other_types.append(cancer)
        summary[key] = {
            "mean_c_index": {arm: float(np.mean(values)) for arm, values in arms.items()},
            "n_types": {arm: len(values) for arm, values in arms.items()},
            "gap_types": gap_types,
            "other_types": other_types,
            "share_of_gap_closed": {arm: float(np.mean(values)) for arm, values in shares.items()},
            "share_of_gap_closed_median": {arm: float(np.median(values)) for arm, values in shares.items()},
        }
    return summary
