"""Survival by restoring prognostic anchor genes from a small panel (the paper's second claim).

Per cancer type: anchors = the most prognostic genes on that type's train samples (univariate Cox score test);
panel = K random non-anchor genes. A ridge-penalised Cox model (penalty chosen on a train-carved validation part)
is fitted on (a) the panel, (b) panel + anchors restored by GexBERT from the panel, (c) panel + the true anchors
(the ceiling) and (d) panel + anchors predicted from the panel by ridge regression or KNN fitted on train.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import KNeighborsRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from tqdm.auto import tqdm

from ..data.splits import split_validation
from ..inference import predict_distribution
from ..tokenization_gexbert import GexBertTokenizer
from .baselines import bootstrap_c_index, harrell_c, mean_gene_r, tuned_cox_risk, univariate_cox_z
from .working_scale import working_frame

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


@dataclass
class _TypeData:
    """One cancer type's samples with known outcome: raw and working-scale values, times and events."""

    raw_train: pd.DataFrame
    raw_test: pd.DataFrame
    work_train: pd.DataFrame
    work_test: pd.DataFrame
    t_train: np.ndarray
    e_train: np.ndarray
    t_test: np.ndarray
    e_test: np.ndarray
    validation: np.ndarray  # boolean over the train rows: where the Cox penalty is chosen


def _type_data(raw_train: pd.DataFrame, raw_test: pd.DataFrame, work_train: pd.DataFrame, work_test: pd.DataFrame,
               clinical_train: pd.DataFrame, clinical_test: pd.DataFrame, rows_tr: np.ndarray, rows_te: np.ndarray,
               time_column: str, event_column: str) -> _TypeData:
    """One type's rows; its Cox-penalty validation part is a 25% share of its train samples, stratified by event."""
    e_tr = clinical_train.loc[rows_tr, event_column].to_numpy(int)
    return _TypeData(raw_train.loc[rows_tr], raw_test.loc[rows_te], work_train.loc[rows_tr], work_test.loc[rows_te],
                     clinical_train.loc[rows_tr, time_column].to_numpy(float), e_tr,
                     clinical_test.loc[rows_te, time_column].to_numpy(float),
                     clinical_test.loc[rows_te, event_column].to_numpy(int),
                     split_validation(e_tr, 0.25, seed=7))


def _restored_anchors(model, tokenizer: GexBertTokenizer, raw: pd.DataFrame, panel: list[str], anchors: list[str]
                      ) -> np.ndarray:
    """GexBERT's restored anchors (working scale) from the panel's values alone."""
    restored = predict_distribution(model, tokenizer, raw[panel], genes=anchors)
    return restored.mean[:, [restored.genes.index(gene) for gene in anchors]]


def _panel_arms(model, tokenizer: GexBertTokenizer, data: _TypeData, work_train_all: pd.DataFrame,
                panel: list[str], anchors: list[str], seed: int) -> tuple[dict, float, float]:
    """The Cox inputs (train, test) of arms (a)-(d) for one panel, and the anchors' restoration r of GexBERT and of
    ridge regression on test."""
    p_tr, p_te = data.work_train[panel].to_numpy(), data.work_test[panel].to_numpy()
    true_tr, true_te = data.work_train[anchors].to_numpy(), data.work_test[anchors].to_numpy()
    g_tr = _restored_anchors(model, tokenizer, data.raw_train, panel, anchors)
    g_te = _restored_anchors(model, tokenizer, data.raw_test, panel, anchors)
    # the competitor: panel -> anchors regressions fitted on all train samples of the folder
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ridge_tr, ridge_te = predict_anchors_regression(
            "ridge", work_train_all[panel].to_numpy(), work_train_all[anchors].to_numpy(), [p_tr, p_te], seed)
        knn_tr, knn_te = predict_anchors_regression(
            "knn", work_train_all[panel].to_numpy(), work_train_all[anchors].to_numpy(), [p_tr, p_te], seed)
    arms = {
        ARMS[0]: (p_tr, p_te),
        ARMS[1]: (np.hstack([p_tr, g_tr]), np.hstack([p_te, g_te])),
        ARMS[2]: (np.hstack([p_tr, true_tr]), np.hstack([p_te, true_te])),
        ARMS[3]: (np.hstack([p_tr, ridge_tr]), np.hstack([p_te, ridge_te])),
        ARMS[4]: (np.hstack([p_tr, knn_tr]), np.hstack([p_te, knn_te])),
    }
    return arms, mean_gene_r(true_te, g_te), mean_gene_r(true_te, ridge_te)


