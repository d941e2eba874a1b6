"""Survival by restoring prognostic anchor genes from a small panel (the paper's second claim).

Per cancer type: anchors = the most prognostic genes on that type's train samples (univariate Cox score test);
panel = K random non-anchor genes. A ridge-penalised Cox model (penalty chosen on a train-carved validation part)
is fitted on (a) the panel, (b) panel + anchors restored by GexBERT from the panel, (c) panel + the true anchors
(the ceiling) and (d) panel + anchors predicted from the panel by ridge regression or KNN fitted on train.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import KNeighborsRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from tqdm.auto import tqdm

from ..tasks.imputation import predict_distribution
from ..tokenization_gexbert import GexBertTokenizer
from .baselines import bootstrap_c_index, harrell_c, tuned_cox_risk, univariate_cox_z

ARMS = ("a: panel", "b: panel + GexBERT anchors", "c: panel + true anchors", "d: panel + ridge anchors",
        "d: panel + KNN anchors")


def eligible_types(types_train: pd.Series, events_train: np.ndarray, types_test: pd.Series, events_test: np.ndarray,
                   min_train_events: int, min_test_events: int) -> list[str]:
    """Cancer types with enough deaths to fit and to test a Cox model."""
    chosen = []
    for cancer in sorted(types_train.dropna().unique()):
        n_train = events_train[(types_train == cancer).to_numpy()].sum()
        n_test = events_test[(types_test == cancer).to_numpy()].sum()
        if n_train >= min_train_events and n_test >= min_test_events:
            chosen.append(cancer)
    return chosen


def predict_anchors_regression(kind: str, x_train: np.ndarray, a_train: np.ndarray, x_apply: list[np.ndarray],
                               seed: int = 0) -> list[np.ndarray]:
    """Panel -> anchors by ridge (alpha by internal CV on train) or KNN (k by CV on train)."""
    if kind == "ridge":
        model = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-2, 4, 13)))
    else:
        model = GridSearchCV(make_pipeline(StandardScaler(), KNeighborsRegressor(weights="distance", algorithm="brute")),
                             {"kneighborsregressor__n_neighbors": [5, 15, 40]}, cv=3)
    model.fit(x_train, a_train)
    return [model.predict(x) for x in x_apply]


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
) -> dict:
    """Test C-index of arms (a)-(d) per type, panel size and seed; bootstrap CIs; share of the (a)->(c) gap closed.

    `finetune(type, panel, seed) -> test risk` adds a fine-tuned `GexBertForSurvival` on the panel where given.
    """
    work_train = pd.DataFrame(tokenizer.normalize(raw_train.to_numpy(), list(raw_train.columns)),
                              index=raw_train.index, columns=raw_train.columns)
    work_test = pd.DataFrame(tokenizer.normalize(raw_test.to_numpy(), list(raw_test.columns)),
                             index=raw_test.index, columns=raw_test.columns)
    genes = list(raw_train.columns)
    has_train = clinical_train[time_column].notna().to_numpy() & clinical_train[event_column].notna().to_numpy()
    has_test = clinical_test[time_column].notna().to_numpy() & clinical_test[event_column].notna().to_numpy()
    types = eligible_types(clinical_train[type_column][has_train], clinical_train[event_column][has_train].to_numpy(),
                           clinical_test[type_column][has_test], clinical_test[event_column][has_test].to_numpy(),
                           min_train_events, min_test_events)
    if max_types is not None:  # keep the types with most events (the most reliable C-indices)
        counts = {cancer: clinical_train.loc[has_train & (clinical_train[type_column] == cancer).to_numpy(),
                                             event_column].sum() for cancer in types}
        types = sorted(sorted(types, key=lambda cancer: -counts[cancer])[:max_types])
    results: dict = {"types": types, "panel_sizes": list(panel_sizes), "seeds": list(seeds), "n_anchors": n_anchors,
                     "per_type": {}, "summary": {}}
    for cancer in tqdm(types, desc="survival types", disable=not progress):
        rows_tr = has_train & (clinical_train[type_column] == cancer).to_numpy()
        rows_te = has_test & (clinical_test[type_column] == cancer).to_numpy()
        t_tr = clinical_train.loc[rows_tr, time_column].to_numpy(float)
        e_tr = clinical_train.loc[rows_tr, event_column].to_numpy(int)
        t_te = clinical_test.loc[rows_te, time_column].to_numpy(float)
        e_te = clinical_test.loc[rows_te, event_column].to_numpy(int)
        # anchors: chosen on this type's train samples only
        z = univariate_cox_z(work_train.loc[rows_tr].to_numpy(), t_tr, e_tr)
        z = np.nan_to_num(z, nan=0.0)
        anchors = [genes[i] for i in np.argsort(-np.abs(z))[:n_anchors]]
        others = [gene for gene in genes if gene not in set(anchors)]
        # validation part for the Cox penalty, stratified by event, from this type's train samples
        rng = np.random.default_rng([7, len(cancer)])
        validation = np.zeros(rows_tr.sum(), dtype=bool)
        for value in (0, 1):
            members = np.flatnonzero(e_tr == value)
            validation[rng.choice(members, size=int(round(0.25 * len(members))), replace=False)] = True
        entry: dict = {"anchors": anchors, "anchor_z": [float(z[genes.index(g)]) for g in anchors],
                       "n_train": int(rows_tr.sum()), "n_test": int(rows_te.sum()),
                       "train_events": int(e_tr.sum()), "test_events": int(e_te.sum()), "by_panel": {}}
        for k in panel_sizes:
            k_eff = min(k, len(others))
            risks: dict[str, list[np.ndarray]] = {}
            penalties: dict[str, list[float]] = {}
            restore_r: list[float] = []
            ridge_r: list[float] = []
            for seed in seeds:
                panel = sorted(np.random.default_rng([seed, k, 11]).choice(others, size=k_eff, replace=False).tolist())
                p_tr, p_te = work_train.loc[rows_tr, panel].to_numpy(), work_test.loc[rows_te, panel].to_numpy()
                true_tr, true_te = work_train.loc[rows_tr, anchors].to_numpy(), work_test.loc[rows_te, anchors].to_numpy()
                restored_tr = predict_distribution(model, tokenizer, raw_train.loc[rows_tr, panel], genes=anchors)
                restored_te = predict_distribution(model, tokenizer, raw_test.loc[rows_te, panel], genes=anchors)
                g_tr = restored_tr.mean[:, [restored_tr.genes.index(g) for g in anchors]]
                g_te = restored_te.mean[:, [restored_te.genes.index(g) for g in anchors]]
                # the competitor: panel -> anchors regressions fitted on all train samples of the folder
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    ridge_tr, ridge_te = predict_anchors_regression(
                        "ridge", work_train[panel].to_numpy(), work_train[anchors].to_numpy(), [p_tr, p_te], seed)
                    knn_tr, knn_te = predict_anchors_regression(
                        "knn", work_train[panel].to_numpy(), work_train[anchors].to_numpy(), [p_tr, p_te], seed)
                restore_r.append(_mean_gene_r(true_te, g_te))
                ridge_r.append(_mean_gene_r(true_te, ridge_te))
                arms = {
                    ARMS[0]: (p_tr, p_te),
                    ARMS[1]: (np.hstack([p_tr, g_tr]), np.hstack([p_te, g_te])),
                    ARMS[2]: (np.hstack([p_tr, true_tr]), np.hstack([p_te, true_te])),
                    ARMS[3]: (np.hstack([p_tr, ridge_tr]), np.hstack([p_te, ridge_te])),
                    ARMS[4]: (np.hstack([p_tr, knn_tr]), np.hstack([p_te, knn_te])),
                }
                for arm, (x_tr, x_te) in arms.items():
                    risk, penalty = tuned_cox_risk(x_tr, t_tr, e_tr, x_te, validation)
                    risks.setdefault(arm, []).append(risk)
                    penalties.setdefault(arm, []).append(penalty)
                if finetune is not None:
                    risk = finetune(cancer, panel, seed)
                    if risk is not None:
                        risks.setdefault("GexBertForSurvival fine-tuned", []).append(np.asarray(risk))
            panel_entry: dict = {"anchor_restoration_r": {"GexBERT": float(np.nanmean(restore_r)),
                                                          "ridge": float(np.nanmean(ridge_r))},
                                 "arms": {}}
            for arm, arm_risks in risks.items():
                per_seed = [harrell_c(risk, t_te, e_te) for risk in arm_risks]
                point, low, high = bootstrap_c_index(arm_risks, t_te, e_te, n_boot=n_boot, seed=k)
                panel_entry["arms"][arm] = {"c_index": point, "ci95": [low, high], "per_seed": per_seed,
                                            "penalties": penalties.get(arm, [])}
            entry["by_panel"][str(k)] = panel_entry
        results["per_type"][cancer] = entry
    results["summary"] = summarise_gap(results, gap_threshold)
    return results


def _mean_gene_r(truth: np.ndarray, predicted: np.ndarray) -> float:
    values = []
    for j in range(truth.shape[1]):
        if np.std(truth[:, j]) > 1e-12 and np.std(predicted[:, j]) > 1e-12:
            values.append(np.corrcoef(truth[:, j], predicted[:, j])[0, 1])
    return float(np.mean(values)) if values else float("nan")


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