def _panel_size_entry(model, tokenizer: GexBertTokenizer, data: _TypeData, work_train_all: pd.DataFrame,
                      cancer: str, anchors: list[str], others: list[str], k: int, seeds: Sequence[int],
                      n_boot: int, finetune: Callable | None) -> dict:
    """Panel size `k` of one type: every arm's test C-index over random panels (seeds), with a bootstrap CI."""
    risks: dict[str, list[np.ndarray]] = {}
    penalties: dict[str, list[float]] = {}
    restore_r: list[float] = []
    ridge_r: list[float] = []
    for seed in seeds:
        panel = sorted(np.random.default_rng([seed, k, 11]).choice(others, size=min(k, len(others)),
                                                                   replace=False).tolist())
        arms, gexbert_r, ridge = _panel_arms(model, tokenizer, data, work_train_all, panel, anchors, seed)
        restore_r.append(gexbert_r)
        ridge_r.append(ridge)
        for arm, (x_tr, x_te) in arms.items():
            risk, penalty = tuned_cox_risk(x_tr, data.t_train, data.e_train, x_te, data.validation)
            risks.setdefault(arm, []).append(risk)
            penalties.setdefault(arm, []).append(penalty)
        if finetune is not None:
            risk = finetune(cancer, panel, seed)
            if risk is not None:
                risks.setdefault("GexBertForSurvival fine-tuned", []).append(np.asarray(risk))
    entry: dict = {"anchor_restoration_r": {"GexBERT": float(np.nanmean(restore_r)),
                                            "ridge": float(np.nanmean(ridge_r))}, "arms": {}}
    for arm, arm_risks in risks.items():
        per_seed = [harrell_c(risk, data.t_test, data.e_test) for risk in arm_risks]
        point, low, high = bootstrap_c_index(arm_risks, data.t_test, data.e_test, n_boot=n_boot, seed=k)
        entry["arms"][arm] = {"c_index": point, "ci95": [low, high], "per_seed": per_seed,
                              "penalties": penalties.get(arm, [])}
    return entry


def _types_to_run(clinical_train: pd.DataFrame, clinical_test: pd.DataFrame, has_train: np.ndarray,
                  has_test: np.ndarray, type_column: str, event_column: str, min_train_events: int,
                  min_test_events: int, max_types: int | None) -> list[str]:
    """The eligible types; with `max_types`, those with most train events (the most reliable C-indices)."""
    types = eligible_types(clinical_train[type_column][has_train], clinical_train[event_column][has_train].to_numpy(),
                           clinical_test[type_column][has_test], clinical_test[event_column][has_test].to_numpy(),
                           min_train_events, min_test_events)
    if max_types is not None:
        counts = {cancer: clinical_train.loc[has_train & (clinical_train[type_column] == cancer).to_numpy(),
                                             event_column].sum() for cancer in types}
        types = sorted(sorted(types, key=lambda cancer: -counts[cancer])[:max_types])
    return types


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
    work_train, work_test = working_frame(tokenizer, raw_train), working_frame(tokenizer, raw_test)
    genes = list(raw_train.columns)
    has_train = clinical_train[time_column].notna().to_numpy() & clinical_train[event_column].notna().to_numpy()
    has_test = clinical_test[time_column].notna().to_numpy() & clinical_test[event_column].notna().to_numpy()
    types = _types_to_run(clinical_train, clinical_test, has_train, has_test, type_column, event_column,
                          min_train_events, min_test_events, max_types)
    results: dict = {"types": types, "panel_sizes": list(panel_sizes), "seeds": list(seeds), "n_anchors": n_anchors,
                     "per_type": {}, "summary": {}}
    for cancer in tqdm(types, desc="survival types", disable=not progress):
        data = _type_data(raw_train, raw_test, work_train, work_test, clinical_train, clinical_test,
                          has_train & (clinical_train[type_column] == cancer).to_numpy(),
                          has_test & (clinical_test[type_column] == cancer).to_numpy(), time_column, event_column)
        # anchors: chosen on this type's train samples only
        z = np.nan_to_num(univariate_cox_z(data.work_train.to_numpy(), data.t_train, data.e_train), nan=0.0)
        anchors = [genes[i] for i in np.argsort(-np.abs(z))[:n_anchors]]
        others = [gene for gene in genes if gene not in set(anchors)]
        results["per_type"][cancer] = {
            "anchors": anchors, "anchor_z": [float(z[genes.index(g)]) for g in anchors],
            "n_train": len(data.t_train), "n_test": len(data.t_test),
            "train_events": int(data.e_train.sum()), "test_events": int(data.e_test.sum()),
            "by_panel": {str(k): _panel_size_entry(model, tokenizer, data, work_train, cancer, anchors, others, k,
                                                   seeds, n_boot, finetune) for k in panel_sizes}}
    results["summary"] = summarise_gap(results, gap_threshold)
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
